"""Replies that must not be lost: the diagnosis under a bounce posted in a channel.

The bounce event was acknowledged and recorded (so Slack will not send it again) before the reply
is posted; if Slack's Web API is down at that moment (5xx or 429 after the client's own retries,
a dropped connection), the reply would be gone. So it goes through `slack_outbox` in SQLite:
queued before the first attempt, marked sent once Slack has it, retried by a loop every few
seconds and after a restart. Each message carries its outbox key in its metadata; before a
message whose earlier attempt may have reached Slack is posted again, the thread is searched
for that key, so a reply is never posted twice. A reply's pages go out in order.
"""

from __future__ import annotations

import logging
import threading
import urllib.error
from itertools import groupby

from slack_sdk.errors import SlackApiError

from bot.slack.blocks import Message
from bot.slack.store import QueuedReply, SlackStore
from bot.slack.surface import Surface

log = logging.getLogger(__name__)

REPLY_EVENT = "delistbot_reply"  # message metadata type carrying the reply's outbox key
_UNDELIVERED = (SlackApiError, urllib.error.URLError, OSError)


class Replies:
    def __init__(self, store: SlackStore, surface: Surface, interval: float = 10.0) -> None:
        self.store, self.surface, self.interval = store, surface, interval
        self._lock = threading.Lock()  # one delivery pass at a time: never two posts of one row
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="delistbot-replies", daemon=True)

    def send(self, group: str, channel: str, thread_ts: str | None,
             messages: list[Message]) -> bool:
        """Queue a reply and try to deliver it now; True if all of it reached Slack."""
        self.store.queue_reply(group, channel, thread_ts,
                               [(m.text, list(m.blocks)) for m in messages])
        self.flush(group)
        return not self.store.pending_replies(group)

    def flush(self, group: str | None = None) -> int:
        """Deliver what is queued (one reply, or all); the number of messages delivered."""
        with self._lock:
            pending = self.store.pending_replies(group)
            return sum(self._deliver(list(rows))
                       for _, rows in groupby(pending, key=lambda r: r.group))

    def _deliver(self, rows: list[QueuedReply]) -> int:
        delivered = 0
        for row in sorted(rows, key=lambda r: r.seq):
            thread_ts = row.thread_ts if row.seq == 0 else self.store.first_reply_ts(row.group)
            if row.seq and thread_ts is None:
                break  # the first message has not gone out yet
            try:
                self.store.reply_attempt(row.id)
                ts = self._post(row, thread_ts)
            except _UNDELIVERED as exc:
                log.warning("reply %s not delivered (%s); it stays queued", row.key, exc)
                break  # keep the order: the rest of this reply waits for this one
            self.store.reply_sent(row.id, ts)
            delivered += 1
        return delivered

    def _post(self, row: QueuedReply, thread_ts: str | None) -> str | None:
        if row.attempts and thread_ts and self.surface.thread_has(
            row.channel, thread_ts, REPLY_EVENT, row.key
        ):
            log.info("reply %s reached Slack on an earlier attempt; not posting it again", row.key)
            return None
        return self.surface.post(row.channel, Message(row.text, row.blocks), thread_ts=thread_ts,
                                 metadata={"event_type": REPLY_EVENT,
                                           "event_payload": {"key": row.key}})

    # ------------------------------------------------------------ the retry loop

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=self.interval + 5)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.flush()
            except Exception:  # a bad pass (database busy, a bug) must not end the loop
                log.exception("reply delivery pass failed; trying again in %.0fs", self.interval)

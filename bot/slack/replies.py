"""Replies that must not be lost: the diagnosis under a bounce posted in a channel, and a new
ticket's card with its story (diagnosis, DNS picture, draft) in the card's thread.

The bounce event was acknowledged and recorded (so Slack will not send it again) before the reply
is posted; if Slack's Web API is down at that moment (5xx or 429 after the client's own retries,
a dropped connection), the reply would be gone. So it goes through `slack_outbox` in SQLite:
queued before the first attempt, marked sent once Slack has it, retried by a loop every few
seconds and after a restart. Each message carries its outbox key in its metadata; before a
message whose earlier attempt may have reached Slack is posted again, the thread is searched
for that key, so a reply is never posted twice (a top-level first message has no thread to
search: a crash between Slack's answer and the mark can repeat that one). A reply's messages go
out in order; `on_first` hears where each reply's first message went (a card's ts), also when
it goes out late or after a restart.
"""

from __future__ import annotations

import logging
import threading
import urllib.error
from collections.abc import Callable
from itertools import groupby

from slack_sdk.errors import SlackApiError

from bot.slack.blocks import Message
from bot.slack.store import QueuedReply, SlackStore
from bot.slack.surface import Surface, refusal

log = logging.getLogger(__name__)

REPLY_EVENT = "delistbot_reply"  # message metadata type carrying the reply's outbox key
_UNDELIVERED = (SlackApiError, urllib.error.URLError, OSError)


class Replies:
    def __init__(self, store: SlackStore, surface: Surface, interval: float = 10.0) -> None:
        self.store, self.surface, self.interval = store, surface, interval
        # One delivery of a reply at a time (never two posts of one row), replies in parallel:
        # a lock per reply, striped so that the set stays bounded.
        self._locks = tuple(threading.Lock() for _ in range(64))
        # (group, channel, ts of the first message, whether it went out late): set by the owner
        # of the groups that need to know (ticket cards).
        self.on_first: Callable[[str, str, str, bool], None] = lambda *_: None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="delistbot-replies", daemon=True)

    def send(self, group: str, channel: str, thread_ts: str | None,
             messages: list[Message]) -> bool:
        """Queue a reply and try to deliver it now; True if all of it reached Slack.

        A refusal that waiting cannot cure (not_in_channel, invalid_blocks…) drops the reply
        and is raised, so the caller can tell the user; an outage leaves it queued.
        """
        self.store.queue_reply(group, channel, thread_ts,
                               [(m.text, list(m.blocks)) for m in messages])
        self._deliver(group, raise_refusal=True)
        return not self.store.pending_replies(group)

    def append(self, group: str, channel: str, messages: list[Message]) -> bool:
        """More messages for a reply already queued (or sent): they go under its first one."""
        self.store.queue_reply(group, channel, None, [(m.text, list(m.blocks)) for m in messages],
                               append=True)
        self._deliver(group, raise_refusal=True)
        return not self.store.pending_replies(group)

    def flush(self, group: str | None = None) -> int:
        """Deliver what is queued (one reply, or all); the number of messages delivered."""
        groups = [g for g, _ in groupby(self.store.pending_replies(group), key=lambda r: r.group)]
        return sum(self._deliver(g) for g in dict.fromkeys(groups))

    def _deliver(self, group: str, raise_refusal: bool = False) -> int:
        with self._locks[hash(group) % len(self._locks)]:
            # Read again under the lock: another thread may have delivered some meanwhile.
            try:
                return self._deliver_rows(self.store.pending_replies(group))
            except SlackApiError as err:
                error = err.response.get("error")
                dropped = self.store.drop_replies(group, str(error))
                log.warning("Slack refused reply %s (%s); %d message(s) dropped",
                            group, error, dropped)
                if raise_refusal:
                    raise
                return 0

    def _deliver_rows(self, rows: list[QueuedReply]) -> int:
        delivered = 0
        for row in sorted(rows, key=lambda r: r.seq):
            thread_ts = row.thread_ts if row.seq == 0 else self.store.first_reply_ts(row.group)
            if row.seq and thread_ts is None:
                break  # the first message has not gone out yet
            try:
                self.store.reply_attempt(row.id)
                ts = self._post(row, thread_ts)
            except _UNDELIVERED as exc:
                if refusal(exc):
                    raise
                log.warning("reply %s not delivered (%s); it stays queued", row.key, exc)
                break  # keep the order: the rest of this reply waits for this one
            self.store.reply_sent(row.id, ts)
            delivered += 1
            if row.seq == 0 and ts:
                self._first_sent(row, ts)
        return delivered

    def _first_sent(self, row: QueuedReply, ts: str) -> None:
        try:
            self.on_first(row.group, row.channel, ts, row.attempts > 0)
        except Exception:  # the message is out; what follows it must not be held up
            log.exception("after delivering %s", row.key)

    def _post(self, row: QueuedReply, thread_ts: str | None) -> str | None:
        if row.attempts and thread_ts:
            found = self.surface.find_in_thread(row.channel, thread_ts, REPLY_EVENT, row.key)
            if found:
                log.info("reply %s reached Slack on an earlier attempt; not posting it again",
                         row.key)
                return found
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
        passes = 0
        while not self._stop.wait(self.interval):
            try:
                self.flush()
                passes += 1
                if passes % 360 == 1:  # at start and about hourly at the default interval
                    self.store.prune_replies()
            except Exception:  # a bad pass (database busy, a bug) must not end the loop
                log.exception("reply delivery pass failed; trying again in %.0fs", self.interval)

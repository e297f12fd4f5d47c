"""Replies that must not be lost: the diagnosis under a bounce posted in a channel, a new
ticket's card with its story (diagnosis, DNS picture, draft) in the card's thread, the DNS
picture of `/delist <ip>`, notes in a ticket's thread, and the updates of its card.

The bounce event was acknowledged and recorded (so Slack will not send it again) before the reply
is posted; if Slack's Web API is down at that moment (5xx or 429 after the client's own retries,
a dropped connection), the reply would be gone. So it goes through `slack_outbox` in SQLite:
queued before the first attempt, marked sent once Slack has it, retried by a loop every few
seconds and after a restart. Each message carries its outbox key in its metadata, and the
attempt is counted before the post; before a message whose earlier attempt may have reached
Slack is posted again, its thread (or, for a top-level message, the channel's latest messages)
is searched for that key, so a reply is never posted twice: the posts themselves are made by a
client that does not retry after a 5xx or a dropped connection. A reply's messages go out in
order; `on_first` hears where each reply's first message went (a card's ts), also when it goes
out late or after a restart. A card update (chat.update) is idempotent: it is simply retried,
and a newer update of the same message replaces one still waiting.
"""

from __future__ import annotations

import logging
import threading
import urllib.error
from collections.abc import Callable
from itertools import groupby
from typing import Any

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
        # Re-entrant: delivering a card may update it (`on_first`), whose group can share a stripe.
        self._locks = tuple(threading.RLock() for _ in range(64))
        # (group, channel, ts of the first message, whether it went out late): set by the owner
        # of the groups that need to know (ticket cards).
        self.on_first: Callable[[str, str, str, bool], None] = lambda *_: None
        # (group, what the stand-in holds) -> the messages it stands for; set by their owner.
        self.then: Callable[[str, dict[str, Any]], list[Message]] = lambda *_: []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="delistbot-replies", daemon=True)

    def send(self, group: str, channel: str, thread_ts: str | None,
             messages: list[Message], then: dict[str, Any] | None = None) -> bool:
        """Queue a reply and try to deliver it now; True if all of it reached Slack.

        `then`: after these messages, those `self.then(group, then)` makes when they are out
        (queued now, made later: a restart between the two loses nothing).
        A refusal that waiting cannot cure (not_in_channel, invalid_blocks…) drops the reply
        and is raised, so the caller can tell the user; an outage leaves it queued.
        """
        self.store.queue_reply(group, channel, thread_ts,
                               [(m.text, list(m.blocks)) for m in messages], then=then)
        self._deliver(group, raise_refusal=True)
        return not self.store.pending_replies(group)

    def append(self, group: str, channel: str, messages: list[Message]) -> bool:
        """More messages for a reply already queued (or sent): they go under its first one."""
        self.store.queue_reply(group, channel, None, [(m.text, list(m.blocks)) for m in messages],
                               append=True)
        self._deliver(group, raise_refusal=True)
        return not self.store.pending_replies(group)

    def update(self, channel: str, ts: str, message: Message) -> bool:
        """Replace the message at `ts` (a ticket's card), through the outbox: if Slack is down the
        update waits (a newer one replaces it); chat.update is idempotent, so it is simply
        retried. True if Slack has it; a refusal (message_not_found…) is raised."""
        group = self.store.queue_update(channel, ts, message.text, list(message.blocks))
        self._deliver(group, raise_refusal=True)
        return not self.store.pending_replies(group)

    def flush(self, group: str | None = None) -> int:
        """Deliver what is queued (one reply, or all); the number of messages delivered."""
        groups = [g for g, _ in groupby(self.store.pending_replies(group), key=lambda r: r.group)]
        return sum(self._deliver(g) for g in dict.fromkeys(groups))

    def _deliver(self, group: str, raise_refusal: bool = False) -> int:
        with self._locks[hash(group) % len(self._locks)]:
            delivered = 0
            try:
                # Read again under the lock (another thread may have delivered some meanwhile),
                # and again after a stand-in became messages.
                while True:
                    count, expanded = self._deliver_rows(self.store.pending_replies(group))
                    delivered += count
                    if not expanded:
                        return delivered
            except SlackApiError as err:
                error = err.response.get("error")
                dropped = self.store.drop_replies(group, str(error))
                log.warning("Slack refused reply %s (%s); %d message(s) dropped",
                            group, error, dropped)
                if raise_refusal:
                    raise
                return delivered

    def _deliver_rows(self, rows: list[QueuedReply]) -> tuple[int, bool]:
        """Deliver in order until one fails; (messages delivered, whether a stand-in expanded)."""
        delivered = 0
        for row in sorted(rows, key=lambda r: r.seq):
            if row.update_ts:
                thread_ts = None
            elif row.seq:
                thread_ts = self.store.first_reply_ts(row.group)
                if thread_ts is None:
                    break  # the first message has not gone out yet
            else:
                thread_ts = row.thread_ts
            if row.then is not None:
                self._expand(row)
                return delivered, True
            try:
                self.store.reply_attempt(row.id)  # counted first: a crash mid-post is known
                ts = self._post(row, thread_ts)
            except _UNDELIVERED as exc:
                if refusal(exc):
                    raise
                log.warning("reply %s not delivered (%s); it stays queued", row.key, exc)
                break  # keep the order: the rest of this reply waits for this one
            self.store.reply_sent(row.id, ts)
            delivered += 1
            if row.seq == 0 and ts and not row.update_ts:
                self._first_sent(row, ts)
        return delivered, False

    def _expand(self, row: QueuedReply) -> None:
        assert row.then is not None
        try:
            messages = self.then(row.group, row.then)
        except Exception:  # what was to follow is lost, not the rest of the outbox
            log.exception("could not make the messages of %s", row.key)
            messages = []
        self.store.expand(row, [(m.text, list(m.blocks)) for m in messages])

    def _first_sent(self, row: QueuedReply, ts: str) -> None:
        try:
            self.on_first(row.group, row.channel, ts, row.attempts > 0)
        except Exception:  # the message is out; what follows it must not be held up
            log.exception("after delivering %s", row.key)

    def _post(self, row: QueuedReply, thread_ts: str | None) -> str | None:
        if row.update_ts:
            self.surface.update(row.channel, row.update_ts, Message(row.text, row.blocks))
            return row.update_ts
        if row.attempts:
            # An earlier attempt may have reached Slack (a 5xx after posting, a lost answer, a
            # crash before the mark): look for its key, in the thread or, for a top-level
            # message, among the channel's latest.
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

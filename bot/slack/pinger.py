"""The ping loop: due pings from the ticket outbox, posted in each ticket's thread.

State lives in SQLite (the lifecycle's outbox), not in timers, so a restart loses nothing: each
tick queues what is due (idempotent by key), claims a batch, posts each ping with
`reply_broadcast` so the channel sees it too, and marks it sent. A delivery Slack cannot take now (429
after the client's own retries, 5xx, a network error) is released back to the outbox and tried on
a later tick, after a backoff that doubles up to 5 minutes. A refusal that waiting cannot cure
(`not_in_channel`, `is_archived`, `invalid_auth`…) is not retried: the ping is kept in the outbox
marked undelivered with Slack's reason (`delistbot due` lists it) and logged once; when the
ticket's channel was the problem and a fallback channel is configured, the ping goes there
instead. A ping claimed before (its sender died mid-delivery, or Slack failed in a way that
leaves it unknown whether the message was posted) is first looked for in the thread, by the key
carried in the message metadata, so neither a crash nor a lost answer posts it twice; for the same
reason the post itself is not retried by the client after a 5xx or a dropped connection.
"""

from __future__ import annotations

import logging
import socket
import threading
import urllib.error
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol

from slack_sdk.errors import SlackApiError

from bot.slack import blocks
from bot.slack.surface import PLACE_ERRORS, Surface, refusal

log = logging.getLogger(__name__)

DEFAULT_INTERVAL = 10.0  # seconds between ticks: a due ping goes out well within 30 s
PING_EVENT = "delistbot_ping"  # message metadata type carrying the ping's outbox key
MAX_BACKOFF = 300.0  # seconds: the longest wait between two tries of a ping while Slack is down
_UNDELIVERED = (SlackApiError, urllib.error.URLError, OSError)


class Outbox(Protocol):
    def queue_due(self, now: datetime) -> int: ...
    def claim_pings(self, worker: str, now: datetime, limit: int = 20) -> list[Any]: ...
    def ping_sent(self, ping_id: int, now: datetime, note: str | None = None) -> bool: ...
    def ping_failed(self, ping_id: int, retry_at: datetime | None = None) -> None: ...
    def ping_refused(self, ping_id: int, error: str, now: datetime) -> bool: ...
    def release_claims(self, worker: str, before: datetime) -> int: ...


class Pinger:
    def __init__(
        self,
        outbox: Outbox,
        surface: Surface,
        owner_of: Callable[[str], str | None],
        clock: Callable[[], datetime],
        interval: float = DEFAULT_INTERVAL,
        worker: str = f"slack@{socket.gethostname()}",
        fallback_channel: str | None = None,
        annotate: Callable[[Any], str] = lambda row: "",
        before_tick: Callable[[datetime], object] | None = None,
        thread_of: Callable[[str], tuple[str | None, str | None]] = lambda ref: (None, None),
    ) -> None:
        self.outbox, self.surface, self.owner_of = outbox, surface, owner_of
        self.annotate = annotate  # extra words for a ping, looked up when it goes out
        self.words: Callable[[Any], str] = lambda row: str(row.text)  # its text in Slack's words
        self.offer: Callable[[Any], Sequence[str]] = lambda row: ()  # card controls it carries
        self.thread_of = thread_of  # a ticket's (channel, thread ts) now
        # Work that may queue pings, run first in each tick (the tickets' DNS re-checks), so
        # what it finds goes out in the same tick.
        self.before_tick = before_tick
        self.clock, self.interval, self.worker = clock, interval, worker
        self.fallback_channel = fallback_channel  # for tickets opened outside Slack
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._lock = threading.Lock()  # one tick at a time, whoever starts it
        self._thread = threading.Thread(target=self._loop, name="delistbot-pinger", daemon=True)

    def start(self) -> None:
        # Claims this worker holds from before now were taken by an earlier run of this bot that
        # died (one bot per database and host): free them at once instead of after the lease.
        # Each is looked for in its thread before it is posted again (attempts > 1).
        freed = self.outbox.release_claims(self.worker, self.clock())
        if freed:
            log.info("%d ping(s) claimed before a restart are due again", freed)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=self.interval + 5)

    def wake(self) -> None:
        """Run a tick now (a confirmation just arrived) instead of at the next interval."""
        self._wake.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception:  # one bad tick (database busy, a bug) must not end the loop
                log.exception("ping tick failed; trying again in %.0fs", self.interval)
            self._wake.wait(self.interval)
            self._wake.clear()

    def tick(self) -> int:
        """Queue, claim and deliver what is due now; the number of pings delivered."""
        with self._lock:
            now = self.clock()
            self._before(now)
            self.outbox.queue_due(now)
            return sum(self._deliver(row) for row in self.outbox.claim_pings(self.worker, now))

    def _before(self, now: datetime) -> None:
        if self.before_tick is None:
            return
        try:
            self.before_tick(now)
        except Exception:  # the DNS re-checks failing must not hold back the pings
            log.exception("DNS re-check of tickets failed; pings go out all the same")

    def _annotation(self, row: Any) -> str:
        try:
            return self.annotate(row)
        except Exception:  # the ping matters more than its extra line
            log.exception("could not annotate ping %s", row.key)
            return ""

    def _message(self, row: Any, note: str) -> blocks.Message:
        try:
            words, offered = self.words(row), tuple(self.offer(row))
        except Exception:  # the ping matters more than its buttons: it goes out as queued
            log.exception("could not word ping %s for Slack", row.key)
            words, offered = str(row.text), ()
        text = " ".join(filter(None, [words, self._annotation(row), note]))
        return blocks.ping_message(self.owner_of(row.ticket_id), text, row.ticket_id, offered)

    def _deliver(self, row: Any) -> int:
        channel, thread_ts = self._where(row)
        if not channel:
            return self._refused(row, "no Slack thread, and no [slack] channel to fall back on")
        try:
            self._post_once(row, channel, thread_ts)
        except _UNDELIVERED as exc:
            error = refusal(exc)
            if error is None:
                return self._later(row, exc)
            fallback = self.fallback_channel
            if error in PLACE_ERRORS and fallback and fallback != channel:
                return self._fall_back(row, fallback, channel, error)
            return self._refused(row, error)
        self.outbox.ping_sent(row.id, self.clock())
        log.info("ping %s delivered for %s", row.key, row.ticket_id)
        return 1

    def _where(self, row: Any) -> tuple[str | None, str | None]:
        """The ticket's thread (its card may have reached Slack after the ping was queued),
        else the fallback channel, top-level."""
        channel, thread_ts = row.slack_channel, row.slack_thread_ts
        if not (channel and thread_ts):
            channel, thread_ts = self.thread_of(row.ticket_id)
        if not (channel and thread_ts):
            channel, thread_ts = self.fallback_channel, None
        return channel, thread_ts

    def _post_once(self, row: Any, channel: str, thread_ts: str | None, note: str = "") -> None:
        """Post the ping unless an earlier attempt (a crash, a lost answer) already did."""
        if row.attempts > 1 and self.surface.find_in_thread(
            channel, thread_ts, PING_EVENT, row.key
        ):
            log.info("ping %s was delivered before a restart; not posting it again", row.key)
            return
        message = self._message(row, note)
        self.surface.post(channel, message, thread_ts=thread_ts, broadcast=True,
                          metadata={"event_type": PING_EVENT, "event_payload": {"key": row.key}})

    def _fall_back(self, row: Any, fallback: str, channel: str, error: str) -> int:
        """The ticket's channel refused (the bot was removed, it was archived…): the fallback
        channel gets the ping, top-level, saying where it could not go."""
        note = f"(Not posted in the ticket's channel {channel}: Slack answered {error}.)"
        try:
            self._post_once(row, fallback, None, note)
        except _UNDELIVERED as exc:
            again = refusal(exc)
            if again is None:
                return self._later(row, exc)
            return self._refused(row, f"{error} in {channel}; {again} in {fallback}")
        self.outbox.ping_sent(row.id, self.clock(), f"{error} in {channel}; posted in {fallback}")
        log.warning("ping %s for %s: Slack answered %s in %s; posted in %s instead",
                    row.key, row.ticket_id, error, channel, fallback)
        return 1

    def _later(self, row: Any, exc: BaseException) -> int:
        """Slack is down or busy: try again after a backoff that doubles with each attempt."""
        delay = min(self.interval * 2 ** max(0, row.attempts - 1), MAX_BACKOFF)
        log.warning("ping %s for %s not delivered (%s); it stays in the outbox, next try in %.0fs",
                    row.key, row.ticket_id, exc, delay)
        self.outbox.ping_failed(row.id, self.clock() + timedelta(seconds=delay))
        return 0

    def _refused(self, row: Any, error: str) -> int:
        """Refused for good: kept as undelivered (`delistbot due` shows it), never retried."""
        log.error("ping %s for %s refused (%s): not retried; `delistbot due` lists it",
                  row.key, row.ticket_id, error)
        self.outbox.ping_refused(row.id, error, self.clock())
        return 0

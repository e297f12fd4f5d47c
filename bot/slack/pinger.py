"""The ping loop: due pings from the ticket outbox, posted in each ticket's thread.

State lives in SQLite (the lifecycle's outbox), not in timers, so a restart loses nothing: each
tick queues what is due (idempotent by key), claims a batch, posts each ping with
`reply_broadcast` so the channel sees it too, and marks it sent. A delivery Slack refuses (429
after the client's own retries, 5xx, a network error) is released back to the outbox and tried on
a later tick. A ping claimed before (its sender died mid-delivery, or Slack failed in a way that
leaves it unknown whether the message was posted) is first looked for in the thread, by the key
carried in the message metadata, so neither a crash nor a lost answer posts it twice; for the same
reason the post itself is not retried by the client after a 5xx or a dropped connection.
"""

from __future__ import annotations

import logging
import socket
import threading
import urllib.error
from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol

from slack_sdk.errors import SlackApiError

from bot.slack import blocks
from bot.slack.surface import Surface

log = logging.getLogger(__name__)

DEFAULT_INTERVAL = 10.0  # seconds between ticks: a due ping goes out well within 30 s
PING_EVENT = "delistbot_ping"  # message metadata type carrying the ping's outbox key


class Outbox(Protocol):
    def queue_due(self, now: datetime) -> int: ...
    def claim_pings(self, worker: str, now: datetime, limit: int = 20) -> list[Any]: ...
    def ping_sent(self, ping_id: int, now: datetime) -> bool: ...
    def ping_failed(self, ping_id: int) -> None: ...
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
    ) -> None:
        self.outbox, self.surface, self.owner_of = outbox, surface, owner_of
        self.annotate = annotate  # extra words for a ping, looked up when it goes out
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

    def _deliver(self, row: Any) -> int:
        channel, thread_ts = row.slack_channel, row.slack_thread_ts
        if not (channel and thread_ts) and self.fallback_channel:
            channel, thread_ts = self.fallback_channel, None
        if not channel:
            self.outbox.ping_failed(row.id)  # no thread and no fallback channel: the CLI's
            return 0
        try:
            if row.attempts > 1 and self.surface.find_in_thread(
                channel, thread_ts, PING_EVENT, row.key
            ):
                log.info("ping %s was delivered before a restart; not posting it again", row.key)
            else:
                text = " ".join(filter(None, [row.text, self._annotation(row)]))
                message = blocks.ping_message(self.owner_of(row.ticket_id), text)
                self.surface.post(channel, message, thread_ts=thread_ts, broadcast=True,
                                  metadata={"event_type": PING_EVENT,
                                            "event_payload": {"key": row.key}})
        except (SlackApiError, urllib.error.URLError, OSError) as exc:
            log.warning("ping %s for %s not delivered (%s); it stays in the outbox",
                        row.key, row.ticket_id, exc)
            self.outbox.ping_failed(row.id)
            return 0
        self.outbox.ping_sent(row.id, self.clock())
        log.info("ping %s delivered for %s", row.key, row.ticket_id)
        return 1

"""The ping loop: due pings from the ticket outbox, posted in each ticket's thread.

State lives in SQLite (the lifecycle's outbox), not in timers, so a restart loses nothing: each
tick queues what is due (idempotent by key), claims a batch, posts each ping with
`reply_broadcast` so the channel sees it too, and marks it sent. A delivery Slack refuses (429
after retries, 5xx, a network error) is released back to the outbox and tried on a later tick;
it is marked sent only after Slack accepted it, so it is never posted twice by one worker.
"""

from __future__ import annotations

import logging
import re
import threading
import urllib.error
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Protocol

from slack_sdk.errors import SlackApiError

from bot.slack import blocks
from bot.slack.surface import Surface
from bot.slack.text import escape

log = logging.getLogger(__name__)

# Only a real Slack user id becomes a mention; anything else stays text.
_USER_ID = re.compile(r"^[UW][A-Z0-9]{2,}$")
DEFAULT_INTERVAL = 10.0  # seconds between ticks: a due ping goes out well within 30 s


class Outbox(Protocol):
    def queue_due(self, now: datetime) -> int: ...
    def claim_pings(self, worker: str, now: datetime, limit: int = 20) -> list[Any]: ...
    def ping_sent(self, ping_id: int, now: datetime) -> bool: ...
    def ping_failed(self, ping_id: int) -> None: ...


def mention(owner: str | None) -> str:
    return f"<@{owner}> " if owner and _USER_ID.match(owner) else ""


class Pinger:
    def __init__(
        self,
        outbox: Outbox,
        surface: Surface,
        owner_of: Callable[[str], str | None],
        interval: float = DEFAULT_INTERVAL,
        worker: str = "slack",
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.outbox, self.surface, self.owner_of = outbox, surface, owner_of
        self.interval, self.worker, self.clock = interval, worker, clock
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="delistbot-pinger", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=self.interval + 5)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception:  # one bad tick (database busy, a bug) must not end the loop
                log.exception("ping tick failed; trying again in %.0fs", self.interval)
            self._stop.wait(self.interval)

    def tick(self) -> int:
        """Queue, claim and deliver what is due now; the number of pings delivered."""
        now = self.clock()
        self.outbox.queue_due(now)
        sent = 0
        for row in self.outbox.claim_pings(self.worker, now):
            sent += self._deliver(row)
        return sent

    def _deliver(self, row: Any) -> int:
        if not row.slack_channel or not row.slack_thread_ts:
            self.outbox.ping_failed(row.id)  # no thread to post in; stays queued for the CLI
            return 0
        text = mention(self.owner_of(row.ticket_id)) + escape(row.text)
        try:
            self.surface.post(row.slack_channel, blocks.notice(text), thread_ts=row.slack_thread_ts,
                              broadcast=True)
        except (SlackApiError, urllib.error.URLError, OSError) as exc:
            log.warning("ping %s for %s not delivered (%s); it stays in the outbox",
                        row.key, row.ticket_id, exc)
            self.outbox.ping_failed(row.id)
            return 0
        self.outbox.ping_sent(row.id, self.clock())
        log.info("ping %s delivered for %s", row.key, row.ticket_id)
        return 1

"""What the Slack edge needs from the rest of delistbot, as plain callables.

The listeners depend on these names only; `bot.slack.wiring` binds them to the service layer
(`bot.service.diagnose`, `bot.service.evidence`, `bot.service.tickets`). Keeping the seam here
lets the console and the tests run the same listeners, and keeps Bolt out of the service layer.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from bot.core.model import Diagnosis
from bot.slack.blocks import Listing

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IpPicture:
    """What the DNS says about one IP, ready for `blocks.ip_report`."""

    ip: str
    listings: Sequence[Listing] = ()
    note: str = ""  # e.g. "a private address: no public list can list it"


@dataclass(frozen=True)
class Services:
    diagnose: Callable[[bytes, str], list[Diagnosis]]
    check_ip: Callable[[str], IpPicture]
    draft: Callable[[Diagnosis], str | None]
    names: Mapping[str, str] = field(default_factory=dict)  # provider id -> display name
    # DNS re-checks of tickets due at a time (bot.service.recheck); None: not wired (no DNS)
    recheck: Callable[[datetime], Sequence[Any]] | None = None


class Runner(Protocol):
    """Runs work after the ack, so Slack hears back within its 3 seconds."""

    def submit(self, fn: Callable[..., Any], *args: Any) -> None: ...


class ThreadRunner:
    """Background work on a bounded pool, separate from Bolt's listener threads.

    Bolt acks from its listener pool; if DNS work ran there, 50 slow lookups would fill it and the
    51st command's ack would wait. Here the listener only enqueues, so acks never queue behind DNS.
    """

    def __init__(self, workers: int = 16) -> None:
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="delistbot-work")

    def submit(self, fn: Callable[..., Any], *args: Any) -> None:
        self._pool.submit(_logged, fn, *args)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=False)


class DeferredRunner:
    """The console's runner: work waits until the console has printed the ack, then runs inline."""

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[tuple[Callable[..., Any], tuple[Any, ...]]] = (
            queue.SimpleQueue()
        )
        self._lock = threading.Lock()

    def submit(self, fn: Callable[..., Any], *args: Any) -> None:
        self._jobs.put((fn, args))

    def drain(self) -> None:
        with self._lock:
            while not self._jobs.empty():
                fn, args = self._jobs.get()
                _logged(fn, *args)


def _logged(fn: Callable[..., Any], *args: Any) -> None:
    # The one place background failures surface: the handler itself already told the user what
    # it could; this keeps the traceback in the log instead of losing it inside a Future.
    try:
        fn(*args)
    except Exception:
        log.exception("background work %s failed", getattr(fn, "__name__", fn))

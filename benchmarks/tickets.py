"""Ticket store figures: opening and sending tickets, `due` over 500 and 10,000 tickets, file size.

    python benchmarks/tickets.py [--small 500] [--large 10000]

1. `--small` tickets opened from a real bounce (the seed bounce with a distinct IP each, through
   the diagnosis engine, as `delistbot open` does) and marked sent, each its own transaction on a
   fresh SQLite file (WAL). Beside it, the floor: the same number of rows inserted and updated
   with plain sqlite3, one transaction each, same file settings.
2. `due` (every ping due now, from the stored state) over those tickets, and the floor: reading
   the same active rows with plain sqlite3.
3. The file grown to `--large` tickets (opened from one diagnosis with a new IP each, sent; one
   in five taken through delisted, verified and closed so the learned waits have figures; half on
   SpamCop, so the DNS re-check has candidates to choose from), then
   `due`, `queue_due` (the outbox writes: the first pass, which queues a ping per ticket, beside
   a pass with nothing new, as the Slack app's ping loop runs it every `ping_interval`) and the
   DNS re-check's due list over all of them, and `delistbot due` as an operator runs it (a new
   process: Python start-up included).
4. The file's size (database plus WAL) after each step.

All times are wall clock on this machine; each timed read is the median of 5 runs.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.config import Settings  # noqa: E402
from bot.core.tickets import Event, Kind  # noqa: E402
from bot.service import recheck  # noqa: E402
from bot.service.diagnose import diagnose_bytes  # noqa: E402
from bot.service.tickets import build  # noqa: E402

BOUNCE = (ROOT / "examples" / "seed-bounce.txt").read_bytes()
BOUNCE_IP = b"203.0.113.44"
T0 = datetime(2026, 11, 1, tzinfo=UTC)


def ip(n: int) -> str:
    return f"85.{12 + n // 65536}.{n // 256 % 256}.{n % 256}"


def size(path: Path) -> str:
    total = sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))
    return f"{total / 1024:,.0f} KiB"


def median_ms(fn: Callable[[], Any], runs: int = 5) -> tuple[float, Any]:
    times, out = [], None
    for _ in range(runs):
        started = time.perf_counter()
        out = fn()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), out


def row(label: str, ours: str, floor: str = "") -> None:
    print(f"  {label:<58} {ours:>14}   {floor}")


def open_small(db: Path, count: int) -> list[float]:
    svc = build(Settings(db_path=db))
    per: list[float] = []
    for n in range(count):
        data = BOUNCE.replace(BOUNCE_IP, ip(n).encode())
        started = time.perf_counter()
        [opened] = svc.open_from_bounce(data, f"bounce-{n}", T0)
        assert opened.ticket is not None and opened.created, opened.problem
        svc.mark_sent(opened.ticket.id, T0 + timedelta(minutes=1))
        per.append((time.perf_counter() - started) * 1000)
    svc.store.close()
    return per


def floor_small(db: Path, count: int, text: str) -> float:
    """Plain sqlite3: one row inserted, then updated, one transaction each (the floor)."""
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE t (n INTEGER PRIMARY KEY, ip TEXT, state TEXT, body TEXT,"
                 " requested_at TEXT)")
    conn.execute("CREATE TABLE e (n INTEGER, kind TEXT, at TEXT)")
    started = time.perf_counter()
    for n in range(count):
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO t (ip, state, body) VALUES (?, 'open', ?)", [ip(n), text])
        conn.execute("INSERT INTO e VALUES (?, 'opened', '')", [n])
        conn.execute("COMMIT")
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("UPDATE t SET state = 'requested', requested_at = '' WHERE n = ?", [n + 1])
        conn.execute("INSERT INTO e VALUES (?, 'sent', '')", [n])
        conn.execute("COMMIT")
    elapsed = (time.perf_counter() - started) * 1000
    conn.close()
    return elapsed


def floor_read(db: Path) -> float:
    conn = sqlite3.connect(db)
    ms, _ = median_ms(lambda: conn.execute(
        "SELECT * FROM tickets WHERE state <> 'closed' ORDER BY number").fetchall())
    conn.close()
    return ms


def grow(db: Path, start: int, total: int) -> None:
    """More tickets from one diagnosis, a new IP each, half of them on SpamCop (a DNS list);
    every fifth closed after a delisting."""
    svc = build(Settings(db_path=db))
    [base] = diagnose_bytes(BOUNCE, "seed")
    for n in range(start, total):
        d = dataclasses.replace(base, sending_ip=ip(n), source=f"grown-{n}",
                                blocklist="spamcop" if n % 2 else None)
        opened = svc.open_from_diagnosis(d, "", T0)
        assert opened.ticket is not None
        number = opened.ticket.number
        assert number is not None
        svc.mark_sent(number, T0 + timedelta(minutes=1))
        if n % 5 == 0:
            hours = 6 + n % 40  # delistings that took 6 to 45 hours
            svc.move(number, Event(Kind.DELISTED), T0 + timedelta(hours=hours))
            svc.move(number, Event(Kind.VERIFIED), T0 + timedelta(hours=hours + 2))
            svc.move(number, Event(Kind.CLOSED), T0 + timedelta(hours=hours + 3))
    svc.store.close()


def cli_due(db: Path, now: datetime) -> tuple[float, int, int]:
    env = {**os.environ, "DELISTBOT_DB": str(db), "PYTHONPATH": str(ROOT)}
    env.pop("DELISTBOT_CONFIG", None)
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "bot", "due", "--at", now.isoformat()],
                          env=env, capture_output=True, text=True, cwd=db.parent)
    ms = (time.perf_counter() - started) * 1000
    return ms, done.returncode, len(done.stdout.splitlines())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--small", type=int, default=500)
    parser.add_argument("--large", type=int, default=10_000)
    args = parser.parse_args()
    now = T0 + timedelta(days=3)  # every open seed ticket is overdue by then

    with tempfile.TemporaryDirectory(prefix="delistbot-bench-") as tmp:
        db = Path(tmp) / "delistbot.db"
        print(f"delistbot ticket store (SQLite {sqlite3.sqlite_version}, WAL; Python "
              f"{sys.version.split()[0]})")
        print(f"  {'':<58} {'delistbot':>14}   floor: plain sqlite3, same work")

        per = open_small(db, args.small)
        floor = floor_small(Path(tmp) / "floor.db", args.small, BOUNCE.decode())
        total = sum(per)
        row(f"open (engine + store) and sent, {args.small} tickets", f"{total / 1000:.2f} s",
            f"{floor / 1000:.2f} s (2 transactions per ticket)")
        row("  per ticket p50 / p99",
            f"{statistics.median(per):.1f} / {statistics.quantiles(per, n=100)[98]:.1f} ms",
            f"{floor / args.small:.2f} ms mean")
        svc = build(Settings(db_path=db))
        ms, pings = median_ms(lambda: svc.due(now))
        row(f"due over {args.small} tickets ({len(pings)} pings)", f"{ms:.0f} ms",
            f"{floor_read(db):.1f} ms to read the rows")
        row("file size", size(db))
        svc.store.close()

        started = time.perf_counter()
        grow(db, args.small, args.large)
        grown = time.perf_counter() - started
        added = args.large - args.small
        row(f"grow to {args.large:,} tickets ({added:,} opened + sent, 1 in 5 closed)",
            f"{grown:.1f} s", f"{grown / added * 1000:.1f} ms per ticket")
        svc = build(Settings(db_path=db))
        active = len(svc.tickets(active_only=True))
        ms, pings = median_ms(lambda: svc.due(now))
        row(f"due over {args.large:,} tickets ({active:,} active, {len(pings):,} pings)",
            f"{ms:.0f} ms", f"{floor_read(db):.1f} ms to read the rows")
        started = time.perf_counter()
        queued = svc.queue_due(now)
        first = (time.perf_counter() - started) * 1000
        again, nothing = median_ms(lambda: svc.queue_due(now))
        row(f"queue_due first pass ({queued:,} queued) / no-news pass ({nothing})",
            f"{first:.0f} / {again:.0f} ms", "(the ping loop's pass, every 10 s)")
        with svc.store.write():  # as if the ping loop had delivered them all
            svc.store.db.execute("UPDATE outbox SET sent_at = ?", [now.isoformat()])
        later = now + timedelta(seconds=10)
        ms, nothing = median_ms(lambda: svc.queue_due(later))
        row(f"queue_due 10 s later, all delivered ({nothing} queued)", f"{ms:.0f} ms")
        checker = recheck.build(Settings(db_path=db), svc)
        ms, due = median_ms(lambda: checker.due(now))
        row(f"DNS re-check due list ({len(due)} of a batch of {checker.batch})", f"{ms:.1f} ms",
            "(choosing them: no DNS asked)")
        svc.store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        row(f"file size, {args.large:,} tickets", size(db))
        svc.store.close()
        ms, code, lines = cli_due(db, now)
        row(f"`delistbot due` process, {args.large:,} tickets", f"{ms:.0f} ms",
            f"exit {code}, {lines:,} lines")


if __name__ == "__main__":
    main()

"""One IP across every list, against the loopback DNS server: is the wall time the slowest zone?

    .venv/bin/python benchmarks/dns_single.py [--delay 0.5] [--timeout 1.0] [--runs 5]

Prints (1) the wall time of `check_ip` when one zone answers `delay` seconds late, against that
delay (target: at most 1.2x), and (2) the wall time when one zone never answers, against the
per-query timeout (target: no more than the timeout, plus the other lookups' time). Each run uses
a fresh resolver (cold cache).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

from dns_server import ZONES, start

from bot.adapters.dns import DnsResolver
from bot.core import knowledge
from bot.core.dnsbl import ListingStatus
from bot.service.evidence import EvidenceService
from tests.dnsserver import CLEAN_IP, Delay, Drop

SLOW_ZONE = "psbl.surriel.com"


def one_check(port: int, timeout: float) -> tuple[float, list[str]]:
    resolver = DnsResolver([("127.0.0.1", port)], timeout=timeout)
    service = EvidenceService(knowledge.load(), ZONES, resolver, {}, deadline=timeout * 3)
    started = time.perf_counter()
    result = asyncio.run(service.check_ip(CLEAN_IP))
    wall = time.perf_counter() - started
    return wall, [x.list for x in result.listings if x.status is ListingStatus.UNKNOWN]


def measure(port: int, timeout: float, runs: int) -> tuple[float, list[str]]:
    walls, unknown = [], []
    for _ in range(runs):
        wall, unknown = one_check(port, timeout)
        walls.append(wall)
    return statistics.median(walls), unknown


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--delay", type=float, default=0.5)
    parser.add_argument("--timeout", type=float, default=1.0)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    lists = sum(1 for z in ZONES if z.zone)

    port, stop = start({SLOW_ZONE: Delay(args.delay)})
    try:
        wall, unknown = measure(port, max(args.timeout, args.delay * 2), args.runs)
    finally:
        stop()
    print(f"{lists} lists, one IP, {SLOW_ZONE} answers {args.delay:.3f} s late "
          f"(median of {args.runs} cold runs)")
    print(f"  wall {wall:.3f} s = {wall / args.delay:.2f}x the slowest zone's delay "
          f"(target <= 1.20x); unknown: {unknown or 'none'}")

    port, stop = start({SLOW_ZONE: Drop()})
    try:
        wall, unknown = measure(port, args.timeout, args.runs)
    finally:
        stop()
    print(f"{SLOW_ZONE} never answers, per-query timeout {args.timeout:.3f} s")
    print(f"  wall {wall:.3f} s = {wall / args.timeout:.2f}x the timeout "
          f"(target: about 1x); unknown: {unknown}")


if __name__ == "__main__":
    main()

"""A /24 sweep (256 IPs x every list) against the loopback DNS server, delistbot beside pydnsbl.

    make bench-dns        (installs pydnsbl into .venv first; it is not a runtime dependency)
    .venv/bin/python benchmarks/dns_sweep.py [--concurrency 100] [--rounds 7]

Both clients ask the same server (its own process) for the same 256 x N names, with the same
bound on queries in flight (a semaphore of `--concurrency` in each), the same 5 s timeout and one
try, and each round starts cold (new resolver, empty cache); rounds alternate between the
clients so that drift on the machine hits both alike. Like for like: pydnsbl's `bulk_check(ips)`
beside delistbot's `check_ips(ips)` (what `delistbot check 85.10.20.0/24` runs). delistbot also
asks each zone's two RFC 5782 test points and the TXT reason of listed IPs, which pydnsbl does
not; its queries/s counts those. Also printed: 256 separate `check_ip` calls at once (how the bot
sees a burst of single checks), and how busy the server process was (its CPU time over the wall
time: well under 100% means the server is not what limits the client). pydnsbl is pointed
at the server by replacing its aiodns resolver with one built on the same server and port
(pydnsbl has no option for a nameserver).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Callable

from dns_server import SWEEP_NET, ZONES, start_measured

from bot.adapters.dns import DnsResolver
from bot.core import knowledge
from bot.core.dnsbl import ListingStatus
from bot.service.evidence import CheckResult, EvidenceService

IPS = [f"{SWEEP_NET}.{i}" for i in range(256)]
ZONE_NAMES = [z.zone for z in ZONES if z.zone]
KNOWLEDGE = knowledge.load()
Round = tuple[float, int, int]  # wall seconds, queries sent, listings found
Measured = tuple[float, int, int, float]  # ... and the server's CPU seconds meanwhile


def _listed(results: list[CheckResult]) -> int:
    return sum(len(r.with_status(ListingStatus.LISTED)) for r in results)


def delistbot_round(port: int, concurrency: int, timeout: float, separate: bool = False) -> Round:
    resolver = DnsResolver([("127.0.0.1", port)], timeout=timeout, concurrency=concurrency)
    service = EvidenceService(KNOWLEDGE, ZONES, resolver, {}, deadline=30)

    async def sweep() -> list[CheckResult]:
        if separate:
            return list(await asyncio.gather(*(service.check_ip(ip) for ip in IPS)))
        return await service.check_ips(IPS)

    started = time.perf_counter()
    results = asyncio.run(sweep())
    wall = time.perf_counter() - started
    unknown = sum(len(r.with_status(ListingStatus.UNKNOWN)) for r in results)
    assert unknown == 0, f"delistbot: {unknown} unknown answers"
    return wall, resolver.sent, _listed(results)


def pydnsbl_round(port: int, concurrency: int, timeout: float) -> Round:
    import aiodns
    import pydnsbl
    from pydnsbl.providers import Provider

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    checker = pydnsbl.DNSBLIpChecker(providers=[Provider(z) for z in ZONE_NAMES],
                                     timeout=timeout, tries=1, concurrency=concurrency, loop=loop)
    checker._resolver = aiodns.DNSResolver(nameservers=["127.0.0.1"], udp_port=port,
                                           tcp_port=port, timeout=timeout, tries=1, loop=loop)
    started = time.perf_counter()
    results = checker.bulk_check(IPS)
    wall = time.perf_counter() - started
    loop.close()
    listed = sum(len(r.detected_by) for r in results)
    failed = sum(len(r.failed_providers) for r in results)
    assert failed == 0, f"pydnsbl: {failed} failed lookups"
    return wall, len(IPS) * len(ZONE_NAMES), listed


def report(name: str, rounds: list[Measured]) -> float:
    wall = statistics.median(r[0] for r in rounds)
    busy = statistics.median(r[3] / r[0] for r in rounds)
    sent, listed = rounds[-1][1], rounds[-1][2]
    answers = len(IPS) * len(ZONE_NAMES)
    print(f"  {name:<24} wall {wall:6.3f} s  {answers / wall:7.0f} IP x list answers/s  "
          f"{sent / wall:7.0f} queries/s  server busy {busy:4.0%}  ({sent} queries, "
          f"{listed} listings found)")
    return answers / wall


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--timeout", type=float, default=5.0)
    args = parser.parse_args()
    clients: dict[str, Callable[[int, int, float], Round]] = {
        "delistbot check_ips": delistbot_round,
        "pydnsbl bulk_check": pydnsbl_round,
        "delistbot 256 x check_ip": lambda *a: delistbot_round(*a, separate=True),
    }
    rounds: dict[str, list[Measured]] = {name: [] for name in clients}
    port, stop, server_cpu = start_measured()
    try:
        for _ in range(args.rounds):  # interleaved, so drift hits every client alike
            for name, client in clients.items():
                before = server_cpu()
                wall, sent, listed = client(port, args.concurrency, args.timeout)
                rounds[name].append((wall, sent, listed, server_cpu() - before))
    finally:
        stop()
    print(f"/24 sweep: {len(IPS)} IPs x {len(ZONE_NAMES)} lists, concurrency "
          f"{args.concurrency}, median of {args.rounds} cold rounds, loopback server in its "
          "own process")
    figures = {name: report(name, r) for name, r in rounds.items()}
    ours, theirs = figures["delistbot check_ips"], figures["pydnsbl bulk_check"]
    print(f"  delistbot / pydnsbl = {ours / theirs:.2f}x (target >= 1.00x); 256 separate "
          f"checks / pydnsbl = {figures['delistbot 256 x check_ip'] / theirs:.2f}x")


if __name__ == "__main__":
    main()

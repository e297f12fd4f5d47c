"""A /24 sweep (256 IPs x every list) against the loopback DNS server, delistbot beside pydnsbl.

    make bench-dns        (installs pydnsbl into .venv first; it is not a runtime dependency)
    .venv/bin/python benchmarks/dns_sweep.py [--concurrency 100] [--rounds 3]

Both clients ask the same server (its own process) for the same 256 x N names, with the same
bound on queries in flight, and each round starts cold (new resolver, empty cache). Printed per
client: wall time, IP x list answers per second, and queries per second on the wire. delistbot
also asks each zone's two RFC 5782 test points (once per zone, thanks to its shared cache) and
the TXT reason of listed IPs, which pydnsbl does not. pydnsbl is pointed at the server by
replacing its aiodns resolver with one built on the same server and port (pydnsbl has no option
for a nameserver).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

from dns_server import SWEEP_NET, ZONES, start

from bot.adapters.dns import DnsResolver
from bot.core import knowledge
from bot.core.dnsbl import ListingStatus
from bot.service.evidence import EvidenceService

IPS = [f"{SWEEP_NET}.{i}" for i in range(256)]
ZONE_NAMES = [z.zone for z in ZONES if z.zone]


def delistbot_round(port: int, concurrency: int, timeout: float) -> tuple[float, int, int]:
    resolver = DnsResolver([("127.0.0.1", port)], timeout=timeout, concurrency=concurrency)
    service = EvidenceService(knowledge.load(), ZONES, resolver, {}, deadline=30)

    async def sweep() -> int:
        results = await asyncio.gather(*(service.check_ip(ip) for ip in IPS))
        return sum(len(r.with_status(ListingStatus.LISTED)) for r in results)

    started = time.perf_counter()
    listed = asyncio.run(sweep())
    return time.perf_counter() - started, resolver.sent, listed


def pydnsbl_round(port: int, concurrency: int, timeout: float) -> tuple[float, int, int]:
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


def report(name: str, rounds: list[tuple[float, int, int]]) -> float:
    wall = statistics.median(r[0] for r in rounds)
    sent, listed = rounds[-1][1], rounds[-1][2]
    answers = len(IPS) * len(ZONE_NAMES)
    print(f"  {name:<10} wall {wall:6.3f} s  {answers / wall:8.0f} IP x list answers/s  "
          f"{sent / wall:8.0f} queries/s on the wire ({sent} queries, {listed} listings found)")
    return answers / wall


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=5.0)
    args = parser.parse_args()
    port, stop = start()
    try:
        ours, theirs = [], []
        for _ in range(args.rounds):  # interleaved, so drift hits both alike
            ours.append(delistbot_round(port, args.concurrency, args.timeout))
            theirs.append(pydnsbl_round(port, args.concurrency, args.timeout))
    finally:
        stop()
    print(f"/24 sweep: {len(IPS)} IPs x {len(ZONE_NAMES)} lists, concurrency "
          f"{args.concurrency}, median of {args.rounds} cold rounds, loopback server")
    a = report("delistbot", ours)
    b = report("pydnsbl", theirs)
    print(f"  delistbot / pydnsbl = {a / b:.2f}x (target >= 1.00x)")


if __name__ == "__main__":
    main()

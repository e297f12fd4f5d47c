"""Helpers for the DNS benchmarks: the tests' loopback DNS server, seeded, in its own process.

The server runs in a separate process so that it does not share a GIL with the client being
measured. `start(behaviours)` returns (port, stop).
"""

from __future__ import annotations

import multiprocessing
import os
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.core import dnsbl, knowledge  # noqa: E402  (after the path tweak on purpose)
from tests.dnsserver import Behaviour, DnsTestServer, seed  # noqa: E402

ZONES = dnsbl.load_zones(knowledge.load().providers)
SWEEP_NET = "85.10.20"  # the /24 swept; LISTED_IP (.30) is on SpamCop and Spamhaus


def queried_zones() -> list[tuple[str, bool]]:
    return [(z.zone, z.ipv6) for z in ZONES if z.zone]


def _serve(conn: multiprocessing.connection.Connection,
           behaviours: dict[str, Behaviour]) -> None:
    server = DnsTestServer().start()
    seed(server, queried_zones())
    for zone, behaviour in behaviours.items():
        server.behave(zone, behaviour)
    conn.send(server.port)
    conn.recv()  # block until told to stop
    server.stop()


def start(behaviours: dict[str, Behaviour] | None = None) -> tuple[int, Callable[[], None]]:
    port, stop, _ = start_measured(behaviours)
    return port, stop


def start_measured(behaviours: dict[str, Behaviour] | None = None
                   ) -> tuple[int, Callable[[], None], Callable[[], float]]:
    """Like `start`, plus a function giving the CPU seconds the server process has used."""
    parent, child = multiprocessing.Pipe()
    process = multiprocessing.Process(target=_serve, args=(child, behaviours or {}), daemon=True)
    process.start()
    port = int(parent.recv())

    def stop() -> None:
        parent.send("stop")
        process.join(timeout=5)

    def cpu() -> float:
        fields = Path(f"/proc/{process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime

    return port, stop, cpu

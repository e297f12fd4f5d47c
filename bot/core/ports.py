"""Protocols the core and the service depend on; adapters in bot/adapters implement them.

Only what a caller needs is here. A DNS lookup's expected outcomes (no such name, no data,
timeout, SERVFAIL, REFUSED) are values of `DnsAnswer`, never exceptions: a DNSBL check must be
able to tell "not listed" from "could not ask".
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol


class DnsStatus(StrEnum):
    OK = "ok"  # at least one record of the asked type
    NXDOMAIN = "nxdomain"  # the name does not exist
    NODATA = "nodata"  # the name exists, no record of this type
    TIMEOUT = "timeout"
    SERVFAIL = "servfail"
    REFUSED = "refused"
    ERROR = "error"  # any other failure (malformed answer, network unreachable, ...)


@dataclass(frozen=True)
class DnsAnswer:
    """One lookup's outcome. `records` are presentation-format strings (A: "127.0.0.2", TXT: the
    joined character-strings, MX: "10 mx.example.", PTR/CNAME targets with a trailing dot)."""

    status: DnsStatus
    records: tuple[str, ...] = ()
    ttl: int = 0
    detail: str = ""

    @property
    def failed(self) -> bool:
        """True when the resolver could not get an answer (as opposed to "no such record")."""
        return self.status in {DnsStatus.TIMEOUT, DnsStatus.SERVFAIL, DnsStatus.REFUSED,
                               DnsStatus.ERROR}


class Resolver(Protocol):
    """Asynchronous DNS lookups. `rdtype` is a type name: "A", "AAAA", "TXT", "MX", "PTR"."""

    async def query(self, name: str, rdtype: str) -> DnsAnswer: ...

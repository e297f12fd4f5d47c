"""Diagnosing bounces and bare IPs: bytes or an address in, Diagnosis values out."""

from __future__ import annotations

import ipaddress
from functools import cache

from bot.core import bounce as bounce_reader
from bot.core import engine, knowledge
from bot.core.knowledge import Knowledge
from bot.core.model import Diagnosis


@cache
def default_knowledge() -> Knowledge:
    """The packaged knowledge, loaded and validated once per process."""
    return knowledge.load()


def diagnose_bytes(data: bytes, source: str = "-", kb: Knowledge | None = None) -> list[Diagnosis]:
    """One Diagnosis per message in `data` (a message, an mbox, a paste, or a bare IP)."""
    kb = kb or default_knowledge()
    text = data.strip()
    if text and len(text) <= 64 and _is_ip(text.decode("ascii", "replace")):
        return [diagnose_ip(text.decode("ascii"), source, kb)]
    return [engine.diagnose(kb, b) for b in bounce_reader.read(data, source)]


def diagnose_text(text: str, source: str = "-", kb: Knowledge | None = None) -> list[Diagnosis]:
    return diagnose_bytes(text.encode("utf-8", "surrogateescape"), source, kb)


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return False
    return True


def diagnose_ip(ip: str, source: str = "-", kb: Knowledge | None = None) -> Diagnosis:
    """What can be said of an IP without a bounce: which lists to check, and how."""
    kb = kb or default_knowledge()
    address = ipaddress.ip_address(ip.strip().strip("[]"))
    if not address.is_global:
        verdict = (f"{address} is a private or reserved address: public blocklists never list it, "
                   "and receivers see your public (NAT) address instead.")
        step = "Diagnose the public address your mail leaves from, or paste the bounce."
    else:
        verdict = f"No bounce given for {address}: without one, delistbot can only check DNS blocklists."
        step = "Run `delistbot check` on the IP for its DNS listings, or paste the bounce you received."
    return Diagnosis(source=source, is_bounce=False, sending_ip=str(address), sending_ip_source="input",
                     verdict=verdict, next_step=step, not_bounce_reason="a bare IP address, no bounce")

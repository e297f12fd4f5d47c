"""The console's scripted demo: what `make run` shows on a fresh machine, without Slack or DNS."""

from __future__ import annotations

import re
from pathlib import Path

# Provider replies as an operator would paste them in the ticket's thread (Microsoft's wording).
DEMO_ACK = """Thank you for your delisting request SRX1234567890ID. Your ticket was
received and will be responded to within 24 hours."""
DEMO_DELISTED = """This email is in reference to ticket number [1234567890], which was
opened in regards to your delisting request for {ip}.
The IP address you submitted has been reviewed and removed from our
block lists.  Please note that there may be a 1-2 hour delay before
this change propagates through our entire system."""


def demo_script(bounce: Path) -> list[str]:
    """Console input lines: a bounce pasted in the channel, its ticket and pings, day by day."""
    text = bounce.read_text(encoding="utf-8", errors="replace")
    return [
        "/delist help",
        *text.splitlines(),
        ".",
        ":click 1",  # "Open ticket" under the diagnosis
        ":click 2",  # "Request sent" on the card
        ":thread DL-1",
        *DEMO_ACK.splitlines(),
        ".",
        ":later 25h",  # past Microsoft's published wait: the overdue ping, with the next step
        ":thread DL-1",
        *DEMO_DELISTED.format(ip=_ip(text)).splitlines(),
        ".",  # the confirmation ping
        ":later 3h",  # the propagation window is over: the re-check ping
        "/delist list",
    ]


def _ip(bounce: str) -> str:
    """The IP the demo bounce names (the provider's confirmation quotes it)."""
    found = re.search(r"\[(\d{1,3}(?:\.\d{1,3}){3})\]", bounce)
    return found.group(1) if found else "203.0.113.44"

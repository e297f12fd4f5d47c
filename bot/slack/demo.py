"""The console's scripted demo: what `make run` shows on a fresh machine, without Slack or DNS."""

from __future__ import annotations

from pathlib import Path


def demo_script(bounce: Path) -> list[str]:
    """Console input lines: help, then the bounce pasted into the channel."""
    text = bounce.read_text(encoding="utf-8", errors="replace")
    return [
        "# What operators see when they type /delist help:",
        "/delist help",
        "# A bounce pasted into a channel the bot is in:",
        *text.splitlines(),
        ".",
    ]

"""Builders shared by the ticket tests (no tests here): the seed's diagnosis, a service on a
real SQLite file, the seed mails from ../shared/corpus/seed."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.adapters.render import Renderer
from bot.adapters.store import Store
from bot.config import Contact
from bot.core import knowledge
from bot.core.model import Diagnosis, Reason
from bot.service.tickets import TicketService

REPO = Path(__file__).resolve().parents[1]
SEED = REPO.parent / "shared" / "corpus" / "seed"
KB = knowledge.load()
T0 = datetime(2013, 3, 25, 5, 58, tzinfo=UTC)  # the seed bounce: Monday 25 March 2013
SEED_EVIDENCE = (
    "550 5.7.1 Service unavailable; Client host [11.22.33.44] blocked using Blocklist 1, mail"
    " from IP banned; To request removal from this list please forward this message to"
    " delist@messaging.microsoft.com and include your ip address 11.22.33.44 ."
)
CONTACT = Contact(name="Aiko Tanaka", organisation="Example Web KK", email="postmaster@example.org")


def seed(name: str) -> str:
    path = SEED / name
    if not path.exists():
        pytest.skip(f"seed corpus not found at {SEED} (tests read ../shared relative to the repo)")
    return path.read_text()


def diagnosis(
    ip: str = "11.22.33.44",
    receiver: str | None = "microsoft_eop",
    blocklist: str | None = None,
    route: str = "default",
    reason: Reason = Reason.BLOCKED,
    evidence: str = SEED_EVIDENCE,
    **extra: object,
) -> Diagnosis:
    """What the engine says of the seed bounce (receiver microsoft_eop), or a variant."""
    acting = KB.providers[blocklist or receiver or "microsoft_eop"]
    return Diagnosis(
        source="seed",
        is_bounce=True,
        format="qmail",
        sending_ip=ip,
        sending_ip_source="rejection text",
        sender_domain="www.systemhost.jp",
        recipient_domain="myclient.com",
        receiver=receiver,
        blocklist=blocklist,
        reason=reason,
        delist=acting.routes[route],
        evidence=evidence,
        verdict=f"{acting.name} rejected mail from {ip}.",
        **extra,  # type: ignore[arg-type]
    )


def service(path: Path, **kwargs: object) -> TicketService:
    return TicketService(
        Store(path),
        KB,
        contact=CONTACT,
        renderer=Renderer().render,
        **kwargs,  # type: ignore[arg-type]
    )

"""Delist drafts: every template the provider data names exists and renders for every route that
names it; each template has a golden file; templates fail loudly; user text stays text.

Regenerate the golden files after a deliberate template change with
`UPDATE_GOLDEN=1 .venv/bin/pytest tests/test_drafts.py` and review the diff."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pytest

from bot.adapters.render import Renderer, TemplateError
from bot.core.knowledge import Provider
from bot.core.model import DelistMethod
from bot.service.tickets import TicketService
from tests.test_tickets_kit import KB, REPO, T0, diagnosis, seed, service

GOLDEN = REPO / "tests" / "golden" / "drafts"
ROUTES = [(p, name) for p in KB.providers.values() for name in p.routes]
NAMED = sorted({route.template for p in KB.providers.values() for route in p.routes.values()})


def draft_for(svc: TicketService, provider: Provider, route: str, fixed: str | None = None):  # type: ignore[no-untyped-def]
    listing = provider.kind in ("dnsbl", "reputation")
    diag = diagnosis(
        receiver=None if listing else provider.id,
        blocklist=provider.id if listing else None,
        route=route,
        evidence=f"550 5.7.1 Client host [11.22.33.44] blocked by {provider.name}",
    )
    opened = svc.open_from_diagnosis(diag, "Subject: failure notice\n\n(the full bounce)", T0)
    assert opened.ticket is not None, opened.problem
    return svc.draft(opened.ticket.id, fixed=fixed)


@pytest.fixture
def svc(tmp_path: Path) -> TicketService:
    return service(tmp_path / "d.db")


def test_every_template_named_in_the_data_exists_and_nothing_else() -> None:
    assert Renderer().names() == NAMED


@pytest.mark.parametrize(("provider", "route"), ROUTES, ids=[f"{p.id}-{r}" for p, r in ROUTES])
def test_every_route_renders_a_draft_with_subject_address_and_evidence(
    svc: TicketService, provider: Provider, route: str
) -> None:
    draft = draft_for(svc, provider, route)
    assert draft.template == provider.routes[route].template
    assert draft.subject
    # Where to send it: an address or a form; advice about a self-expiring list, or a fix list
    # for a refusal no request clears, may have neither.
    assert draft.to or provider.routes[route].method in (DelistMethod.AUTO_EXPIRY, DelistMethod.FIX_SENDER)
    assert "11.22.33.44" in draft.text
    assert f"blocked by {provider.name}" in draft.text  # the exact rejection line
    assert "[TODO: what you changed" in draft.text or draft.template == "stale_list"
    assert "ASAP" not in draft.text


# Templates whose golden file shows a provider other than the first to use them: the default
# (reputation) fix list and a self-expiring list; Microsoft 365's own uses have golden files below.
GOLDEN_ROUTE = {"fix_sender": ("google_gmail", "default"), "auto_expiry": ("free_fr", "default")}
MICROSOFT_FIXES = [name for name, r in KB.providers["microsoft_eop"].routes.items()
                   if r.method in (DelistMethod.FIX_SENDER, DelistMethod.AUTO_EXPIRY)]


def first_route(template: str) -> tuple[Provider, str]:
    if template in GOLDEN_ROUTE:
        provider, route = GOLDEN_ROUTE[template]
        return KB.providers[provider], route
    return next((p, name) for p, name in ROUTES if p.routes[name].template == template)


@pytest.mark.parametrize("template", NAMED)
def test_each_template_matches_its_golden_file(svc: TicketService, template: str) -> None:
    provider, route = first_route(template)
    text = draft_for(svc, provider, route).text
    golden = GOLDEN / f"{template}.txt"
    if os.environ.get("UPDATE_GOLDEN"):
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(text)
    assert text == golden.read_text()


@pytest.mark.parametrize("route", MICROSOFT_FIXES)
def test_microsoft_refusals_no_portal_clears_draft_a_fix_list_not_a_delist_request(
    svc: TicketService, route: str
) -> None:
    rule = next(r for r in KB.rules if r.receiver == "microsoft_eop" and r.route == route)
    provider = KB.providers["microsoft_eop"]
    diag = diagnosis(receiver=provider.id, route=route, rule=rule.id, evidence=rule.example)
    opened = svc.open_from_diagnosis(diag, f"Subject: Undeliverable\n\n{rule.example}", T0)
    assert opened.ticket is not None, opened.problem
    text = svc.draft(opened.ticket.id).text
    assert rule.example in text
    golden = GOLDEN / f"microsoft_eop-{route}.txt"
    if os.environ.get("UPDATE_GOLDEN"):
        golden.write_text(text)
    assert text == golden.read_text()
    assert "sender.office.com does not apply" in text
    assert "Form: https://sender.office.com" not in text


def test_what_was_fixed_and_the_contact_fill_the_prompts(svc: TicketService) -> None:
    draft = draft_for(svc, KB.providers["att_legacy"], "default", fixed="Closed the open relay.")
    assert "What we fixed: Closed the open relay." in draft.text
    assert draft.ready and draft.todo == ()
    assert draft.text.rstrip().endswith("Aiko Tanaka\nExample Web KK\npostmaster@example.org")
    assert draft.to == "abuse_rbl@abuse-att.net"


def test_user_text_is_never_template_source(svc: TicketService) -> None:
    draft = draft_for(svc, KB.providers["att_legacy"], "default", fixed="{{ 7 * 7 }} {% if x %}")
    assert "What we fixed: {{ 7 * 7 }} {% if x %}" in draft.text
    plain = Renderer().render("email_request", {**_context(svc), "fixed": "a < b & c"})
    assert "What we fixed: a < b & c" in plain.text  # no HTML escaping in a text mail


def _context(svc: TicketService) -> dict[str, object]:
    draft_for(svc, KB.providers["att_legacy"], "default")
    return svc.draft_context(svc.get("DL-1"))


def test_a_missing_value_fails_loudly_naming_the_template(svc: TicketService) -> None:
    context = _context(svc)
    del context["evidence"]
    with pytest.raises(TemplateError, match=r"email_request\.txt\.j2: 'evidence' is undefined"):
        Renderer().render("email_request", context)
    with pytest.raises(TemplateError, match=r"no draft template nope\.txt\.j2"):
        Renderer().render("nope", context)


@pytest.mark.parametrize(
    ("bounce", "shown"),
    [
        # The seed: forwarded from Outlook, "Sent:" in the sender's local time, so only the day.
        ("seed", "2013-03-25"),
        ("Date: Mon, 25 Mar 2013 14:58:03 +0900\nSubject: failure notice\n\n550 blocked\n",
         "2013-03-25 05:58 UTC"),
        ("Subject: failure notice\n\n550 blocked\n", "2013-03-25 07:58 UTC"),  # no date: opened
        ("Date: Fri, 1 Jan 2100 00:00:00 +0000\n\n550 blocked\n", "2013-03-25 07:58 UTC"),
        ("Date: not a date at all\n\n550 blocked\n", "2013-03-25 07:58 UTC"),
    ],
)
def test_the_draft_dates_the_first_rejection_by_the_bounce_itself(
    svc: TicketService, bounce: str, shown: str
) -> None:
    text = seed("qmail-microsoft-blocklist1.txt") if bounce == "seed" else bounce
    opened_later = T0 + timedelta(hours=2)  # pasted two hours after the bounce arrived
    diag = diagnosis(receiver="att_legacy", evidence="550 5.7.1 blocked by AT&T")
    opened = svc.open_from_diagnosis(diag, text, opened_later)
    assert opened.ticket is not None
    assert f"- First rejection seen: {shown}\n" in svc.draft(opened.ticket.id).text

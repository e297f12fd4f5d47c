"""Ticket use cases on a real SQLite file: the seed story end to end, joining evidence, reply
matching, notes, overrides, learned waits, the outbox."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from bot.core.model import Diagnosis, Reason
from bot.core.tickets import IllegalMove, PingKind, State, WaitOverride
from bot.service.tickets import NotFound, TicketService
from tests.test_tickets_kit import T0, diagnosis, seed, service

H = timedelta(hours=1)
MIN = timedelta(minutes=1)


@pytest.fixture
def svc(tmp_path: Path) -> TicketService:
    return service(tmp_path / "delistbot.db")


def kinds(svc: TicketService, at: object) -> list[tuple[str, PingKind]]:
    return [(t.id, p.kind) for t, p in svc.due(at)]  # type: ignore[arg-type]


def test_the_seed_story_from_bounce_to_recheck(svc: TicketService) -> None:
    opened = svc.open_from_diagnosis(diagnosis(), seed("qmail-microsoft-blocklist1.txt"), T0)
    assert opened.created and opened.ticket is not None
    ticket = opened.ticket
    assert (ticket.id, ticket.state, ticket.ip, ticket.receiver) == (
        "DL-1",
        State.OPEN,
        "11.22.33.44",
        "microsoft_eop",
    )
    assert svc.due(T0 + 100 * H) == []  # nothing is due before the request goes out

    svc.mark_sent("DL-1", T0 + 10 * MIN)
    applied = svc.apply_reply(seed("microsoft-autoreply.txt"), T0 + 11 * MIN, ref="DL-1")
    assert (applied.ticket.state, applied.changed) == (State.ACKNOWLEDGED, True)  # type: ignore[union-attr]
    assert svc.get("DL-1").provider_ticket_ids == ("SRX1234567890ID",)

    # 38 hours of silence: a reminder after 1 h, overdue after Microsoft's published 24 h.
    assert kinds(svc, T0 + 10 * MIN + 2 * H) == [("DL-1", PingKind.REMINDER)]
    assert kinds(svc, T0 + 10 * MIN + 24 * H) == [("DL-1", PingKind.OVERDUE)]

    # The confirmation carries no DL id: it is matched by its SRX ticket id.
    confirmed = T0 + 38 * H
    applied = svc.apply_reply(seed("microsoft-delisted.txt"), confirmed)
    assert applied.matched_by == "provider ticket id"
    assert applied.ticket is not None and applied.ticket.state is State.DELISTED
    assert applied.ticket.provider_ticket_ids == ("SRX1234567890ID",)

    # "there may be a 1-2 hour delay": the re-check is due when the 2 h window ends.
    assert svc.schedule(applied.ticket).recheck_at == confirmed + 2 * H
    assert kinds(svc, confirmed + 2 * H - MIN) == []
    assert kinds(svc, confirmed + 2 * H) == [("DL-1", PingKind.RECHECK)]

    svc.verify("DL-1", confirmed + 3 * H)
    svc.close("DL-1", confirmed + 3 * H)
    log = [(e["kind"], e["to_state"]) for e in svc.store.events(1)]
    assert log == [
        ("opened", "open"),
        ("sent", "requested"),
        ("acknowledged", "acknowledged"),
        ("delisted", "delisted"),
        ("verified", "verified"),
        ("closed", "closed"),
    ]


def test_the_seed_story_with_the_real_engine(svc: TicketService) -> None:
    pytest.importorskip(
        "bot.service.diagnose", reason="the diagnosis engine is not on this branch yet"
    )
    data = seed("qmail-microsoft-blocklist1.txt").encode()
    (opened,) = svc.open_from_bounce(data, "seed", T0)
    assert opened.ticket is not None and opened.ticket.receiver == "microsoft_eop"
    assert opened.ticket.ip == "11.22.33.44"
    (again,) = svc.open_from_bounce(data, "seed", T0 + H)
    assert again.ticket is not None and (again.ticket.id, again.created) == ("DL-1", False)


def test_a_second_bounce_for_the_same_ip_and_list_joins_the_open_ticket(svc: TicketService) -> None:
    first = svc.open_from_diagnosis(diagnosis(), "bounce one", T0)
    svc.mark_sent("DL-1", T0 + H)
    second = svc.open_from_diagnosis(diagnosis(), "bounce two", T0 + 2 * H)
    assert second.ticket is not None and first.ticket is not None
    assert (second.created, second.ticket.id, second.ticket.state) == (
        False,
        "DL-1",
        State.REQUESTED,
    )
    assert second.ticket.evidence_count == 2
    assert [e["bounce_text"] for e in svc.store.evidence(1)] == ["bounce two"]
    other_list = svc.open_from_diagnosis(diagnosis(blocklist="spamhaus"), "bounce three", T0)
    assert other_list.created and other_list.ticket is not None and other_list.ticket.id == "DL-2"


def test_a_closed_ticket_does_not_swallow_a_new_bounce(svc: TicketService) -> None:
    svc.open_from_diagnosis(diagnosis(), "one", T0)
    svc.close("DL-1", T0 + H)
    again = svc.open_from_diagnosis(diagnosis(), "two", T0 + 2 * H)
    assert again.created and again.ticket is not None and again.ticket.id == "DL-2"


@pytest.mark.parametrize(
    ("diag", "problem"),
    [
        (diagnosis(ip=None), "no sending IP"),  # type: ignore[arg-type]
        (diagnosis(reason=Reason.USERUNKNOWN), "not a block"),
    ],
)
def test_bounces_with_nothing_to_delist_open_no_ticket(
    svc: TicketService, diag: Diagnosis, problem: str
) -> None:
    outcome = svc.open_from_diagnosis(diag, "x", T0)
    assert outcome.ticket is None and problem in (outcome.problem or "")
    assert svc.tickets() == []


def test_replies_are_matched_by_ip_then_thread(svc: TicketService) -> None:
    svc.open_from_diagnosis(diagnosis(ip="203.0.113.5"), "b", T0, channel="C1", thread_ts="1.2")
    svc.mark_sent("DL-1", T0)
    by_ip = svc.apply_reply("Your IP 203.0.113.5 has been delisted.", T0 + H)
    assert (by_ip.matched_by, by_ip.ticket.state) == ("ip", State.DELISTED)  # type: ignore[union-attr]
    svc.open_from_diagnosis(diagnosis(ip="198.51.100.9"), "b", T0, channel="C1", thread_ts="3.4")
    svc.mark_sent("DL-2", T0)
    by_thread = svc.apply_reply(
        "We have received your request.", T0 + H, channel="C1", thread_ts="3.4"
    )
    assert (by_thread.matched_by, by_thread.ticket.id) == ("thread", "DL-2")  # type: ignore[union-attr]
    lost = svc.apply_reply("We have received your request.", T0 + H)
    assert lost.ticket is None and "name the ticket" in lost.message


def test_unrecognised_text_is_kept_as_a_note_and_changes_nothing(svc: TicketService) -> None:
    svc.open_from_diagnosis(diagnosis(), "b", T0)
    svc.mark_sent("DL-1", T0)
    applied = svc.apply_reply("Can you call me about the invoice?", T0 + H, ref="DL-1")
    assert not applied.reply.recognised and not applied.changed
    assert svc.get("DL-1").state is State.REQUESTED
    note = svc.store.events(1)[-1]
    assert (note["kind"], note["text"]) == ("note", "Can you call me about the invoice?")


def test_a_reply_that_cannot_apply_in_this_state_is_kept_as_a_note(svc: TicketService) -> None:
    svc.open_from_diagnosis(diagnosis(), "b", T0)
    svc.apply_reply(seed("microsoft-delisted.txt"), T0 + H, ref="DL-1")
    svc.verify("DL-1", T0 + 3 * H)
    late = svc.apply_reply(seed("microsoft-autoreply.txt"), T0 + 4 * H, ref="DL-1")
    assert late.refused and "kept as a note" in late.message
    assert svc.get("DL-1").state is State.VERIFIED


def test_unknown_ids_and_illegal_moves_are_refused_with_a_message(svc: TicketService) -> None:
    with pytest.raises(NotFound, match="no ticket DL-9"):
        svc.mark_sent("DL-9", T0)
    svc.open_from_diagnosis(diagnosis(), "b", T0)
    with pytest.raises(IllegalMove, match="DL-1 is open: cannot record verified"):
        svc.verify("DL-1", T0)
    assert [e["kind"] for e in svc.store.events(1)] == ["opened"]


def test_settings_override_the_providers_waits(tmp_path: Path) -> None:
    svc = service(tmp_path / "d.db", overrides={"microsoft_eop": WaitOverride(overdue_hours=6)})
    svc.open_from_diagnosis(diagnosis(), "b", T0)
    ticket = svc.mark_sent("DL-1", T0)
    assert svc.schedule(ticket).overdue_at == T0 + 6 * H
    assert svc.to_json(ticket)["expected"]["overdue_basis"] == "settings"


def test_five_closed_tickets_teach_the_overdue_threshold(svc: TicketService) -> None:
    for n, hours in enumerate([10, 20, 30, 40, 50], start=1):
        svc.open_from_diagnosis(diagnosis(ip=f"192.0.2.{n}"), "b", T0)
        svc.mark_sent(n, T0)
        svc.apply_reply(
            f"192.0.2.{n} has been removed from our block lists.", T0 + hours * H, ref=n
        )
        svc.close(n, T0 + hours * H)
    svc.open_from_diagnosis(diagnosis(ip="192.0.2.99"), "b", T0)
    ticket = svc.mark_sent("DL-6", T0)
    expected = svc.to_json(ticket)["expected"]
    assert (expected["published_hours"], expected["learned_count"]) == (24, 5)
    assert (expected["learned_median_hours"], expected["learned_p90_hours"]) == (30, 50)
    assert svc.schedule(ticket).overdue_at == T0 + 50 * H


def test_the_json_carries_the_plain_facts(svc: TicketService) -> None:
    svc.open_from_diagnosis(diagnosis(), "b", T0)
    svc.mark_sent("DL-1", T0)
    svc.apply_reply(seed("microsoft-autoreply.txt"), T0, ref="DL-1")
    data = svc.to_json(svc.get("DL-1"))
    assert {k: data[k] for k in ("id", "ip", "receiver", "blocklist", "state")} == {
        "id": "DL-1",
        "ip": "11.22.33.44",
        "receiver": "microsoft_eop",
        "blocklist": None,
        "state": "acknowledged",
    }
    assert data["provider_ticket_ids"] == ["SRX1234567890ID"]
    assert data["reminder_at"] == "2013-03-25T06:58:00Z"
    assert data["overdue_at"] == "2013-03-26T05:58:00Z" and data["recheck_at"] is None


def test_pings_are_queued_once_and_delivered_once(svc: TicketService) -> None:
    svc.open_from_diagnosis(diagnosis(), "b", T0)
    svc.mark_sent("DL-1", T0)
    assert svc.queue_due(T0 + 2 * H) == 1
    assert svc.queue_due(T0 + 3 * H) == 0  # the same reminder: already queued
    sent: list[str] = []
    assert svc.deliver_due("w1", T0 + 3 * H, lambda row: sent.append(row.key)) == 1
    assert svc.deliver_due("w1", T0 + 4 * H, lambda row: sent.append(row.key)) == 0
    assert svc.deliver_due("w1", T0 + 25 * H, lambda row: sent.append(row.key)) == 1  # overdue
    assert [k.split("/")[1] for k in sent] == ["reminder", "overdue"]


def test_a_failed_delivery_is_retried_and_a_dead_senders_claim_expires(svc: TicketService) -> None:
    svc.open_from_diagnosis(diagnosis(), "b", T0)
    svc.mark_sent("DL-1", T0)

    def fail(row: object) -> None:
        raise ConnectionError("slack down")

    with pytest.raises(ConnectionError):
        svc.deliver_due("w1", T0 + 2 * H, fail)
    sent: list[str] = []
    assert svc.deliver_due("w1", T0 + 2 * H, lambda row: sent.append(row.key)) == 1
    # A sender that claims and dies: its claim blocks others until the lease runs out.
    svc.open_from_diagnosis(diagnosis(ip="192.0.2.1"), "b", T0)
    svc.mark_sent("DL-2", T0)
    svc.queue_due(T0 + 2 * H)
    assert len(svc.claim_pings("dead", T0 + 2 * H)) == 1
    assert svc.claim_pings("w2", T0 + 2 * H + MIN) == []
    delivered_before_crash = {"DL-2"}
    count = svc.deliver_due(
        "w2",
        T0 + 2 * H + 6 * MIN,
        lambda row: sent.append(row.key),
        delivered=lambda row: row.ticket_id in delivered_before_crash,
    )
    assert count == 0 and len(sent) == 1  # it went out before the crash: not sent twice
    assert svc.store.outbox(unsent_only=True) == []


def test_a_confirmation_naming_the_ticket_by_its_bare_number_says_the_id_the_ticket_knows(
    tmp_path: Path,
) -> None:
    svc = service(tmp_path / "d.db")
    svc.open_from_diagnosis(diagnosis(), "bounce", T0)
    svc.apply_reply(seed("microsoft-autoreply.txt"), T0 + H, ref="DL-1")
    body = seed("microsoft-delisted.txt").split("\n\n", 1)[1]  # pasted without its subject
    assert "SRX" not in body and "[1234567890]" in body
    applied = svc.apply_reply(body, T0 + 2 * H, ref="DL-1")
    assert applied.ticket is not None and applied.ticket.state is State.DELISTED
    assert applied.reply.ticket_ids == ("SRX1234567890ID",)
    assert applied.ticket.provider_ticket_ids == ("SRX1234567890ID",)


def test_a_reply_pasted_without_a_ticket_id_is_read_only_to_its_first_100000_characters(
    svc: TicketService,
) -> None:
    svc.open_from_diagnosis(diagnosis(ip="203.0.113.5"), "b", T0)
    svc.mark_sent("DL-1", T0)
    late = "x " * 60_000 + "Your IP 203.0.113.5 has been delisted."  # the outcome past the limit
    assert not svc.classify(late).recognised
    applied = svc.apply_reply(late, T0 + H, ref="DL-1")
    assert (applied.changed, svc.get("DL-1").state) == (False, State.REQUESTED)
    assert "only the first 100,000 characters were read" in applied.message


def test_a_reply_is_matched_by_its_provider_ticket_id_before_the_ip_it_mentions(
    svc: TicketService,
) -> None:
    svc.open_from_diagnosis(diagnosis(ip="203.0.113.5"), "b", T0)
    svc.apply_reply("Subject: SRX1111111111ID\n\nWe have received your request.", T0, ref="DL-1")
    svc.open_from_diagnosis(diagnosis(ip="198.51.100.9"), "b", T0)
    svc.mark_sent("DL-2", T0)
    # The confirmation for DL-1's provider ticket also names DL-2's IP (a second IP it checked).
    reply = "Subject: SRX1111111111ID\n\n198.51.100.9 and 203.0.113.5 have been delisted."
    applied = svc.apply_reply(reply, T0 + H)
    assert applied.ticket is not None
    assert (applied.matched_by, applied.ticket.id) == ("provider ticket id", "DL-1")
    assert (svc.get("DL-1").state, svc.get("DL-2").state) == (State.DELISTED, State.REQUESTED)

"""The ping loop's pass (`queue_due`) on a real SQLite file: SQLite picks the tickets with a ping
due and not yet queued, so a pass with nothing new queues nothing, a threshold changed in the
settings file or learned from closed tickets counts on the next pass, and the tickets it picks
are exactly the ones the core finds due."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from pathlib import Path

from bot.config import load_settings
from bot.core.tickets import Event, Kind, Ping, State, WaitOverride
from bot.core.tickets import due as due_pings
from bot.service.tickets import TicketService, build
from tests.test_tickets_kit import KB, T0, diagnosis, service

H = timedelta(hours=1)
SECOND = timedelta(seconds=1)


def outbox(svc: TicketService) -> list[tuple[str, str, datetime]]:
    return [(row.key, row.kind, row.due_at) for row in svc.store.outbox(unsent_only=False)]


def every_ticket(svc: TicketService, now: datetime) -> list[tuple[str, Ping]]:
    """What is due at `now` from every ticket not closed, each judged by the core alone."""
    out = []
    for ticket in svc.store.timers():
        acting = svc.provider(ticket.list_key)
        pings = due_pings(ticket, svc.waits(ticket), now, acting.name if acting else "")
        out += [(ticket.id, ping) for ping in pings]
    return out


def test_a_second_pass_with_nothing_new_queues_nothing(tmp_path: Path) -> None:
    svc = service(tmp_path / "d.db")
    for n in range(1, 6):
        svc.open_from_diagnosis(diagnosis(ip=f"192.0.2.{n}"), "b", T0)
    svc.mark_sent(1, T0)  # Microsoft: a reminder after 1 h, overdue after 24 h
    svc.mark_sent(2, T0 - 30 * H)  # overdue already
    svc.mark_sent(3, T0)
    svc.apply_reply("192.0.2.3 has been removed from our block lists.", T0 + H, ref=3)
    svc.mark_sent(4, T0)
    svc.snooze(4, T0 + 48 * H, T0)  # nothing before the snooze ends
    # DL-5 stays open: nothing is due before the request goes out

    assert svc.queue_due(T0 + 3 * H) == 3
    first = outbox(svc)
    assert sorted(key.split("/", 2)[:2] for key, _, _ in first) == [
        ["DL-1", "reminder"],
        ["DL-2", "overdue"],
        ["DL-3", "recheck"],
    ]
    assert svc.queue_due(T0 + 3 * H) == 0
    assert svc.queue_due(T0 + 20 * H) == 0  # later, but no new threshold passed
    assert outbox(svc) == first
    assert svc.queue_due(T0 + 24 * H) == 1  # DL-1's overdue: new news is still found
    assert outbox(svc)[-1][:2] == (f"DL-1/overdue/{T0.isoformat()}", "overdue")
    assert svc.queue_due(T0 + 48 * H) == 1  # DL-4's snooze ended: overdue, the reminder skipped
    assert outbox(svc)[-1][:2] == (f"DL-4/overdue/{T0.isoformat()}", "overdue")
    assert svc.queue_due(T0 + 49 * H) == 0
    assert len(outbox(svc)) == 5


def test_a_threshold_shortened_in_the_settings_file_is_due_on_the_next_pass(
    tmp_path: Path,
) -> None:
    env = {"DELISTBOT_DB": str(tmp_path / "t.db")}
    svc = build(load_settings(env, cwd=tmp_path), KB)
    svc.open_from_diagnosis(diagnosis(), "b", T0)
    svc.mark_sent("DL-1", T0)
    assert svc.queue_due(T0 + 3 * H) == 1  # the reminder; overdue only after 24 h
    assert svc.queue_due(T0 + 3 * H) == 0
    svc.store.close()

    (tmp_path / "delistbot.toml").write_text('[providers.microsoft_eop]\noverdue = "2h"\n')
    svc = build(load_settings(env, cwd=tmp_path), KB)  # the bot restarted with the new file
    assert svc.queue_due(T0 + 3 * H) == 1
    assert [(row.kind, row.due_at) for row in svc.store.pings(1)] == [
        ("reminder", T0 + H),
        ("overdue", T0 + 2 * H),
    ]
    assert svc.queue_due(T0 + 4 * H) == 0
    svc.store.close()

    # Lengthened again: what went out stays the only ping, nothing fires twice.
    (tmp_path / "delistbot.toml").write_text('[providers.microsoft_eop]\noverdue = "3d"\n')
    svc = build(load_settings(env, cwd=tmp_path), KB)
    assert svc.queue_due(T0 + 80 * H) == 0  # overdue again after 3 days, but this cycle's
    assert [row.kind for row in svc.store.pings(1)] == ["reminder", "overdue"]  # went out
    svc.store.close()


def test_closed_tickets_that_teach_a_shorter_wait_make_an_open_one_overdue(
    tmp_path: Path,
) -> None:
    svc = service(tmp_path / "d.db")
    svc.open_from_diagnosis(diagnosis(ip="192.0.2.99"), "b", T0)
    svc.mark_sent(1, T0)
    assert svc.queue_due(T0 + 5 * H) == 1  # the reminder; Microsoft's published 24 h to go
    for n in range(2, 7):  # five tickets delisted after 1 to 5 hours, then closed
        svc.open_from_diagnosis(diagnosis(ip=f"192.0.2.{n}"), "b", T0)
        svc.mark_sent(n, T0)
        delisted = T0 + (n - 1) * H
        svc.apply_reply(f"192.0.2.{n} has been removed from our block lists.", delisted, ref=n)
        svc.close(n, T0 + 5 * H)
    assert svc.queue_due(T0 + 5 * H) == 1
    assert [(row.kind, row.due_at) for row in svc.store.pings(1)] == [
        ("reminder", T0 + H),
        ("overdue", T0 + 5 * H),  # the 90th percentile of what the team saw
    ]


def test_sqlite_picks_exactly_the_tickets_the_core_finds_due(tmp_path: Path) -> None:
    """Forty tickets in every waiting state, snoozed or not, on a list whose settings put the
    reminder after the overdue alarm and on one with learned waits, judged at each of their due
    times and a second either side: the pass finds what the core finds over every ticket, and
    queuing pass after pass leaves in the outbox every ping ever due, each once."""
    svc = service(
        tmp_path / "d.db",
        overrides={"microsoft_eop": WaitOverride(reminder_hours=30, overdue_hours=2.5)},
    )
    rng = random.Random(4)
    for n in range(1, 6):  # spamhaus learns its overdue threshold from these
        svc.open_from_diagnosis(diagnosis(ip=f"198.51.100.{n}", blocklist="spamhaus"), "b", T0)
        svc.mark_sent(n, T0)
        svc.move(n, Event(Kind.DELISTED), T0 + (3 + 7 * n) * H)
        svc.close(n, T0 + 60 * H)
    for n in range(6, 46):
        list_facts = {"blocklist": "spamhaus"} if n % 2 else {}
        svc.open_from_diagnosis(diagnosis(ip=f"192.0.2.{n}", **list_facts), "b", T0)
        sent = T0 + rng.randrange(0, 48 * 3600, 17) * SECOND
        svc.mark_sent(n, sent)
        step = rng.choice(
            ["sent", "ack", "escalated", "delisted", "refused", "verified", "reopened"]
        )
        later = sent + rng.randrange(60, 30 * 3600) * SECOND
        if step == "ack":
            svc.move(n, Event(Kind.ACKNOWLEDGED, ticket_ids=(f"SRX{n:010d}ID",)), later)
        elif step in ("escalated", "refused"):
            svc.move(n, Event(Kind(step)), later)
        elif step in ("delisted", "verified"):
            svc.move(n, Event(Kind.DELISTED), later)
            if step == "verified":
                svc.verify(n, later + H)
        elif step == "reopened":
            svc.move(n, Event(Kind.DELISTED), later)
            svc.reopen(n, later + H)
            if rng.random() < 0.5:
                svc.mark_sent(n, later + 2 * H)
        if rng.random() < 0.3:
            svc.snooze(n, later + rng.randrange(0, 40 * 3600) * SECOND, later)
    states = {t.state for t in svc.store.timers()}
    assert {State.REQUESTED, State.ACKNOWLEDGED, State.ESCALATED, State.DELISTED} <= states

    moments = {T0, T0 + 200 * H}
    for ticket in svc.store.timers():
        plan = svc.schedule(ticket)
        for when in (plan.reminder_at, plan.overdue_at, plan.recheck_at):
            if when is not None:
                moments |= {when - SECOND, when, when + SECOND}
    queued: set[str] = set()
    found_any = False
    for now in sorted(moments):
        expected = every_ticket(svc, now)
        assert [(t.id, p) for t, p in svc.due(now)] == expected
        new = {p.key for _, p in expected} - queued
        assert svc.queue_due(now) == len(new)
        queued |= new
        found_any = found_any or bool(new)
        assert {key for key, _, _ in outbox(svc)} == queued
    assert found_any and len(queued) > 20

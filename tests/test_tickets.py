"""The lifecycle table, step times, timers and learned waits: pure core, no database."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from bot.core.tickets import (
    Event,
    IllegalMove,
    Kind,
    Learned,
    PingKind,
    State,
    Ticket,
    WaitOverride,
    Waits,
    as_known,
    due,
    effective_waits,
    initial_waits,
    learn,
    merge_ids,
    new_ticket,
    parse_ticket_number,
    schedule,
    transition,
)

NOW = datetime(2013, 3, 25, 6, 0, tzinfo=UTC)
H = timedelta(hours=1)
MS = Waits(reminder_hours=1, overdue_hours=24, propagation_hours=2, basis="provider")

# The lifecycle as a user reads it: from each state, the moves that must be accepted and where
# they lead. Written out by hand (not derived from TRANSITIONS) so a change to the table shows.
EXPECTED = {
    State.OPEN: {
        Kind.SENT: State.REQUESTED,
        Kind.ACKNOWLEDGED: State.ACKNOWLEDGED,
        Kind.DELISTED: State.DELISTED,
        Kind.REFUSED: State.REFUSED,
        Kind.CLOSED: State.CLOSED,
    },
    State.REQUESTED: {
        Kind.ACKNOWLEDGED: State.ACKNOWLEDGED,
        Kind.DELISTED: State.DELISTED,
        Kind.REFUSED: State.REFUSED,
        Kind.ESCALATED: State.ESCALATED,
        Kind.CLOSED: State.CLOSED,
    },
    State.ACKNOWLEDGED: {
        Kind.ACKNOWLEDGED: State.ACKNOWLEDGED,
        Kind.DELISTED: State.DELISTED,
        Kind.REFUSED: State.REFUSED,
        Kind.ESCALATED: State.ESCALATED,
        Kind.CLOSED: State.CLOSED,
    },
    State.DELISTED: {
        Kind.DELISTED: State.DELISTED,
        Kind.VERIFIED: State.VERIFIED,
        Kind.REOPENED: State.OPEN,
        Kind.CLOSED: State.CLOSED,
    },
    State.VERIFIED: {Kind.CLOSED: State.CLOSED, Kind.REOPENED: State.OPEN},
    State.REFUSED: {
        Kind.SENT: State.REQUESTED,
        Kind.ESCALATED: State.ESCALATED,
        Kind.DELISTED: State.DELISTED,
        Kind.REOPENED: State.OPEN,
        Kind.CLOSED: State.CLOSED,
    },
    State.ESCALATED: {
        Kind.ACKNOWLEDGED: State.ESCALATED,
        Kind.DELISTED: State.DELISTED,
        Kind.REFUSED: State.REFUSED,
        Kind.CLOSED: State.CLOSED,
    },
    State.CLOSED: {Kind.REOPENED: State.OPEN},
}
ANNOTATIONS = (
    Kind.EVIDENCE,
    Kind.NOTE,
    Kind.VERIFICATION,
    Kind.SNOOZED,
    Kind.ASSIGNED,
    Kind.THREAD,
)
MOVES = [k for k in Kind if k is not Kind.OPENED]


def ticket(state: State = State.OPEN, **kw: object) -> Ticket:
    return replace(Ticket(ip="11.22.33.44", state=state, opened_at=NOW, number=7, waits=MS), **kw)


@pytest.mark.parametrize("state", list(State))
@pytest.mark.parametrize("kind", MOVES)
def test_every_move_from_every_state_is_accepted_or_refused_as_the_lifecycle_says(
    state: State, kind: Kind
) -> None:
    expected = EXPECTED[state].get(kind)
    if expected is None and kind in ANNOTATIONS and state is not State.CLOSED:
        expected = state  # notes, evidence, snooze, owner, thread: the state stays
    if expected is None:
        with pytest.raises(IllegalMove, match=rf"DL-7 is {state}: cannot record {kind}"):
            transition(ticket(state), Event(kind), NOW)
    else:
        new, entries = transition(ticket(state), Event(kind, actor="aiko"), NOW)
        assert new.state is expected
        assert [(e.kind, e.from_state, e.to_state, e.actor) for e in entries] == [
            (kind, state, expected, "aiko")
        ]


def test_an_illegal_move_says_what_is_allowed_instead() -> None:
    with pytest.raises(IllegalMove) as err:
        transition(ticket(State.CLOSED), Event(Kind.SENT), NOW)
    assert "allowed now: reopened)" in str(err.value)
    with pytest.raises(IllegalMove) as err:
        transition(ticket(State.OPEN), Event(Kind.VERIFIED), NOW)
    # The moves, in lifecycle order; not the notes, snoozes and evidence every state takes.
    assert "(allowed now: sent, acknowledged, delisted, refused, closed)" in str(err.value)


def test_the_happy_path_stamps_the_time_of_every_step() -> None:
    t, entry = new_ticket("11.22.33.44", NOW, MS, receiver="microsoft_eop")
    assert (t.state, entry.kind, entry.to_state) == (State.OPEN, Kind.OPENED, State.OPEN)
    t, _ = transition(t, Event(Kind.SENT), NOW + H)
    t, _ = transition(t, Event(Kind.ACKNOWLEDGED, ticket_ids=("SRX1234567890ID",)), NOW + 2 * H)
    t, _ = transition(t, Event(Kind.DELISTED, ticket_ids=("1234567890",)), NOW + 38 * H)
    t, _ = transition(t, Event(Kind.VERIFIED), NOW + 41 * H)
    t, _ = transition(t, Event(Kind.CLOSED), NOW + 42 * H)
    assert (t.requested_at, t.acknowledged_at, t.delisted_at) == (
        NOW + H,
        NOW + 2 * H,
        NOW + 38 * H,
    )
    assert (t.verified_at, t.closed_at, t.state) == (NOW + 41 * H, NOW + 42 * H, State.CLOSED)
    assert t.provider_ticket_ids == ("SRX1234567890ID",)  # [1234567890] is the same ticket


def test_an_acknowledgement_before_sent_proves_the_request_went_out() -> None:
    t, _ = transition(ticket(State.OPEN), Event(Kind.ACKNOWLEDGED), NOW)
    assert (t.state, t.requested_at, t.acknowledged_at) == (State.ACKNOWLEDGED, NOW, NOW)


def test_reopen_starts_a_new_cycle_but_keeps_the_provider_ticket_ids() -> None:
    t = ticket(
        State.CLOSED,
        requested_at=NOW,
        delisted_at=NOW + H,
        closed_at=NOW + 2 * H,
        provider_ticket_ids=("SRX1234567890ID",),
    )
    t, entries = transition(t, Event(Kind.REOPENED, text="relisted"), NOW + 5 * H)
    assert (t.state, t.requested_at, t.delisted_at, t.closed_at) == (State.OPEN, None, None, None)
    assert t.reopened_at == NOW + 5 * H and t.provider_ticket_ids == ("SRX1234567890ID",)
    assert entries[0].text == "relisted"


def test_evidence_counts_bounces_and_snooze_assign_thread_set_their_fields() -> None:
    t, _ = transition(ticket(State.REQUESTED), Event(Kind.EVIDENCE), NOW)
    assert t.evidence_count == 2 and t.state is State.REQUESTED
    t, _ = transition(t, Event(Kind.SNOOZED, until=NOW + 5 * H), NOW)
    t, _ = transition(t, Event(Kind.ASSIGNED, owner="U123"), NOW)
    t, _ = transition(t, Event(Kind.THREAD, channel="C1", thread_ts="1700000000.000100"), NOW)
    assert (t.snoozed_until, t.owner, t.slack_channel) == (NOW + 5 * H, "U123", "C1")


def test_ids_read_from_a_reply_are_written_as_the_ticket_knows_them() -> None:
    known = ("SRX1234567890ID", "SBL12345")
    assert as_known(["1234567890", "sbl12345", "SRX5555555555ID"], known) == (
        "SRX1234567890ID", "SBL12345", "SRX5555555555ID")
    assert as_known(["1234567890", "SRX1234567890ID"], known) == ("SRX1234567890ID",)
    assert as_known(["1234567890"], ()) == ("1234567890",)  # nothing known: as written


def test_ticket_ids_merge_once_whatever_their_dress() -> None:
    assert merge_ids(("SRX1234567890ID",), ["1234567890", "srx1234567890id", "SBL12345"]) == (
        "SRX1234567890ID",
        "SBL12345",
    )


@pytest.mark.parametrize(
    ("text", "number"),
    [
        ("DL-42", 42),
        ("dl-42", 42),
        ("42", 42),
        (" DL-7 ", 7),
        ("DL-x", None),
        ("", None),
        ("DL-", None),
        ("99999999999999", None),
    ],
)
def test_ticket_ids_parse(text: str, number: int | None) -> None:
    assert parse_ticket_number(text) == number


# ---------------------------------------------------------------- timers


def test_a_requested_ticket_is_due_a_reminder_then_overdue_from_the_request_time() -> None:
    t = ticket(State.REQUESTED, requested_at=NOW)
    assert schedule(t, MS).reminder_at == NOW + H and schedule(t, MS).overdue_at == NOW + 24 * H
    assert due(t, MS, NOW + H - timedelta(seconds=1)) == ()
    (ping,) = due(t, MS, NOW + H)
    assert ping.kind is PingKind.REMINDER and ping.ticket_id == "DL-7"
    (ping,) = due(t, MS, NOW + 24 * H, "Microsoft 365")
    assert ping.kind is PingKind.OVERDUE  # overdue replaces the reminder, never both
    assert "DL-7 (11.22.33.44 at Microsoft 365): requested for 24 h" in ping.text


def test_an_acknowledgement_does_not_restart_the_clock() -> None:
    t = ticket(State.ACKNOWLEDGED, requested_at=NOW, acknowledged_at=NOW + 2 * H)
    assert schedule(t, MS).overdue_at == NOW + 24 * H


def test_after_delisting_a_recheck_is_due_when_propagation_ends() -> None:
    t = ticket(State.DELISTED, requested_at=NOW, delisted_at=NOW + 38 * H)
    plan = schedule(t, MS)
    assert (plan.reminder_at, plan.overdue_at, plan.recheck_at) == (None, None, NOW + 40 * H)
    assert due(t, MS, NOW + 40 * H - timedelta(seconds=1)) == ()
    (ping,) = due(t, MS, NOW + 40 * H)
    assert ping.kind is PingKind.RECHECK and "re-check" in ping.text


@pytest.mark.parametrize("state", [State.OPEN, State.VERIFIED, State.CLOSED, State.REFUSED])
def test_states_without_a_clock_are_never_due(state: State) -> None:
    t = ticket(state, requested_at=NOW, delisted_at=NOW)
    assert due(t, MS, NOW + 1000 * H) == ()


def test_snooze_holds_pings_until_it_ends_and_keeps_their_key() -> None:
    t = ticket(State.REQUESTED, requested_at=NOW)
    (before,) = due(t, MS, NOW + 2 * H)
    snoozed = replace(t, snoozed_until=NOW + 10 * H)
    assert due(snoozed, MS, NOW + 9 * H) == ()
    (after,) = due(snoozed, MS, NOW + 10 * H)
    assert after.key == before.key  # a reminder already sent is not sent again after a snooze


def test_a_new_request_is_a_new_cycle_with_new_ping_keys() -> None:
    first = ticket(State.REQUESTED, requested_at=NOW)
    second = ticket(State.REQUESTED, requested_at=NOW + 100 * H)
    assert due(first, MS, NOW + 2 * H)[0].key != due(second, MS, NOW + 102 * H)[0].key


def test_escalation_restarts_the_wait_from_the_escalation() -> None:
    t = ticket(State.ESCALATED, requested_at=NOW, escalated_at=NOW + 30 * H)
    assert schedule(t, MS).overdue_at == NOW + 54 * H


def test_the_rule_figure_beats_the_provider_which_beats_the_default() -> None:
    assert initial_waits(48, 48, None, 1, 24, 2) == Waits(1, 48, 2, "rule")
    assert initial_waits(None, None, None, 1, 24, 2) == Waits(1, 24, 2, "provider")
    assert initial_waits(None, 12, None, None, None, None) == Waits(12, 12, 1, "rule")
    assert initial_waits(None, None, None, None, None, None) == Waits(24, 72, 1, "default")


def test_settings_beat_learned_figures_which_beat_published_ones() -> None:
    learned = learn([10, 12, 20, 30, 40])
    assert effective_waits(MS, None, learned).overdue_hours == 40
    assert effective_waits(MS, None, learned).basis == "learned"
    assert effective_waits(MS, None, learn([10, 12, 20, 30])).overdue_hours == 24  # too few
    override = WaitOverride(reminder_hours=0.5, overdue_hours=6, propagation_hours=0.25)
    assert effective_waits(MS, override, learned) == Waits(0.5, 6, 0.25, "settings")


def test_learned_median_and_p90_are_figures_tickets_really_took() -> None:
    assert learn([]) == Learned(0)
    assert learn([5, 1, 3]) == Learned(3, 3, 5)
    got = learn([float(h) for h in range(1, 21)])
    assert (got.count, got.median_hours, got.p90_hours) == (20, 10.5, 18)

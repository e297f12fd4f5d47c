"""The delist ticket lifecycle: one transition table, timers and learned waits. Pure.

A ticket follows one IP on one list (the party you ask: the blocklist if there is one, else the
receiver) from diagnosis to closure:

    open -> requested -> acknowledged -> delisted -> verified -> closed
               \\-> refused -> escalated ... (reopen starts a new cycle)

Every move goes through `TRANSITIONS`; `transition(ticket, event, now)` returns the new ticket and
the log entries to append, or raises `IllegalMove`. Time is always a parameter: nothing here reads
the clock, so "what is due at `now`" (`due`) is a pure function of the stored ticket.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from bot.core.errors import DelistbotError
from bot.core.replies import id_key

ID_PREFIX = "DL-"

# When neither the rule nor the provider data say how long to wait (UNCONFIRMED providers), these
# are the PART D thresholds most providers share: look again after a day, alarm after three.
DEFAULT_REMINDER_HOURS = 24.0
DEFAULT_OVERDUE_HOURS = 72.0
DEFAULT_PROPAGATION_HOURS = 1.0
# Learned figures replace the published overdue threshold only from this many closed tickets on.
LEARNED_MINIMUM = 5


class State(StrEnum):
    OPEN = "open"  # diagnosed; nothing sent yet
    REQUESTED = "requested"  # the delist request went out: the clock starts
    ACKNOWLEDGED = "acknowledged"  # the provider answered with a ticket id or an auto-reply
    DELISTED = "delisted"  # the provider says the block is lifted; propagation runs
    VERIFIED = "verified"  # a re-check after propagation shows mail flows / the IP is clean
    CLOSED = "closed"
    REFUSED = "refused"  # e.g. Outlook.com "not qualified for mitigation"
    ESCALATED = "escalated"  # a second, slower queue (Outlook.com Escalations Team)


class Kind(StrEnum):
    """What happened to a ticket; the event log's `kind` column."""

    OPENED = "opened"
    SENT = "sent"
    ACKNOWLEDGED = "acknowledged"
    DELISTED = "delisted"
    VERIFIED = "verified"
    CLOSED = "closed"
    REFUSED = "refused"
    ESCALATED = "escalated"
    REOPENED = "reopened"
    # Annotations: recorded in the log, the state stays.
    EVIDENCE = "evidence"  # another bounce for the same IP and list
    NOTE = "note"  # text we could not (or need not) classify
    VERIFICATION = "verification"  # the provider mailed a link the operator must click
    SNOOZED = "snoozed"
    ASSIGNED = "assigned"
    THREAD = "thread"  # the Slack thread the ticket lives in


ACTIVE = (
    State.OPEN,
    State.REQUESTED,
    State.ACKNOWLEDGED,
    State.DELISTED,
    State.VERIFIED,
    State.REFUSED,
    State.ESCALATED,
)
WAITING = (State.REQUESTED, State.ACKNOWLEDGED, State.ESCALATED)
_ANNOTATIONS = (
    Kind.EVIDENCE,
    Kind.NOTE,
    Kind.VERIFICATION,
    Kind.SNOOZED,
    Kind.ASSIGNED,
    Kind.THREAD,
)

# The one transition table: event kind -> {from state: to state}. Anything absent is refused.
TRANSITIONS: Mapping[Kind, Mapping[State, State]] = {
    Kind.SENT: {
        State.OPEN: State.REQUESTED,
        State.REFUSED: State.REQUESTED,  # fixed more, asked again: a new clock
    },
    # An acknowledgement proves the request went out, so it may skip `requested`.
    Kind.ACKNOWLEDGED: {
        State.OPEN: State.ACKNOWLEDGED,
        State.REQUESTED: State.ACKNOWLEDGED,
        State.ACKNOWLEDGED: State.ACKNOWLEDGED,  # a second auto-reply, maybe a second ticket id
        State.ESCALATED: State.ESCALATED,  # the escalation queue's own ticket id
    },
    Kind.DELISTED: {
        State.OPEN: State.DELISTED,  # the confirmation arrived before anyone marked it sent
        State.REQUESTED: State.DELISTED,
        State.ACKNOWLEDGED: State.DELISTED,
        State.ESCALATED: State.DELISTED,
        State.REFUSED: State.DELISTED,  # a refusal later reversed by a human
        State.DELISTED: State.DELISTED,  # a duplicate confirmation changes nothing
    },
    Kind.VERIFIED: {State.DELISTED: State.VERIFIED},
    Kind.REFUSED: {
        State.REQUESTED: State.REFUSED,
        State.ACKNOWLEDGED: State.REFUSED,
        State.ESCALATED: State.REFUSED,
        State.OPEN: State.REFUSED,  # a refusal, like an acknowledgement, proves the request
    },
    Kind.ESCALATED: {
        State.REQUESTED: State.ESCALATED,
        State.ACKNOWLEDGED: State.ESCALATED,
        State.REFUSED: State.ESCALATED,
    },
    Kind.CLOSED: {state: State.CLOSED for state in ACTIVE},
    Kind.REOPENED: {
        State.CLOSED: State.OPEN,
        State.VERIFIED: State.OPEN,  # relisted after all
        State.DELISTED: State.OPEN,
        State.REFUSED: State.OPEN,
    },
    **{kind: {state: state for state in ACTIVE} for kind in _ANNOTATIONS},
}


class IllegalMove(DelistbotError):
    """A move the transition table does not allow; the message says what is allowed."""


@dataclass(frozen=True)
class Waits:
    """Hours from the request to the reminder and to "overdue"; after delisting, to re-check."""

    reminder_hours: float = DEFAULT_REMINDER_HOURS
    overdue_hours: float = DEFAULT_OVERDUE_HOURS
    propagation_hours: float = DEFAULT_PROPAGATION_HOURS
    basis: str = "default"  # where overdue_hours came from: rule, provider, settings, learned


@dataclass(frozen=True)
class Ticket:
    """One IP on one list, from diagnosis to closure. `number` is None until stored."""

    ip: str
    state: State
    opened_at: datetime
    number: int | None = None
    receiver: str | None = None
    blocklist: str | None = None
    reason: str | None = None
    recipient_domain: str | None = None
    sender_domain: str | None = None
    route_template: str | None = None
    evidence: str | None = None  # the exact rejection line
    diagnosis: Mapping[str, Any] = field(default_factory=dict, compare=False)
    bounce_text: str = field(default="", compare=False)
    owner: str | None = None
    provider_ticket_ids: tuple[str, ...] = ()
    slack_channel: str | None = None
    slack_thread_ts: str | None = None
    waits: Waits = Waits()
    requested_at: datetime | None = None
    acknowledged_at: datetime | None = None
    delisted_at: datetime | None = None
    verified_at: datetime | None = None
    closed_at: datetime | None = None
    refused_at: datetime | None = None
    escalated_at: datetime | None = None
    reopened_at: datetime | None = None
    snoozed_until: datetime | None = None
    updated_at: datetime | None = None
    evidence_count: int = 1  # bounces seen for this IP and list while the ticket was open

    @property
    def id(self) -> str:
        return f"{ID_PREFIX}{self.number}" if self.number is not None else f"{ID_PREFIX}?"

    @property
    def provider(self) -> str | None:
        """Whose timers apply: the party the request goes to."""
        return self.blocklist or self.receiver

    @property
    def list_key(self) -> str:
        return self.provider or ""


@dataclass(frozen=True)
class Event:
    """Something that happens to a ticket: the input of `transition`."""

    kind: Kind
    actor: str = "cli"
    ticket_ids: tuple[str, ...] = ()
    text: str | None = None
    until: datetime | None = None  # snooze
    owner: str | None = None  # assign
    channel: str | None = None  # thread
    thread_ts: str | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class LogEntry:
    """One append-only row of the event log."""

    kind: Kind
    at: datetime
    actor: str
    from_state: State | None
    to_state: State
    text: str | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)


def parse_ticket_number(text: str) -> int | None:
    """'DL-42', 'dl-42' or '42' -> 42; anything else -> None."""
    value = text.strip().upper().removeprefix(ID_PREFIX)
    return int(value) if value.isdigit() and len(value) < 12 else None


def new_ticket(ip: str, now: datetime, waits: Waits, **facts: Any) -> tuple[Ticket, LogEntry]:
    """A ticket in state `open` and its first log entry."""
    ticket = Ticket(ip=ip, state=State.OPEN, opened_at=now, updated_at=now, waits=waits, **facts)
    return ticket, LogEntry(Kind.OPENED, now, facts.get("owner") or "system", None, State.OPEN)


def allowed(state: State) -> list[str]:
    """The moves the table allows from `state`, in lifecycle order. Annotations (a note, a snooze,
    evidence) are allowed in every state but a closed one, so naming them tells nobody anything."""
    return [
        str(kind)
        for kind, moves in TRANSITIONS.items()
        if state in moves and kind not in _ANNOTATIONS
    ]


def transition(ticket: Ticket, event: Event, now: datetime) -> tuple[Ticket, tuple[LogEntry, ...]]:
    """Apply one event; raise IllegalMove when the table does not allow it."""
    target = TRANSITIONS.get(event.kind, {}).get(ticket.state)
    if target is None:
        raise IllegalMove(
            f"{ticket.id} is {ticket.state}: cannot record {event.kind!s}"
            f" (allowed now: {', '.join(allowed(ticket.state)) or 'nothing'})"
        )
    changes = _stamp(ticket, event, target, now)
    new = replace(ticket, state=target, updated_at=now, **changes)
    detail = dict(event.detail)
    added = [i for i in new.provider_ticket_ids if i not in ticket.provider_ticket_ids]
    if added:
        detail["provider_ticket_ids"] = added
    entry = LogEntry(event.kind, now, event.actor, ticket.state, target, event.text, detail)
    return new, (entry,)


def _stamp(ticket: Ticket, event: Event, target: State, now: datetime) -> dict[str, Any]:
    """The fields an event sets: the time of each step, ids, owner, snooze."""
    out: dict[str, Any] = {
        "provider_ticket_ids": merge_ids(ticket.provider_ticket_ids, event.ticket_ids)
    }
    kind = event.kind
    if kind is Kind.SENT:
        out.update(requested_at=now, acknowledged_at=None, refused_at=None, escalated_at=None)
    elif kind is Kind.ACKNOWLEDGED:
        out["acknowledged_at"] = ticket.acknowledged_at or now
        out["requested_at"] = ticket.requested_at or now  # the reply proves the request went out
    elif kind is Kind.DELISTED:
        out["delisted_at"] = ticket.delisted_at or now
        out["requested_at"] = ticket.requested_at or now
    elif kind in (Kind.VERIFIED, Kind.CLOSED, Kind.REFUSED, Kind.ESCALATED):
        out[f"{kind}_at"] = now
        if kind is not Kind.CLOSED:
            out["requested_at"] = ticket.requested_at or now
    elif kind is Kind.REOPENED:
        out.update(dict.fromkeys(_CYCLE_FIELDS), reopened_at=now, snoozed_until=None)
    elif kind is Kind.SNOOZED:
        out["snoozed_until"] = event.until
    elif kind is Kind.ASSIGNED:
        out["owner"] = event.owner
    elif kind is Kind.THREAD:
        out.update(slack_channel=event.channel, slack_thread_ts=event.thread_ts)
    elif kind is Kind.EVIDENCE:
        out["evidence_count"] = ticket.evidence_count + 1
    return out


_CYCLE_FIELDS = (
    "requested_at",
    "acknowledged_at",
    "delisted_at",
    "verified_at",
    "closed_at",
    "refused_at",
    "escalated_at",
)


def merge_ids(known: Sequence[str], new: Iterable[str]) -> tuple[str, ...]:
    """Known ids first, then new ones; the same number in another dress is not added twice."""
    out = list(known)
    keys = {id_key(i) for i in known}
    for ticket_id in new:
        if id_key(ticket_id) not in keys:
            keys.add(id_key(ticket_id))
            out.append(ticket_id)
    return tuple(out)


def as_known(ids: Iterable[str], known: Sequence[str]) -> tuple[str, ...]:
    """Ids read from a reply, each written as the ticket already knows it (Microsoft's
    confirmation says [1234567890] of the ticket its auto-reply called SRX1234567890ID)."""
    by_key = {id_key(k): k for k in reversed(known)}  # the first known form wins
    return tuple(dict.fromkeys(by_key.get(id_key(i), i) for i in ids))


# ---------------------------------------------------------------- timers


@dataclass(frozen=True)
class WaitOverride:
    """Per-provider overrides from the settings file, in hours (None: keep the data's figure)."""

    reminder_hours: float | None = None
    overdue_hours: float | None = None
    propagation_hours: float | None = None


@dataclass(frozen=True)
class Learned:
    """Request -> delisted over the team's own closed tickets for one provider."""

    count: int
    median_hours: float | None = None
    p90_hours: float | None = None

    @property
    def usable(self) -> bool:
        return self.count >= LEARNED_MINIMUM and self.p90_hours is not None


def learn(durations_hours: Iterable[float]) -> Learned:
    """Median and 90th percentile (nearest rank, so it is always a figure a ticket really took)."""
    values = sorted(d for d in durations_hours if d >= 0)
    if not values:
        return Learned(0)
    rank = max(1, math.ceil(0.9 * len(values)))
    return Learned(len(values), statistics.median(values), values[rank - 1])


def initial_waits(
    rule_overdue: float | None,
    rule_wait: float | None,
    rule_propagation: float | None,
    provider_reminder: float | None,
    provider_overdue: float | None,
    provider_propagation: float | None,
) -> Waits:
    """The waits a ticket is opened with: the rule's figure first (it knows the exact case, e.g.
    Microsoft 5.7.511 answers within 48 h, not 24), then the provider's, then the defaults."""
    overdue, basis = DEFAULT_OVERDUE_HOURS, "default"
    if rule_overdue is not None:
        overdue, basis = rule_overdue, "rule"
    elif provider_overdue is not None:
        overdue, basis = provider_overdue, "provider"
    elif rule_wait is not None:
        overdue, basis = rule_wait, "rule"
    reminder = provider_reminder if provider_reminder is not None else DEFAULT_REMINDER_HOURS
    propagation = next(
        (p for p in (rule_propagation, provider_propagation) if p is not None),
        DEFAULT_PROPAGATION_HOURS,
    )
    return Waits(min(reminder, overdue), overdue, propagation, basis)


def effective_waits(stored: Waits, override: WaitOverride | None, learned: Learned | None) -> Waits:
    """Settings beat learned figures, learned figures (from 5 tickets on) beat published ones."""
    waits = stored
    if learned is not None and learned.usable and learned.p90_hours is not None:
        waits = replace(waits, overdue_hours=learned.p90_hours, basis="learned")
    if override is not None:
        if override.reminder_hours is not None:
            waits = replace(waits, reminder_hours=override.reminder_hours)
        if override.overdue_hours is not None:
            waits = replace(waits, overdue_hours=override.overdue_hours, basis="settings")
        if override.propagation_hours is not None:
            waits = replace(waits, propagation_hours=override.propagation_hours)
    return waits


class PingKind(StrEnum):
    # Timers: computed by `due` from the stored state.
    REMINDER = "reminder"
    OVERDUE = "overdue"
    RECHECK = "recheck"
    # News: queued when it happens (a confirmation, a DNS re-check's finding).
    CONFIRMED = "confirmed"
    STILL_LISTED = "still_listed"
    VERIFIED = "verified"


@dataclass(frozen=True)
class Schedule:
    """The next due times of a ticket; None where nothing is scheduled in its state."""

    reminder_at: datetime | None = None
    overdue_at: datetime | None = None
    recheck_at: datetime | None = None


@dataclass(frozen=True)
class Ping:
    """A due reminder. `key` is stable per ticket, kind and cycle so it is sent at most once."""

    ticket_id: str
    kind: PingKind
    due_at: datetime
    key: str
    text: str


def _clock_start(ticket: Ticket) -> datetime | None:
    if ticket.state is State.ESCALATED and ticket.escalated_at:
        return ticket.escalated_at  # the escalation queue has its own wait
    return ticket.requested_at or ticket.acknowledged_at


def _later(when: datetime, snoozed: datetime | None) -> datetime:
    return max(when, snoozed) if snoozed else when


def schedule(ticket: Ticket, waits: Waits) -> Schedule:
    """When the ticket wants attention next, from its own stored times."""
    start = _clock_start(ticket)
    if ticket.state in WAITING and start is not None:
        return Schedule(
            reminder_at=_later(start + timedelta(hours=waits.reminder_hours), ticket.snoozed_until),
            overdue_at=_later(start + timedelta(hours=waits.overdue_hours), ticket.snoozed_until),
        )
    if ticket.state is State.DELISTED and ticket.delisted_at is not None:
        recheck = ticket.delisted_at + timedelta(hours=waits.propagation_hours)
        return Schedule(recheck_at=_later(recheck, ticket.snoozed_until))
    return Schedule()


# What the propagation re-check asks of the operator, in CLI commands; a front end with its own
# controls (the Slack app's buttons) says it in its own words in place of this sentence.
RECHECK_STEP = "re-check the IP and send a test message, then `verified` or `reopen`."


def due(ticket: Ticket, waits: Waits, now: datetime, provider_name: str = "") -> tuple[Ping, ...]:
    """The pings due at `now`; overdue supersedes the reminder of the same cycle."""
    plan = schedule(ticket, waits)
    where = f" at {provider_name}" if provider_name else ""
    head = f"{ticket.id} ({ticket.ip}{where})"
    if plan.recheck_at and plan.recheck_at <= now and ticket.delisted_at:
        return (
            _ping(
                ticket,
                PingKind.RECHECK,
                plan.recheck_at,
                ticket.delisted_at,
                f"{head}: delisted {_ago(ticket.delisted_at, now)} ago and the "
                f"{duration(waits.propagation_hours)} propagation window is over: {RECHECK_STEP}",
            ),
        )
    start = _clock_start(ticket)
    if start is None:
        return ()
    if plan.overdue_at and plan.overdue_at <= now:
        return (
            _ping(
                ticket,
                PingKind.OVERDUE,
                plan.overdue_at,
                start,
                f"{head}: {ticket.state} for {_ago(start, now)}, longer than the "
                f"{duration(waits.overdue_hours)} expected ({waits.basis}):"
                " chase the provider or escalate.",
            ),
        )
    if plan.reminder_at and plan.reminder_at <= now:
        return (
            _ping(
                ticket,
                PingKind.REMINDER,
                plan.reminder_at,
                start,
                f"{head}: {ticket.state} {_ago(start, now)} ago, no answer recorded yet;"
                f" look for the provider's reply (overdue after {duration(waits.overdue_hours)}).",
            ),
        )
    return ()


def _ping(ticket: Ticket, kind: PingKind, due_at: datetime, cycle: datetime, text: str) -> Ping:
    return Ping(ticket.id, kind, due_at, ping_key(ticket, kind, cycle), text)


def ping_key(ticket: Ticket, kind: PingKind, cycle: datetime) -> str:
    """One key per ticket, kind and cycle: the outbox queues each key once."""
    return f"{ticket.id}/{kind}/{cycle.isoformat()}"


def duration(hours: float) -> str:
    """Hours as a reader says them: 45 s, 30 min, 2 h, 3 days."""
    if hours < 1 / 60:
        return f"{round(hours * 3600)} s"
    if hours < 1:
        return f"{round(hours * 60)} min"
    return f"{round(hours, 1):g} h" if hours < 72 else f"{round(hours / 24, 1):g} days"


def _ago(then: datetime, now: datetime) -> str:
    return duration(max(0.0, (now - then).total_seconds() / 3600))


"""Ticket use cases: open from a bounce, mark sent, apply a provider reply, snooze, close, due
pings and the outbox, drafts. The CLI calls these today; the Slack app will call the same ones.

Each use case is one store transaction: read the ticket, let the pure core decide
(`bot.core.tickets.transition`, `bot.core.replies.classify`), write the row and its log entries
together. The time is always passed in (`now`), normalised to whole UTC seconds so that a ping key
computed before and after a restart is the same string.
"""

from __future__ import annotations

import difflib
import email
import email.policy
import email.utils
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

from bot.adapters.render import Draft
from bot.adapters.store import OutboxRow, Store
from bot.config import Contact, Settings
from bot.core import replies
from bot.core.errors import ConfigError, DelistbotError
from bot.core.knowledge import Knowledge, Provider, ReplyMarkers
from bot.core.model import SENDER_REASONS, Diagnosis
from bot.core.replies import Reply, ReplyKind
from bot.core.tickets import (
    Event,
    IllegalMove,
    Kind,
    Learned,
    Ping,
    PingKind,
    Schedule,
    Ticket,
    WaitOverride,
    Waits,
    as_known,
    duration,
    effective_waits,
    initial_waits,
    learn,
    new_ticket,
    parse_ticket_number,
    ping_key,
    schedule,
    transition,
)
from bot.core.tickets import due as due_pings

CLAIM_LEASE = timedelta(minutes=5)  # a sender that died holding a claim frees it after this


class NotFound(DelistbotError):
    """No ticket by that id."""


def utc_now() -> datetime:
    return normalise(datetime.now(UTC))


def normalise(now: datetime) -> datetime:
    if now.tzinfo is None:
        raise ValueError("naive datetime: pass an aware time (UTC)")
    return now.astimezone(UTC).replace(microsecond=0)


@dataclass(frozen=True)
class Opened:
    """The outcome of opening from one diagnosis: a ticket (new or joined), or why not."""

    diagnosis: Diagnosis
    ticket: Ticket | None = None
    created: bool = False
    problem: str | None = None


@dataclass(frozen=True)
class Applied:
    """The outcome of a provider reply."""

    reply: Reply
    ticket: Ticket | None = None
    matched_by: str | None = None  # "ticket", "provider ticket id", "ip", "thread"
    changed: bool = False  # the state moved
    message: str = ""
    refused: bool = False  # recognised, but the move is not allowed in the ticket's state


Renderer = Callable[[str, Mapping[str, Any]], Draft]


def overrides_from(settings: Settings) -> dict[str, WaitOverride]:
    def hours(seconds: float | None) -> float | None:
        return None if seconds is None else seconds / 3600

    return {
        pid: WaitOverride(hours(o.reminder), hours(o.overdue), hours(o.propagation))
        for pid, o in settings.providers.items()
    }


def reply_text(data: bytes) -> str:
    """The readable text of a pasted or forwarded reply; a MIME message is decoded part by part."""
    head = data[:4096].lower()
    if b"content-transfer-encoding:" in head or b"content-type: multipart" in head:
        message = email.message_from_bytes(data, policy=email.policy.default)
        parts = [f"Subject: {message.get('subject', '')}"]
        for part in message.walk():
            if part.get_content_type() == "text/plain":
                parts.append(str(part.get_content()))
        if len(parts) > 1:
            return "\n".join(parts)
    return data.decode("utf-8", "replace")


class TicketService:
    """The use cases over one store, the provider knowledge and the timer overrides."""

    def __init__(
        self,
        store: Store,
        knowledge: Knowledge,
        overrides: Mapping[str, WaitOverride] | None = None,
        contact: Contact | None = None,
        renderer: Renderer | None = None,
    ) -> None:
        self.store = store
        self.kb = knowledge
        self.overrides = dict(overrides or {})
        self.contact = contact or Contact()
        self.renderer = renderer

    # -- lookup

    def get(self, ref: str | int) -> Ticket:
        number = ref if isinstance(ref, int) else parse_ticket_number(ref)
        ticket = self.store.get(number) if number is not None else None
        if ticket is None:
            raise NotFound(f"no ticket {ref!s} (ids look like DL-42)")
        return ticket

    def provider(self, provider_id: str | None) -> Provider | None:
        return self.kb.providers.get(provider_id) if provider_id else None

    def tickets(self, active_only: bool = False) -> list[Ticket]:
        return self.store.tickets(active_only)

    # -- open

    def open_from_diagnosis(
        self,
        diagnosis: Diagnosis,
        bounce_text: str,
        now: datetime,
        channel: str | None = None,
        thread_ts: str | None = None,
        actor: str = "cli",
    ) -> Opened:
        """Open a ticket for the diagnosed IP and list, or join the open one as evidence."""
        problem = self._not_ticketable(diagnosis)
        if problem:
            return Opened(diagnosis, problem=problem)
        now = normalise(now)
        ip = diagnosis.sending_ip
        assert ip is not None
        list_key = diagnosis.blocklist or diagnosis.receiver or ""
        with self.store.write():
            existing = self.store.find_active(ip, list_key)
            if existing is not None:
                text = f"another bounce from {diagnosis.source}"
                ticket = self._apply(existing, Event(Kind.EVIDENCE, actor, text=text), now)
                self.store.add_evidence(
                    ticket,
                    now,
                    diagnosis.source,
                    diagnosis.evidence,
                    bounce_text,
                    diagnosis.to_json(),
                )
                created = False
            else:
                ticket = self._insert(diagnosis, bounce_text, now, actor)
                created = True
            if channel and thread_ts and not ticket.slack_thread_ts:
                event = Event(Kind.THREAD, actor, channel=channel, thread_ts=thread_ts)
                ticket = self._apply(ticket, event, now)
        return Opened(diagnosis, ticket, created)

    def _not_ticketable(self, diagnosis: Diagnosis) -> str | None:
        if not diagnosis.is_bounce:
            return f"not a bounce ({diagnosis.not_bounce_reason or 'no failed recipient'})"
        if not diagnosis.sending_ip:
            return "no sending IP found in the bounce: nothing to ask a list to remove"
        if diagnosis.blocklist is None and diagnosis.reason not in SENDER_REASONS:
            reason = diagnosis.reason or "unknown"
            return f"the reason ({reason}) is not a block on the sending IP: nothing to delist"
        return None

    def _insert(self, diagnosis: Diagnosis, bounce_text: str, now: datetime, actor: str) -> Ticket:
        acting = self.provider(diagnosis.blocklist or diagnosis.receiver)
        waits = initial_waits(
            diagnosis.overdue_after_hours,
            diagnosis.expected_wait_hours,
            diagnosis.propagation_hours,
            acting.reminder_hours if acting else None,
            acting.overdue_hours if acting else None,
            acting.propagation_hours if acting else None,
        )
        assert diagnosis.sending_ip is not None
        ticket, entry = new_ticket(
            diagnosis.sending_ip,
            now,
            waits,
            receiver=diagnosis.receiver,
            blocklist=diagnosis.blocklist,
            reason=str(diagnosis.reason) if diagnosis.reason else None,
            recipient_domain=diagnosis.recipient_domain,
            sender_domain=diagnosis.sender_domain,
            route_template=diagnosis.delist.template,
            evidence=diagnosis.evidence,
            diagnosis=diagnosis.to_json(),
            bounce_text=bounce_text,
        )
        entry = replace(entry, actor=actor, text=diagnosis.summary)
        return self.store.insert(ticket, [entry])

    def open_from_bounce(
        self,
        data: bytes,
        source: str,
        now: datetime,
        channel: str | None = None,
        thread_ts: str | None = None,
        actor: str = "cli",
    ) -> list[Opened]:
        """Diagnose `data` (one or more messages) and open or join a ticket for each bounce."""
        from bot.service.diagnose import diagnose_bytes  # the engine; imported when needed

        text = data.decode("utf-8", "replace")
        return [
            self.open_from_diagnosis(d, text, now, channel, thread_ts, actor)
            for d in diagnose_bytes(data, source)
        ]

    # -- moves

    def _apply(self, ticket: Ticket, event: Event, now: datetime) -> Ticket:
        new, entries = transition(ticket, event, now)
        self.store.save(new, entries)
        return new

    def move(self, ref: str | int, event: Event, now: datetime) -> Ticket:
        """Apply one event to a ticket in one transaction; IllegalMove or NotFound on refusal."""
        now = normalise(now)
        with self.store.write():
            return self._apply(self.get(ref), event, now)

    def mark_sent(self, ref: str | int, now: datetime, actor: str = "cli") -> Ticket:
        return self.move(ref, Event(Kind.SENT, actor), now)

    def verify(
        self, ref: str | int, now: datetime, actor: str = "cli", note: str | None = None
    ) -> Ticket:
        return self.move(ref, Event(Kind.VERIFIED, actor, text=note), now)

    def close(
        self, ref: str | int, now: datetime, actor: str = "cli", note: str | None = None
    ) -> Ticket:
        return self.move(ref, Event(Kind.CLOSED, actor, text=note), now)

    def reopen(
        self, ref: str | int, now: datetime, actor: str = "cli", note: str | None = None
    ) -> Ticket:
        return self.move(ref, Event(Kind.REOPENED, actor, text=note), now)

    def escalate(
        self, ref: str | int, now: datetime, actor: str = "cli", note: str | None = None
    ) -> Ticket:
        return self.move(ref, Event(Kind.ESCALATED, actor, text=note), now)

    def snooze(self, ref: str | int, until: datetime, now: datetime, actor: str = "cli") -> Ticket:
        return self.move(ref, Event(Kind.SNOOZED, actor, until=normalise(until)), now)

    def assign(self, ref: str | int, owner: str, now: datetime, actor: str = "cli") -> Ticket:
        return self.move(ref, Event(Kind.ASSIGNED, actor, owner=owner), now)

    def attach_thread(
        self, ref: str | int, channel: str, thread_ts: str, now: datetime, actor: str = "slack"
    ) -> Ticket:
        return self.move(ref, Event(Kind.THREAD, actor, channel=channel, thread_ts=thread_ts), now)

    # -- provider replies

    def _markers(self, first: Iterable[str | None] = ()) -> dict[str, ReplyMarkers]:
        """Every provider's reply markers, the ticket's own providers first."""
        order = [p for p in first if p and p in self.kb.providers]
        order += [p for p in self.kb.providers if p not in order]
        return {p: self.kb.providers[p].replies for p in order}

    def classify(self, text: str, ticket: Ticket | None = None) -> Reply:
        """What a reply says (its first `replies.REPLY_LIMIT` characters), the ticket's own
        providers' markers first."""
        first = (ticket.blocklist, ticket.receiver) if ticket else ()
        return replies.classify(replies.clip(text)[0], self._markers(first))

    def _match(
        self, reply: Reply, channel: str | None, thread_ts: str | None
    ) -> tuple[Ticket | None, str | None, str]:
        """Provider ticket id first, then IP, then the thread the reply was pasted in."""
        for provider_id in reply.ticket_ids:
            found = self.store.find_by_provider_ticket_id(provider_id)
            if found:
                return found[0], "provider ticket id", ""
        for ip in reply.ips:
            found = self.store.find_by_ip(ip)
            if len(found) > 1 and reply.providers:
                found = [
                    t
                    for t in found
                    if t.list_key in reply.providers or t.receiver in reply.providers
                ]
            if len(found) == 1:
                return found[0], "ip", ""
            if found:
                ids = ", ".join(t.id for t in found)
                return None, None, f"{ip} has several open tickets ({ids}): name the ticket"
        if channel and thread_ts:
            ticket = self.store.find_by_thread(channel, thread_ts)
            if ticket is not None:
                return ticket, "thread", ""
        return None, None, "no ticket matches its ticket ids, IPs or thread: name the ticket"

    def apply_reply(
        self,
        text: str,
        now: datetime,
        ref: str | int | None = None,
        channel: str | None = None,
        thread_ts: str | None = None,
        actor: str = "cli",
    ) -> Applied:
        """Record a provider reply on its ticket: a move when recognised, else a note.

        Only the first `replies.REPLY_LIMIT` characters of a longer paste are read and kept; the
        note says how much was left out."""
        now = normalise(now)
        text, dropped = replies.clip(text)
        with self.store.write():
            ticket = self.get(ref) if ref is not None else None
            reply = self.classify(text, ticket)
            matched_by = "ticket" if ticket else None
            if ticket is None:
                ticket, matched_by, why = self._match(reply, channel, thread_ts)
                if ticket is None:
                    return Applied(reply, message=why)
                reply = self.classify(text, ticket)  # now with that ticket's markers first
            if dropped:
                text += f"\n[… {dropped:,} more characters not kept]"
            applied = self._record_reply(ticket, reply, text, matched_by, now, actor)
        if dropped:
            kept = f"{replies.REPLY_LIMIT:,}"
            applied = replace(
                applied, message=f"{applied.message} (only the first {kept} characters were read)"
            )
        return applied

    def _record_reply(
        self,
        ticket: Ticket,
        reply: Reply,
        text: str,
        matched_by: str | None,
        now: datetime,
        actor: str,
    ) -> Applied:
        # The ids as the ticket knows them: the confirmation's [1234567890] is SRX1234567890ID.
        reply = replace(reply, ticket_ids=as_known(reply.ticket_ids, ticket.provider_ticket_ids))
        detail = {
            "matched_by": matched_by,
            "markers": list(reply.matched),
            "reply": str(reply.kind),
        }
        kind = _REPLY_EVENTS.get(reply.kind, Kind.NOTE)
        event = Event(kind, actor, ticket_ids=reply.ticket_ids, text=text, detail=detail)
        try:
            new = self._apply(ticket, event, now)
        except IllegalMove as exc:
            note = Event(
                Kind.NOTE,
                actor,
                ticket_ids=reply.ticket_ids,
                text=text,
                detail={**detail, "refused": str(exc)},
            )
            new = self._apply(ticket, note, now)
            return Applied(reply, new, matched_by, False, f"{exc}; kept as a note", refused=True)
        if kind is Kind.NOTE:
            message = (
                f"not recognised ({reply.why}); kept as a note on {ticket.id}, state unchanged"
            )
        elif kind is Kind.VERIFICATION:
            message = f"{ticket.id}: the provider wants a confirmation click: open the link now"
        else:
            message = f"{ticket.id}: {ticket.state} -> {new.state}"
        return Applied(reply, new, matched_by, new.state != ticket.state, message)

    # -- timers

    def learned(self, list_key: str) -> Learned:
        return learn(self.store.delisting_hours(list_key))

    def waits(self, ticket: Ticket, learned: Learned | None = None) -> Waits:
        if learned is None:
            learned = self.learned(ticket.list_key)
        return effective_waits(ticket.waits, self.overrides.get(ticket.list_key), learned)

    def schedule(self, ticket: Ticket) -> Schedule:
        return schedule(ticket, self.waits(ticket))

    def due(self, now: datetime) -> list[tuple[Ticket, Ping]]:
        """Every ping due at `now`, from the stored state alone."""
        return self._due(normalise(now), unqueued_only=False)

    def _due(self, now: datetime, unqueued_only: bool) -> list[tuple[Ticket, Ping]]:
        """The pings due at `now`; with `unqueued_only`, leaving out tickets whose due ping is
        already in the outbox. The waits are worked out afresh on every call (settings file,
        learned figures), so a changed threshold counts from the next pass on; SQLite only picks
        the tickets worth a look (`Store.timers_due`), the core decides what is due."""
        cache: dict[str, Learned] = {}
        groups = []
        for list_key, stored in self.store.wait_groups():
            if list_key not in cache:
                cache[list_key] = self.learned(list_key)
            override = self.overrides.get(list_key)
            groups.append((list_key, stored, effective_waits(stored, override, cache[list_key])))
        out: list[tuple[Ticket, Ping]] = []
        for ticket in self.store.timers_due(now, groups, unqueued_only):
            if ticket.list_key not in cache:  # a ticket opened since the groups were read
                cache[ticket.list_key] = self.learned(ticket.list_key)
            waits = self.waits(ticket, cache[ticket.list_key])
            acting = self.provider(ticket.list_key)
            name = acting.name if acting else ""
            out.extend((ticket, p) for p in due_pings(ticket, waits, now, name))
        return out

    def queue_due(self, now: datetime) -> int:
        """Write due pings to the outbox; each key once, however often this runs. A pass with
        nothing new to queue reads only the tickets SQLite finds due and not yet queued."""
        now = normalise(now)
        with self.store.write():
            due = self._due(now, unqueued_only=True)
            return sum(self.store.enqueue(t, p, now) for t, p in due)

    def claim_pings(self, worker: str, now: datetime, limit: int = 20) -> list[OutboxRow]:
        now = normalise(now)
        return self.store.claim(worker, now, now - CLAIM_LEASE, limit)

    def ping_sent(self, ping_id: int, now: datetime, note: str | None = None) -> bool:
        """Delivered; `note` says why it went elsewhere than the ticket's thread."""
        return self.store.mark_sent(ping_id, normalise(now), note)

    def ping_failed(self, ping_id: int, retry_at: datetime | None = None) -> None:
        """Not delivered for now (Slack down or busy): claimed again at once, or from `retry_at`."""
        retry = None if retry_at is None else normalise(retry_at) + timedelta(seconds=1)
        self.store.release(ping_id, retry)

    def ping_refused(self, ping_id: int, error: str, now: datetime) -> bool:
        """Refused for good (not_in_channel, invalid_auth…): kept as undelivered, not retried."""
        return self.store.mark_failed(ping_id, error, normalise(now))

    def undelivered(self) -> list[OutboxRow]:
        """Pings that never reached anyone: `due` and `ticket` show them."""
        return self.store.undelivered()

    def release_claims(self, worker: str, before: datetime) -> int:
        """Free the unsent pings `worker` claimed before `before` (its earlier run died)."""
        return self.store.release_claims(worker, normalise(before))

    def deliver_due(
        self,
        worker: str,
        now: datetime,
        send: Callable[[OutboxRow], None],
        delivered: Callable[[OutboxRow], bool] | None = None,
    ) -> int:
        """Queue what is due, then send each claimed ping and mark it sent after delivery.

        A ping whose earlier claim expired (its sender died) may already have gone out just before
        the crash: `delivered(row)` is asked first for those (the Slack app looks for the ping's
        key in the thread), so a crash never doubles a ping. Without it, delivery is at least once.
        A `send` that raises releases the ping for the next round and is re-raised.
        """
        self.queue_due(now)
        count = 0
        for row in self.claim_pings(worker, now):
            if row.attempts > 1 and delivered is not None and delivered(row):
                self.ping_sent(row.id, now)
                continue
            try:
                send(row)
            except BaseException:
                self.ping_failed(row.id)
                raise
            count += self.ping_sent(row.id, now)
        return count

    def queue_ping(self, ticket: Ticket, ping: Ping, now: datetime) -> bool:
        """Queue a news ping (not a timer) in the outbox; False when its key was queued before."""
        now = normalise(now)
        with self.store.write():
            return self.store.enqueue(ticket, ping, now)

    def confirmation(self, ticket: Ticket, how: str, now: datetime) -> Ping | None:
        """The "delisted" ping of this cycle: once per delisting, whoever saw it first."""
        if ticket.delisted_at is None:
            return None
        waits = self.waits(ticket)
        text = (
            f"{ticket.id} ({ticket.ip}): delisted, {how}. Mail may still bounce for about "
            f"{duration(waits.propagation_hours)} while receivers catch up; I will ask for a "
            "re-check then."
        )
        key = ping_key(ticket, PingKind.CONFIRMED, ticket.delisted_at)
        return Ping(ticket.id, PingKind.CONFIRMED, normalise(now), key, text)

    def queue_confirmation(self, ticket: Ticket, how: str, now: datetime) -> bool:
        ping = self.confirmation(ticket, how, now)
        return ping is not None and self.queue_ping(ticket, ping, now)

    def next_step(self, ticket: Ticket) -> str:
        """What to do when a wait runs long or a list still blocks: write to the provider again
        (quoting its ticket id), by its route; the route's note when it has one."""
        steps = []
        if ticket.provider_ticket_ids:
            steps.append(f"reply to the provider quoting {ticket.provider_ticket_ids[-1]}")
        provider = self.provider(ticket.list_key)
        route = provider.route if provider else None
        if route and route.url:
            steps.append(f"{'or ' if steps else ''}use {route.url}")
        elif route and route.address:
            steps.append(f"{'or ' if steps else ''}write to {route.address}")
        text = f"Next step: {' '.join(steps)}." if steps else ""
        if route and route.note:
            text = f"{text} ({route.note})".strip()
        return text

    # -- views

    def expectations(self, ticket: Ticket) -> dict[str, Any]:
        """The published wait beside the team's own figures."""
        provider = self.provider(ticket.list_key)
        learned = self.learned(ticket.list_key)
        waits = self.waits(ticket, learned)
        return {
            "published_hours": provider.wait_hours if provider else None,
            "published_basis": provider.wait_basis if provider else None,
            "learned_count": learned.count,
            "learned_median_hours": learned.median_hours,
            "learned_p90_hours": learned.p90_hours,
            "reminder_hours": waits.reminder_hours,
            "overdue_hours": waits.overdue_hours,
            "overdue_basis": waits.basis,
            "propagation_hours": waits.propagation_hours,
        }

    def to_json(self, ticket: Ticket) -> dict[str, Any]:
        plan = self.schedule(ticket)
        return {
            "id": ticket.id,
            "ip": ticket.ip,
            "receiver": ticket.receiver,
            "blocklist": ticket.blocklist,
            "reason": ticket.reason,
            "state": str(ticket.state),
            "owner": ticket.owner,
            "provider_ticket_ids": list(ticket.provider_ticket_ids),
            "recipient_domain": ticket.recipient_domain,
            "sender_domain": ticket.sender_domain,
            "evidence": ticket.evidence,
            "evidence_count": ticket.evidence_count,
            "reminder_at": _iso(plan.reminder_at),
            "overdue_at": _iso(plan.overdue_at),
            "recheck_at": _iso(plan.recheck_at),
            "snoozed_until": _iso(ticket.snoozed_until),
            "opened_at": _iso(ticket.opened_at),
            "requested_at": _iso(ticket.requested_at),
            "acknowledged_at": _iso(ticket.acknowledged_at),
            "delisted_at": _iso(ticket.delisted_at),
            "verified_at": _iso(ticket.verified_at),
            "closed_at": _iso(ticket.closed_at),
            "refused_at": _iso(ticket.refused_at),
            "escalated_at": _iso(ticket.escalated_at),
            "slack_channel": ticket.slack_channel,
            "slack_thread_ts": ticket.slack_thread_ts,
            "expected": self.expectations(ticket),
            "dns": self._dns_json(ticket),
        }

    def _dns_json(self, ticket: Ticket) -> dict[str, Any]:
        """The last DNS re-check of the IP on the ticket's list (`delistbot recheck`)."""
        checked_at, status, detail = self.store.dns_state(ticket.number or 0)
        return {"checked_at": _iso(checked_at), "status": status, "detail": detail}

    # -- drafts

    def draft_context(self, ticket: Ticket, fixed: str | None = None) -> dict[str, Any]:
        acting = self.provider(ticket.list_key)
        receiver = self.provider(ticket.receiver)
        route = self._route(ticket, acting)
        contact = self.contact
        return {
            "ticket": {
                "id": ticket.id,
                "ip": ticket.ip,
                "reason": ticket.reason,
                "recipient_domain": ticket.recipient_domain,
                "sender_domain": ticket.sender_domain,
                "provider_ticket_ids": list(ticket.provider_ticket_ids),
                "evidence_count": ticket.evidence_count,
            },
            "provider": {
                "id": acting.id,
                "name": acting.name,
                "list_name": acting.list_name,
                "defunct_since": acting.defunct_since,
            }
            if acting
            else {
                "id": "",
                "name": "the receiving server",
                "list_name": "your block list",
                "defunct_since": None,
            },
            "receiver": receiver.name if receiver else None,
            "route": route,
            "evidence": ticket.evidence or "",
            "bounce_text": ticket.bounce_text.strip(),
            "expected_hours": acting.wait_hours if acting else None,
            "first_seen": first_seen(ticket),
            "fixed": (fixed or "").strip() or None,
            "contact": {
                "name": contact.name,
                "organisation": contact.organisation,
                "email": contact.email,
                "phone": contact.phone,
            },
        }

    def _route(self, ticket: Ticket, acting: Provider | None) -> dict[str, Any]:
        routes = acting.routes.values() if acting else ()
        # The route the deciding rule names, when a provider has several with the same template
        # (Microsoft 365's fix lists); else the first with the ticket's template.
        rule_id = ticket.diagnosis.get("rule")
        named = next((r.route for r in self.kb.rules if r.id == rule_id), None) if rule_id else None
        route = acting.routes.get(named) if acting and named else None
        # A brand's own route (WEB.DE beside GMX) replaced the named one for this recipient domain.
        given = ticket.diagnosis.get("delist") or {}
        by_domain = next((r for r in routes if r.domains and (r.url, r.address) == (
            given.get("url"), given.get("address"))), None)
        route = by_domain or route
        if route is None or route.template != ticket.route_template:
            route = next((r for r in routes if r.template == ticket.route_template), None)
        if route is None and acting is not None:
            route = acting.route
        if route is None:
            return {
                "method": "none",
                "url": None,
                "address": None,
                "include": [],
                "note": None,
                "template": ticket.route_template or "email_request",
            }
        return {
            "method": str(route.method),
            "url": route.url,
            "address": route.address,
            "include": list(route.include),
            "note": route.note,
            "template": route.template,
        }

    def draft(self, ref: str | int, fixed: str | None = None) -> Draft:
        if self.renderer is None:
            raise DelistbotError("no draft renderer configured")
        ticket = self.get(ref)
        context = self.draft_context(ticket, fixed)
        template = context["route"]["template"]
        if template in (None, "", "none"):
            template = "email_request"
        return self.renderer(template, context)


_REPLY_EVENTS = {
    ReplyKind.ACK: Kind.ACKNOWLEDGED,
    ReplyKind.RESOLVED: Kind.DELISTED,
    ReplyKind.REFUSED: Kind.REFUSED,
    ReplyKind.ESCALATED: Kind.ESCALATED,
    ReplyKind.VERIFICATION: Kind.VERIFICATION,
}


_DATE_HEADER = re.compile(r"^(Date|Sent):[ \t]*(.+?)\s*$", re.IGNORECASE | re.MULTILINE)
# Outlook's forward header: "Sent: Monday, March 25, 2013 2:58 PM" (the sender's local time).
_OUTLOOK_SENT = ("%A, %B %d, %Y %I:%M %p", "%A, %B %d, %Y %H:%M", "%d %B %Y %H:%M")
_HEADER_CHARS = 4096  # the bounce's own headers; a Date further down is the returned message's
_EARLIEST = date(1990, 1, 1)  # a bounce dated before this has a broken clock or a forged header


def bounce_date(text: str) -> datetime | date | None:
    """When the bounce was written, from its Date header (or an Outlook forward's "Sent:" line,
    which has no zone, so only its day is trusted); None when it names no readable date."""
    for match in _DATE_HEADER.finditer(text[:_HEADER_CHARS]):
        name, value = match.group(1).lower(), match.group(2)
        if name == "date":
            try:
                when = email.utils.parsedate_to_datetime(value)
            except (TypeError, ValueError, IndexError):
                continue
            return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
        for layout in _OUTLOOK_SENT:
            try:
                return datetime.strptime(value, layout).date()
            except ValueError:
                continue
    return None


def first_seen(ticket: Ticket) -> str:
    """The date a draft gives for the first rejection: the bounce's own, or else when the ticket
    was opened (a bounce dated after that, or before 1990, is not believed)."""
    when = bounce_date(ticket.bounce_text)
    if isinstance(when, datetime):
        if when.date() >= _EARLIEST and when <= ticket.opened_at:
            return when.strftime("%Y-%m-%d %H:%M UTC")
    elif when is not None and _EARLIEST <= when <= (ticket.opened_at + timedelta(days=1)).date():
        return when.isoformat()  # a day without a zone may run ahead of UTC by one
    return ticket.opened_at.strftime("%Y-%m-%d %H:%M UTC")


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z") if value else None


def build(settings: Settings, knowledge: Knowledge | None = None) -> TicketService:
    """The service wired to the real store, knowledge and renderer for these settings."""
    from bot.adapters.render import Renderer as JinjaRenderer
    from bot.core.knowledge import load

    knowledge = knowledge or load()
    check_overrides(settings, knowledge)
    store = Store(settings.db_path)
    renderer = JinjaRenderer()
    return TicketService(
        store, knowledge, overrides_from(settings), settings.contact, renderer.render
    )


def check_overrides(settings: Settings, knowledge: Knowledge) -> None:
    """A [providers.X] table for a provider delistbot does not know would be ignored in silence
    (a typo keeps the published wait): refuse it, naming the closest ids."""
    for provider_id in settings.providers:
        if provider_id not in knowledge.providers:
            close = difflib.get_close_matches(provider_id, list(knowledge.providers), n=3)
            hint = f" (did you mean {' or '.join(close)}?)" if close else ""
            where = f" in {settings.config_path}" if settings.config_path else ""
            raise ConfigError(f"[providers.{provider_id}]{where}: no such provider{hint}")

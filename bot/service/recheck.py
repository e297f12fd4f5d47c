"""DNS re-checks of tickets: does the ticket's list still list its IP?

For a ticket whose list has a DNS zone (bot/data/dnsbl.toml), the IP is looked up on that list's
zones alone, through the evidence service:

- waiting (requested, acknowledged, escalated), every `interval`: when every zone of the list
  answers "not listed" (NXDOMAIN or no data, from a zone that answers its RFC 5782 test points),
  the ticket moves to delisted with the event "seen in DNS" and the confirmation ping is queued;
- delisted, once the propagation window is over (and every `interval` after that while it stays
  delisted): "not listed" moves it to verified; "still listed" queues the "still blocked" ping
  with the next step, in place of the plain re-check reminder of that cycle (same outbox key).

An unknown answer (timeout, SERVFAIL, an operator's error code, a zone failing its test points,
a zone that cannot be asked without a key) changes nothing, and the outcome says so. A list with
no zone (a receiver's own block, e.g. Microsoft's) is never asked: its re-check stays a reminder
for the operator. Every look-up is remembered on the ticket row (`dns_checked_at`, `dns_status`,
`dns_detail`); a look-up that moves a ticket is also in its event log.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from bot.config import Settings
from bot.core.dnsbl import Listing, ListingStatus
from bot.core.tickets import (
    WAITING,
    Event,
    Kind,
    Ping,
    PingKind,
    State,
    Ticket,
    duration,
    ping_key,
)
from bot.service.evidence import CheckResult, EvidenceService
from bot.service.tickets import TicketService, normalise

DEFAULT_INTERVAL = timedelta(minutes=30)
BATCH = 50  # tickets looked up together in one run; the rest wait for the next run
ACTOR = "dns"

Runner = Callable[[Coroutine[Any, Any, list[CheckResult]]], list[CheckResult]]


class Finding(StrEnum):
    LISTED = "listed"
    NOT_LISTED = "not_listed"
    UNKNOWN = "unknown"
    NO_ZONE = "no_zone"  # nothing delistbot can ask (no zone, or a zone that needs a key)


@dataclass(frozen=True)
class Answer:
    """What the ticket's list says about its IP, as one finding."""

    finding: Finding
    lists: str  # the lists asked, e.g. "SpamCop (bl.spamcop.net)"
    detail: str  # what they said, in words
    listed_on: str = ""  # the names of the lists that list it


@dataclass(frozen=True)
class Rechecked:
    """One ticket's re-check: the ticket afterwards, the answer, what changed."""

    ticket: Ticket
    answer: Answer
    moved: bool = False
    ping: PingKind | None = None  # the ping queued, if any
    message: str = ""
    still_blocked: bool = False  # delisted, the propagation window over, and still listed

    def to_json(self) -> dict[str, Any]:
        return {
            "ticket": self.ticket.id,
            "ip": self.ticket.ip,
            "state": str(self.ticket.state),
            "dns": str(self.answer.finding),
            "lists": self.answer.lists,
            "detail": self.answer.detail,
            "moved": self.moved,
            "ping": str(self.ping) if self.ping else None,
            "still_blocked": self.still_blocked,
            "message": self.message,
        }


class DnsRecheck:
    """The re-check use case over the ticket service and the evidence service."""

    def __init__(
        self,
        tickets: TicketService,
        evidence: EvidenceService,
        interval: timedelta = DEFAULT_INTERVAL,
        run: Runner = asyncio.run,
        batch: int = BATCH,
    ) -> None:
        self.tickets, self.evidence, self.interval = tickets, evidence, interval
        self._run, self.batch = run, batch
        # Lists with a zone that can be asked now (a keyed-only list without its key cannot).
        self.dns_lists = frozenset(
            z.provider for z in evidence.zones if z.query_zone(evidence.keys) is not None
        )
        self._trusted = frozenset(z.name for z in evidence.zones if z.test_points)

    def has_zone(self, ticket: Ticket) -> bool:
        return ticket.list_key in self.dns_lists

    # ------------------------------------------------------------ what is due

    def due(self, now: datetime) -> list[Ticket]:
        """Tickets to look up now: delisted ones past their propagation window first (not yet
        checked since it ended, or not for `interval`), then waiting ones not checked for
        `interval`, least recently checked first; at most `batch`."""
        now = normalise(now)
        store = self.tickets.store
        delisted = []
        for ticket, checked in store.dns_candidates([State.DELISTED], self.dns_lists, now):
            recheck_at = self.tickets.schedule(ticket).recheck_at
            if recheck_at is None or recheck_at > now:
                continue
            if checked is None or checked <= recheck_at or checked <= now - self.interval:
                delisted.append(ticket)
        waiting = store.dns_candidates(WAITING, self.dns_lists, now - self.interval, self.batch)
        return (delisted + [t for t, _ in waiting])[: self.batch]

    # ------------------------------------------------------------ running

    def run(self, now: datetime, ref: str | int | None = None) -> list[Rechecked]:
        """Re-check what is due (or the one ticket `ref`, whenever it was last checked)."""
        now = normalise(now)
        if ref is not None:
            ticket = self.tickets.get(ref)
            if not self.has_zone(ticket):
                return [self._no_zone(ticket)]
            targets = [ticket]
        else:
            targets = self.due(now)
        if not targets:
            return []
        results = self._run(self._look(targets))
        return [
            self._apply(ticket, self.judge(result), now)
            for ticket, result in zip(targets, results, strict=True)
        ]

    async def _look(self, tickets: Sequence[Ticket]) -> list[CheckResult]:
        return list(
            await asyncio.gather(*(self.evidence.check_ip(t.ip, {t.list_key}) for t in tickets))
        )

    def judge(self, result: CheckResult) -> Answer:
        """Listed if any zone of the list lists the IP; not listed only if every zone says so
        and each answers its test points; anything else is unknown."""
        if result.problem or result.private:
            return Answer(Finding.UNKNOWN, "", result.problem or result.private or "")
        if not result.listings:
            lists = ", ".join(f"{s.list} ({s.zone})" for s in result.skipped)
            why = "; ".join(f"{s.list}: {s.why}" for s in result.skipped) or "no DNS zone"
            return Answer(Finding.NO_ZONE, lists, why)
        lists = ", ".join(f"{x.list} ({x.zone})" for x in result.listings)
        listed = [x for x in result.listings if x.status is ListingStatus.LISTED]
        if listed:
            return Answer(Finding.LISTED, lists, "; ".join(_listed(x) for x in listed),
                          ", ".join(x.list for x in listed))
        doubtful = [
            x
            for x in result.listings
            if x.status is not ListingStatus.NOT_LISTED or x.list not in self._trusted
        ]
        if doubtful:
            return Answer(Finding.UNKNOWN, lists, "; ".join(self._doubt(x) for x in doubtful))
        return Answer(
            Finding.NOT_LISTED,
            lists,
            "; ".join(f"{x.list} ({x.zone}) does not list it" for x in result.listings),
        )

    def _doubt(self, x: Listing) -> str:
        if x.status is ListingStatus.NOT_LISTED:
            return f"{x.list} answers no test points, so its 'not listed' cannot be trusted"
        return f"{x.list}: {x.detail or 'no usable answer'}"

    # ------------------------------------------------------------ deciding

    def _apply(self, snapshot: Ticket, answer: Answer, now: datetime) -> Rechecked:
        assert snapshot.number is not None
        store = self.tickets.store
        with store.write():
            ticket = self.tickets.get(snapshot.number)  # as it is now, not as it was looked up
            store.note_dns(snapshot.number, now, str(answer.finding), answer.detail)
            if ticket.state in WAITING:
                return self._waiting(ticket, answer, now)
            if ticket.state is State.DELISTED:
                return self._delisted(ticket, answer, now)
            said = _said(answer)
            return Rechecked(ticket, answer, message=f"{ticket.id} is {ticket.state}: {said};"
                             " nothing to change")

    def _waiting(self, ticket: Ticket, answer: Answer, now: datetime) -> Rechecked:
        if answer.finding is not Finding.NOT_LISTED:
            return Rechecked(ticket, answer, message=f"{ticket.id} ({ticket.state}): "
                             f"{_said(answer)}; unchanged")
        event = Event(Kind.DELISTED, ACTOR, text=f"seen in DNS: {answer.detail}",
                      detail={"dns": str(answer.finding), "lists": answer.lists})
        new = self.tickets.move(ticket.id, event, now)
        queued = self.tickets.queue_confirmation(new, f"seen in DNS ({answer.detail})", now)
        recheck_at = self.tickets.schedule(new).recheck_at
        when = f"; re-check due {_when(recheck_at)}" if recheck_at else ""
        return Rechecked(new, answer, True, PingKind.CONFIRMED if queued else None,
                         f"{ticket.id}: {ticket.state} -> delisted (seen in DNS: "
                         f"{answer.detail}){when}")

    def _delisted(self, ticket: Ticket, answer: Answer, now: datetime) -> Rechecked:
        waits = self.tickets.waits(ticket)
        recheck_at = self.tickets.schedule(ticket).recheck_at
        assert ticket.delisted_at is not None and recheck_at is not None
        if now < recheck_at:
            return Rechecked(ticket, answer, message=f"{ticket.id} (delisted): {_said(answer)};"
                             f" the propagation window ends {_when(recheck_at)}, unchanged")
        head = f"{ticket.id} ({ticket.ip} at {self._name(ticket)})"
        window = f"the {duration(waits.propagation_hours)} propagation window is over"
        if answer.finding is Finding.NOT_LISTED:
            return self._verified(ticket, answer, now, head, window)
        if answer.finding is Finding.LISTED:
            return self._still_listed(ticket, answer, now, head, window)
        return Rechecked(ticket, answer, message=f"{ticket.id} (delisted): {_said(answer)};"
                         " unchanged: the re-check stays a reminder")

    def _verified(self, ticket: Ticket, answer: Answer, now: datetime, head: str,
                  window: str) -> Rechecked:
        assert ticket.delisted_at is not None
        event = Event(Kind.VERIFIED, ACTOR, text=f"verified in DNS after {window}: "
                      f"{answer.detail}", detail={"dns": str(answer.finding)})
        new = self.tickets.move(ticket.id, event, now)
        text = (f"{head}: {window} and DNS agrees: {answer.detail}. Verified; send a test "
                "message, then close the ticket.")
        ping = Ping(ticket.id, PingKind.VERIFIED, now,
                    ping_key(ticket, PingKind.VERIFIED, ticket.delisted_at), text)
        queued = self.tickets.queue_ping(new, ping, now)
        return Rechecked(new, answer, True, PingKind.VERIFIED if queued else None,
                         f"{ticket.id}: delisted -> verified (DNS: {answer.detail})")

    def _still_listed(self, ticket: Ticket, answer: Answer, now: datetime, head: str,
                      window: str) -> Rechecked:
        assert ticket.delisted_at is not None
        step = self.tickets.next_step(ticket)
        text = (f"{head}: {window}, but DNS re-check: still listed on {answer.listed_on} "
                f"({answer.detail}). {step}").strip()
        # The key of this cycle's re-check reminder: the finding replaces the plain reminder.
        ping = Ping(ticket.id, PingKind.STILL_LISTED, now,
                    ping_key(ticket, PingKind.RECHECK, ticket.delisted_at), text)
        queued = self.tickets.queue_ping(ticket, ping, now)
        if queued:
            note = Event(Kind.NOTE, ACTOR, text=f"DNS re-check after {window}: still listed "
                         f"({answer.detail})", detail={"dns": str(answer.finding)})
            ticket = self.tickets.move(ticket.id, note, now)
        return Rechecked(ticket, answer, False, PingKind.STILL_LISTED if queued else None,
                         f"{ticket.id} (delisted): {window} and it is still listed "
                         f"({answer.detail}). {step}".strip(), still_blocked=True)

    def _no_zone(self, ticket: Ticket) -> Rechecked:
        answer = Answer(Finding.NO_ZONE, "", "no DNS zone")
        return Rechecked(ticket, answer, message=(
            f"{ticket.id}: {self._name(ticket)} has no DNS zone delistbot can ask (none, or only "
            "one that needs a key); only a test message shows whether mail flows (the re-check "
            "stays a reminder)"))

    def _name(self, ticket: Ticket) -> str:
        provider = self.tickets.provider(ticket.list_key)
        return provider.name if provider else ticket.list_key or "an unknown list"


def _listed(x: Listing) -> str:
    meaning = f": {x.meaning}" if x.meaning else ""
    return f"{x.list} answers {x.code}{meaning}"


def _said(answer: Answer) -> str:
    if answer.finding is Finding.LISTED:
        return f"still listed ({answer.detail})"
    if answer.finding is Finding.NOT_LISTED:
        return f"not listed ({answer.detail})"
    if answer.finding is Finding.NO_ZONE:
        return f"no DNS answer possible ({answer.detail})"
    return f"DNS did not say ({answer.detail})"


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S UTC") if value else "-"


def build(settings: Settings, tickets: TicketService, run: Runner = asyncio.run,
          evidence: EvidenceService | None = None) -> DnsRecheck:
    """The re-check wired to the real resolver (or to the process's evidence service)."""
    if evidence is None:
        from bot.adapters.dns import DnsResolver
        from bot.core import dnsbl

        resolver = DnsResolver(settings.nameservers, timeout=settings.dns_timeout,
                               concurrency=settings.dns_concurrency)
        keys = {"dqs": settings.dqs_key, "abusix": settings.abusix_key}
        evidence = EvidenceService(tickets.kb, dnsbl.load_zones(tickets.kb.providers), resolver,
                                   keys, deadline=settings.dns_deadline)
    return DnsRecheck(tickets, evidence, timedelta(seconds=settings.dns_recheck), run)

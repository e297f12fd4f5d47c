"""Use cases for DNS evidence: `check_ip` (every current block list) and `gather` (everything
DNS says about one diagnosis: listings, the recipient's MX and its provider, the sending IP's
reverse DNS and whether it is forward-confirmed, the sending domain's SPF and DMARC).

All lookups of one call are in flight at once; each has the resolver's per-query timeout and the
whole call an overall deadline, after which what has not answered is reported as unknown.
"""

from __future__ import annotations

import asyncio
import dataclasses
import ipaddress
import time
from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from bot.core import dnsbl, spf
from bot.core.dnsbl import Listing, ListingStatus, Planned, Skipped, Zone
from bot.core.knowledge import Knowledge, Provider
from bot.core.model import Diagnosis
from bot.core.ports import DnsStatus, Resolver
from bot.core.spf import DmarcResult, SpfResult

_T = TypeVar("_T")
RECEIVER_KINDS = ("receiver", "gateway", "dnsbl")  # Barracuda ESS is filed as the list operator
_LATE = object()  # `_within`'s result for a job cut off at the deadline


@dataclass(frozen=True)
class CheckResult:
    """`delistbot check IP`: one answer per current list."""

    query: str
    ip: str | None = None
    problem: str | None = None  # the input is not an IP (usage error)
    private: str | None = None  # a non-public IP: nothing was asked
    listings: tuple[Listing, ...] = ()
    skipped: tuple[Skipped, ...] = ()
    notes: tuple[str, ...] = ()
    seconds: float = 0.0

    def with_status(self, status: ListingStatus) -> list[Listing]:
        return [x for x in self.listings if x.status is status]

    def to_json(self) -> dict[str, Any]:
        return {
            "query": self.query,
            "ip": self.ip,
            "problem": self.problem,
            "private": self.private,
            "listed": len(self.with_status(ListingStatus.LISTED)),
            "unknown": len(self.with_status(ListingStatus.UNKNOWN)),
            "listings": [x.to_json() for x in self.listings],
            "skipped": [x.to_json() for x in self.skipped],
            "notes": list(self.notes),
            "seconds": round(self.seconds, 3),
        }


@dataclass(frozen=True)
class Evidence:
    """Everything DNS says about one diagnosis (the JSON's "dns" field)."""

    check: CheckResult | None = None
    mx: dict[str, Any] | None = None
    ptr: tuple[str, ...] | None = None
    fcrdns: bool | None = None
    # The module `spf` is shadowed by the field of that name inside this class body.
    spf: SpfResult | None = None
    dmarc: DmarcResult | None = None
    notes: tuple[str, ...] = ()

    @property
    def receiver(self) -> str | None:
        return self.mx.get("provider") if self.mx else None

    def to_json(self) -> dict[str, Any]:
        check = self.check
        return {
            "listings": [x.to_json() for x in check.listings] if check else [],
            "skipped": [x.to_json() for x in check.skipped] if check else [],
            "mx": self.mx,
            "ptr": list(self.ptr) if self.ptr is not None else None,
            "fcrdns": self.fcrdns,
            "spf": self.spf.to_json() if self.spf else None,
            "dmarc": self.dmarc.to_json() if self.dmarc else None,
            "notes": [*(check.notes if check else ()), *self.notes],
        }


class EvidenceService:
    """Holds the resolver (and its cache) so every check of a process shares it."""

    def __init__(self, knowledge: Knowledge, zones: Iterable[Zone], resolver: Resolver,
                 keys: Mapping[str, str | None], deadline: float = 6.0) -> None:
        self.knowledge = knowledge
        self.zones = tuple(zones)
        self.resolver = resolver
        self.keys = dict(keys)
        self.deadline = deadline
        self._health_checks: dict[str, asyncio.Task[dnsbl.Health]] = {}

    # ------------------------------------------------------------------ block lists

    async def check_ip(self, text: str, providers: Collection[str] | None = None) -> CheckResult:
        """Every current list's answer for the IP in `text`; with `providers`, only the zones of
        those list operators (a ticket's re-check asks its own list, not all of them)."""
        return (await self.check_ips([text], providers))[0]

    async def check_ips(self, texts: Sequence[str],
                        providers: Collection[str] | None = None) -> list[CheckResult]:
        """Several IPs at once (a sweep of a range): every lookup in flight together, under
        one overall deadline. A zone's RFC 5782 test points are asked once for all of them,
        and once for every check running at the same time (the bot's concurrent checks).

        With more than one address, each zone is asked only once its test points have answered:
        a zone that does not answer them is not sent a query per address (each would hold a
        slot of the concurrency bound for the whole timeout, and starve the other lists)."""
        started = time.monotonic()
        zones = self.zones if providers is None else self.zones_of(providers)
        targets = [dnsbl.parse_target(text) for text in texts]
        plans = [dnsbl.plan(zones, t.ip, self.keys)
                 if t.ip is not None and not t.problem and not t.private else dnsbl.Plan()
                 for t in targets]
        asked = [p for plan in plans for p in plan.queries]
        health = {p.test_listed: self._health(p) for p in asked if p.test_listed}
        sweep = sum(1 for plan in plans if plan.queries) > 1
        jobs: list[Awaitable[object]] = [
            self._listing(p, health[p.test_listed] if sweep and p.test_listed else None)
            for p in asked]
        jobs += [asyncio.shield(task) for task in health.values()]  # shared: never cancelled
        done = await _within(jobs, self.deadline, lambda _: _LATE)
        problems = dict(zip(health, done[len(asked):], strict=True))
        listings = iter(self._judged(p, listing, problems)
                        for p, listing in zip(asked, done, strict=False))
        seconds, notes = time.monotonic() - started, self._notes()
        return [CheckResult(text, str(t.ip) if t.ip else None, t.problem, t.private,
                            tuple(next(listings) for _ in plan.queries), plan.skipped,
                            notes if plan.queries else (), seconds)
                for text, t, plan in zip(texts, targets, plans, strict=True)]

    def _health(self, p: Planned) -> asyncio.Task[dnsbl.Health]:
        """The zone's test-point check: the one in flight, if another check started it."""
        assert p.test_listed and p.test_clean
        loop = asyncio.get_running_loop()
        task = self._health_checks.get(p.test_listed)
        if task is None or task.get_loop() is not loop:
            task = self._health_checks[p.test_listed] = loop.create_task(self._ask_health(p))
            task.add_done_callback(lambda done: self._health_done(p.test_listed or "", done))
        return task

    def _health_done(self, name: str, task: asyncio.Task[dnsbl.Health]) -> None:
        if self._health_checks.get(name) is task:
            del self._health_checks[name]  # the next check asks again (the resolver caches)

    async def _ask_health(self, p: Planned) -> dnsbl.Health:
        """Whether the zone can be believed right now (its test points answer right)."""
        assert p.test_listed and p.test_clean
        listed, clean = await asyncio.gather(self.resolver.query(p.test_listed, "A"),
                                             self.resolver.query(p.test_clean, "A"))
        return dnsbl.health(p.zone, listed, clean)

    def zones_of(self, providers: Collection[str]) -> tuple[Zone, ...]:
        return tuple(z for z in self.zones if z.provider in providers)

    async def _listing(self, p: Planned,
                       gate: asyncio.Task[dnsbl.Health] | None = None) -> Listing:
        if gate is not None:  # a sweep: ask only a zone that answers its test points
            health = await asyncio.shield(gate)
            if health.unanswered:
                return dnsbl.not_asked(p.zone, p.shown, health)
        a = await self.resolver.query(p.name, "A")
        listing = dnsbl.interpret(p.zone, a, None, p.shown)
        if listing.status is ListingStatus.LISTED:  # the reason text only matters when listed
            listing = dnsbl.interpret(p.zone, a, await self.resolver.query(p.name, "TXT"),
                                      p.shown)
        return listing

    def _judged(self, p: Planned, listing: object, problems: Mapping[str, object]) -> Listing:
        """The listing as reported: late if it or its zone's test points did not answer in
        time, not trustworthy if the test points answered wrong."""
        problem = problems.get(p.test_listed) if p.test_listed else None
        if not isinstance(listing, Listing) or problem is _LATE:
            return self._late(p)
        return dnsbl.distrust(listing, problem) if isinstance(problem, dnsbl.Health) else listing

    def _late(self, p: Planned) -> Listing:
        return Listing(p.zone.name, p.shown, p.zone.provider, ListingStatus.UNKNOWN,
                       detail=f"no answer within the overall deadline ({self.deadline:g} s)")

    def _notes(self) -> tuple[str, ...]:
        notes = []
        if any(z.key == "dqs" for z in self.zones) and not self.keys.get("dqs"):
            notes.append(
                "DELISTBOT_DQS_KEY is not set: Spamhaus was asked through its public mirror, "
                "which answers only an error code (127.255.255.254) to queries through public "
                "or cloud resolvers and is free only for low-volume non-commercial use. Set a "
                "(free) Spamhaus DQS key for reliable answers.")
        return tuple(notes)

    # ------------------------------------------------------------------ diagnosis evidence

    async def gather(self, diagnosis: Diagnosis) -> Evidence:
        ip, sender, recipient = (diagnosis.sending_ip, diagnosis.sender_domain,
                                 diagnosis.recipient_domain)
        public = ip if ip and dnsbl.parse_target(ip).private is None \
            and dnsbl.parse_target(ip).problem is None else None
        jobs: dict[str, Awaitable[Any]] = {}
        if ip:
            jobs["check"] = self.check_ip(ip)
        if recipient:
            jobs["mx"] = self.mx(recipient)
        if public:
            jobs["reverse"] = self.reverse(public)
        if sender and public:
            jobs["spf"] = spf.check_host(self.resolver, public, sender)
        if sender:
            jobs["dmarc"] = spf.dmarc_policy(self.resolver, sender)
        names = list(jobs)
        results = await _within(list(jobs.values()), self.deadline + 1, lambda _: None)
        found = dict(zip(names, results, strict=True))
        late = [n for n in names if found[n] is None]
        ptr, fcrdns = found.get("reverse") or (None, None)
        return Evidence(
            check=found.get("check"), mx=found.get("mx"), ptr=ptr, fcrdns=fcrdns,
            spf=found.get("spf"), dmarc=found.get("dmarc"),
            notes=tuple(f"{n}: no answer within the overall deadline" for n in late))

    async def mx(self, domain: str) -> dict[str, Any]:
        if not spf.valid_domain(domain):
            return {"domain": domain, "status": "invalid", "hosts": [], "provider": None}
        answer = await self.resolver.query(domain, "MX")
        hosts = [h for _, h in sorted(_mx_pairs(answer.records))]
        status = {DnsStatus.OK: "ok", DnsStatus.NXDOMAIN: "nxdomain",
                  DnsStatus.NODATA: "none"}.get(answer.status, str(answer.status))
        return {"domain": domain, "status": status, "hosts": hosts,
                "provider": receiver_for_hosts(self.knowledge.by_kind(*RECEIVER_KINDS), hosts)}

    async def reverse(self, ip: str) -> tuple[tuple[str, ...] | None, bool | None]:
        """PTR names of the IP, and whether one of them resolves back to it (FCrDNS)."""
        answer = await self.resolver.query(_reverse_pointer(ip), "PTR")
        if answer.failed:
            return None, None
        names = tuple(r.rstrip(".").lower() for r in answer.records)
        if not names:
            return (), False
        return names, bool(await spf.validated_names(self.resolver, ip))


def enrich(diagnosis: Diagnosis, evidence: Evidence) -> Diagnosis:
    """The diagnosis with DNS evidence attached (and a receiver found from MX if none was)."""
    return dataclasses.replace(
        diagnosis,
        receiver=diagnosis.receiver or evidence.receiver,
        extra={**diagnosis.extra, "dns": evidence.to_json()},
    )


def receiver_for_hosts(providers: Iterable[Provider], hosts: Iterable[str]) -> str | None:
    """The provider whose host pattern matches the preferred MX most specifically.

    The longest matched text wins (".olc.protection.outlook.com" beats ".outlook.com"), so the
    result never depends on the order of providers.toml.
    """
    candidates = list(providers)
    for host in hosts:
        host = host.rstrip(".").lower()
        best: tuple[int, str] | None = None
        for provider in candidates:
            for pattern in provider.hosts:
                match = pattern.search(host)
                if match and (best is None or len(match.group(0)) > best[0]):
                    best = (len(match.group(0)), provider.id)
        if best:
            return best[1]
    return None


def _mx_pairs(records: Iterable[str]) -> list[tuple[int, str]]:
    pairs = []
    for record in records:
        preference, _, host = record.partition(" ")
        if preference.isdigit():
            pairs.append((int(preference), host.rstrip(".").lower()))
    return pairs


def _reverse_pointer(ip: str) -> str:
    return ipaddress.ip_address(ip).reverse_pointer


async def _within(jobs: Sequence[Awaitable[_T]], deadline: float,
                  late: Callable[[int], _T]) -> list[_T]:
    """Run all jobs at once; job i, if still running at the deadline, is cancelled and its result
    is `late(i)`."""
    tasks = [asyncio.ensure_future(job) for job in jobs]
    if not tasks:
        return []
    _, pending = await asyncio.wait(tasks, timeout=deadline)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    return [late(i) if task in pending else task.result() for i, task in enumerate(tasks)]

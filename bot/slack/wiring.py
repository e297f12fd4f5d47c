"""Binds the Slack edge to the service layer: the only module here that names `bot.service`."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar, cast

from bot.config import Settings
from bot.core.knowledge import Knowledge, load
from bot.core.model import Diagnosis
from bot.slack.app import SlackBot, build_app
from bot.slack.blocks import Listing
from bot.slack.ports import IpPicture, Runner, Services
from bot.slack.surface import Surface

if TYPE_CHECKING:
    from bot.service.evidence import EvidenceService

_T = TypeVar("_T")


class DnsLoop:
    """One event loop thread for every DNS check of the process.

    The evidence service is asyncio (all of one check's lookups in flight at once) and its
    resolver shares a cache and a concurrency limit bound to one loop; Slack work runs on plain
    threads, which hand their checks to this loop and wait for the answer.
    """

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="delistbot-dns",
                                        daemon=True)
        self._thread.start()

    def run(self, job: Coroutine[Any, Any, _T], timeout: float) -> _T:
        return asyncio.run_coroutine_threadsafe(job, self._loop).result(timeout)


def services(settings: Settings, knowledge: Knowledge, tickets: Any = None) -> Services:
    """The Slack edge's callables; with `tickets`, DNS re-checks of tickets too."""
    from bot.cli.check import build_service

    evidence = build_service(settings, knowledge)  # one resolver and cache for the process
    loop = DnsLoop()
    return Services(
        diagnose=_diagnose,
        check_ip=_check_ip(settings, knowledge, evidence, loop),
        draft=_no_draft,
        names={pid: p.name for pid, p in knowledge.providers.items()},
        recheck=_recheck(settings, tickets, evidence, loop) if tickets is not None else None,
    )


def _diagnose(data: bytes, source: str) -> list[Diagnosis]:
    from bot.service.diagnose import diagnose_bytes

    return list(diagnose_bytes(data, source))


def _check_ip(
    settings: Settings, knowledge: Knowledge, evidence: EvidenceService, loop: DnsLoop
) -> Callable[[str], IpPicture]:
    from bot.core.dnsbl import ListingStatus

    status = {ListingStatus.LISTED: "listed", ListingStatus.NOT_LISTED: "not listed"}

    def delist_url(provider_id: str) -> str | None:
        provider = knowledge.providers.get(provider_id)
        return provider.route.url if provider else None

    def check(ip: str) -> IpPicture:
        # The service has its own overall deadline; this bound only guards a wedged loop.
        result = loop.run(evidence.check_ip(ip), timeout=settings.dns_deadline + 10)
        listings = [
            Listing(x.provider, x.list, status.get(x.status, "unknown"), x.meaning or "",
                    delist_url(x.provider), x.detail or "")
            for x in result.listings
        ]
        note = " ".join(filter(None, [result.problem, result.private, *result.notes]))
        return IpPicture(result.ip or ip, listings, note)

    return check


def _recheck(
    settings: Settings, tickets: Any, evidence: EvidenceService, loop: DnsLoop
) -> Callable[[datetime], Sequence[Any]]:
    """Tickets' DNS re-checks, run from the ping loop's thread with the lookups on the DNS loop."""
    from bot.service.recheck import DnsRecheck

    checker = DnsRecheck(
        tickets,
        evidence,
        timedelta(seconds=settings.dns_recheck),
        run=lambda job: loop.run(job, timeout=settings.dns_deadline + 10),
    )
    return checker.run


# A small delivery report in the shapes bounces most often take (a DSN whose text part names
# Microsoft's block list): diagnosing it twice makes the engine load and prepare its knowledge.
_WARM_UP = b"""From: MAILER-DAEMON@mx.example.net
Subject: Undelivered Mail Returned to Sender
Content-Type: multipart/report; report-type=delivery-status; boundary="b"

--b
Content-Type: text/plain

<someone@example.com>: host mx.example.com[198.51.100.25] said: 550 5.7.1
    Service unavailable; Client host [192.0.2.1] blocked using Blocklist 1, mail from IP
    banned (in reply to RCPT TO command)

--b
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.net

Final-Recipient: rfc822; someone@example.com
Action: failed
Status: 5.7.1
Remote-MTA: dns; mx.example.com
Diagnostic-Code: smtp; 550 5.7.1 Service unavailable; Client host [192.0.2.1] blocked using
 Blocklist 1, mail from IP banned

--b--
"""


def warm_up(services: Services) -> None:
    """Prepare the diagnosis engine before Slack's first request.

    The engine compiles its knowledge lazily: on the first diagnoses after a start, each one
    costs a few hundred milliseconds of CPU. Done on the work pool while 50 commands arrive,
    that CPU is taken from the threads acking them; done here, before the bot listens, the
    first commands after a start are acked as fast as later ones.
    """
    for n in (1, 2):  # the second use of each pattern is when the engine prepares it
        services.diagnose(_WARM_UP.replace(b"192.0.2.1", b"192.0.2.%d" % n), "warm-up")


def _no_draft(d: Diagnosis) -> str | None:
    return None  # drafts come with the ticket (`TicketService.draft`), not the bare diagnosis


class PerThreadTickets:
    """One TicketService per thread, built on first use.

    The ticket store's SQLite connection may only be used by the thread that opened it, and the
    Slack app works from several (Bolt's listeners, the work pool, the ping loop). Each gets its
    own connection; SQLite's locking (the store's IMMEDIATE transactions) keeps writes serial.
    """

    def __init__(self, make: Callable[[], Any]) -> None:
        self._make = make
        self._local = threading.local()

    def __getattr__(self, name: str) -> Any:
        service = getattr(self._local, "service", None)
        if service is None:
            service = self._local.service = self._make()
        return getattr(service, name)


def build(
    settings: Settings,
    runner: Runner,
    surface: Surface | None = None,
    clock: Callable[[], datetime] | None = None,
) -> SlackBot:
    from bot.service import tickets

    knowledge = load()
    per_thread = PerThreadTickets(lambda: tickets.build(settings, knowledge))
    per_thread.tickets  # noqa: B018 - open (and migrate) the database now, not on first use
    return build_app(settings, services(settings, knowledge, per_thread), runner,
                     cast("tickets.TicketService", per_thread), surface,
                     clock or tickets.utc_now)

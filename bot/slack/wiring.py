"""Binds the Slack edge to the service layer: the only module here that names `bot.service`."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, cast

from bot.config import Settings
from bot.core.model import Diagnosis
from bot.slack.app import SlackBot, build_app
from bot.slack.blocks import Listing
from bot.slack.ports import IpPicture, Runner, Services
from bot.slack.surface import Surface


def services(settings: Settings) -> Services:
    from bot.core.knowledge import load

    knowledge = load()
    return Services(
        diagnose=_diagnose,
        check_ip=_check_ip(settings),
        draft=_no_draft,
        names={pid: p.name for pid, p in knowledge.providers.items()},
    )


def _diagnose(data: bytes, source: str) -> list[Diagnosis]:
    from bot.service.diagnose import diagnose_bytes

    return list(diagnose_bytes(data, source))


def _check_ip(settings: Settings) -> Callable[[str], IpPicture]:
    def check(ip: str) -> IpPicture:
        from bot.service.diagnose import diagnose_ip

        d = diagnose_ip(ip)
        listings = [] if d.blocklist is None else [Listing(d.blocklist, d.blocklist, "listed")]
        return IpPicture(ip, listings, d.verdict)

    return check


def _no_draft(d: Diagnosis) -> str | None:
    return None


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


def build(settings: Settings, runner: Runner, surface: Surface | None = None) -> SlackBot:
    from bot.core.knowledge import load
    from bot.service import tickets

    knowledge = load()
    per_thread = PerThreadTickets(lambda: tickets.build(settings, knowledge))
    per_thread.tickets  # noqa: B018 - open (and migrate) the database now, not on first use
    return build_app(settings, services(settings), runner,
                     cast("tickets.TicketService", per_thread), surface)

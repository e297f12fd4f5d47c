"""Binds the Slack edge to the service layer: the only module here that names `bot.service`."""

from __future__ import annotations

from collections.abc import Callable

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


def build(settings: Settings, runner: Runner, surface: Surface | None = None) -> SlackBot:
    return build_app(settings, services(settings), runner, surface)

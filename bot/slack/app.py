"""The Bolt app factory: one `App` for HTTP mode, Socket Mode and the console.

The WebClient is built here from Settings (token, `SLACK_API_BASE_URL`, retry handlers) and
injected, because `App(token=…)` would build its own client aimed at slack.com. The token is not
checked at start-up (`token_verification_enabled=False`): Bolt calls `auth.test` on the first
request instead, which also tells the self-event filter who "we" are.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime

from slack_bolt import App
from slack_bolt.authorization import AuthorizeResult
from slack_sdk import WebClient

from bot.config import Settings, parse_duration
from bot.core.errors import ConfigError
from bot.service.tickets import TicketService, utc_now
from bot.slack.listeners import Handlers
from bot.slack.pinger import DEFAULT_INTERVAL, Pinger
from bot.slack.ports import Runner, Services
from bot.slack.replies import Replies
from bot.slack.store import SlackStore
from bot.slack.surface import Surface, WebSurface, make_client
from bot.slack.ticket_flows import TicketFlows

log = logging.getLogger(__name__)

# The console's pretend identity; the self-event filter compares against it.
CONSOLE_TEAM, CONSOLE_BOT_USER, CONSOLE_BOT_ID = "TCONSOLE", "UDELISTBOT", "BDELISTBOT"


@dataclass
class SlackBot:
    """The app and what its listeners use; serve starts `pinger` and `replies` beside the
    transport (the two loops that deliver what Slack could not take at once)."""

    app: App
    handlers: Handlers
    surface: Surface
    store: SlackStore
    pinger: Pinger
    replies: Replies


@dataclass(frozen=True)
class SlackSettings:
    """The settings file's optional [slack] table."""

    ping_interval: float = DEFAULT_INTERVAL  # also how often undelivered replies are retried
    auto_open: frozenset[str] = frozenset()  # channel ids where bounces open tickets at once
    fallback_channel: str | None = None  # where pings of tickets opened outside Slack go

    @classmethod
    def from_settings(cls, settings: Settings) -> SlackSettings:
        table = dict(settings.raw.get("slack", {}))
        unknown = set(table) - {"ping_interval", "auto_open", "channel"}
        if unknown:
            raise ConfigError(f"[slack]: unknown key(s) {', '.join(sorted(unknown))}")
        interval = parse_duration(table.get("ping_interval", "10s"), "slack.ping_interval")
        auto_open = table.get("auto_open", [])
        if not isinstance(auto_open, list) or not all(isinstance(c, str) for c in auto_open):
            raise ConfigError("[slack] auto_open must be a list of channel ids")
        return cls(max(0.2, interval), frozenset(auto_open), table.get("channel") or None)


def build_app(
    settings: Settings,
    services: Services,
    runner: Runner,
    tickets: TicketService,
    surface: Surface | None = None,
    clock: Callable[[], datetime] = utc_now,
) -> SlackBot:
    """The Slack app; with `surface` given (the console) it never talks to Slack.

    `clock` is the time every listener and the ping loop go by (the console can move it on).
    """
    options = SlackSettings.from_settings(settings)
    store = SlackStore(settings.db_path)
    if surface is None:
        client = make_client(settings.slack_bot_token, settings.slack_api_base_url)
        once = make_client(settings.slack_bot_token, settings.slack_api_base_url, ambiguous=False)
        surface = WebSurface(client, once)
        bolt_log = logging.getLogger("slack_bolt")
        # App() also reads SLACK_BOT_TOKEN itself and warns that the client's token wins; both
        # are the same token here, so that one warning would only mislead an operator.
        bolt_log.addFilter(_SameTokenWarning())
        app = App(
            client=client,
            signing_secret=settings.slack_signing_secret or "",
            token_verification_enabled=False,
            # Listeners only ack and enqueue; a roomy pool keeps acks from queueing.
            listener_executor=ThreadPoolExecutor(max_workers=32),
            logger=bolt_log,
        )
    else:
        app = App(
            client=WebClient(token=None),
            signing_secret="console",
            authorize=_console_identity,
            process_before_response=True,  # the console waits for each listener in turn
            logger=logging.getLogger("slack_bolt"),
        )
    pinger = Pinger(tickets, surface, owner_of=lambda ref: tickets.get(ref).owner,
                    clock=clock, interval=options.ping_interval,
                    fallback_channel=options.fallback_channel, thread_of=_thread_of(tickets))
    replies = Replies(store, surface, interval=options.ping_interval)
    flows = TicketFlows(tickets, surface, store, services.names, wake_pinger=pinger.wake,
                        clock=clock, check_ip=services.check_ip, replies=replies)
    pinger.annotate = flows.ping_note
    pinger.words, pinger.offer = flows.ping_words, flows.ping_offer
    if services.recheck is not None:
        flows.recheck = services.recheck
        pinger.before_tick = flows.dns_recheck
    handlers = Handlers(services, surface, store, runner, flows, replies, options.auto_open)
    handlers.register(app)
    return SlackBot(app, handlers, surface, store, pinger, replies)


def _thread_of(tickets: TicketService) -> Callable[[str], tuple[str | None, str | None]]:
    def where(ref: str) -> tuple[str | None, str | None]:
        ticket = tickets.get(ref)
        return ticket.slack_channel, ticket.slack_thread_ts

    return where


class _SameTokenWarning(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "`token` will be unused" not in record.getMessage()


def _console_identity(enterprise_id: str | None, team_id: str | None) -> AuthorizeResult:
    return AuthorizeResult(
        enterprise_id=enterprise_id,
        team_id=team_id or CONSOLE_TEAM,
        bot_user_id=CONSOLE_BOT_USER,
        bot_id=CONSOLE_BOT_ID,
        bot_token="xoxb-console",
    )

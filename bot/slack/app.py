"""The Bolt app factory: one `App` for HTTP mode, Socket Mode and the console.

The WebClient is built here from Settings (token, `SLACK_API_BASE_URL`, retry handlers) and
injected, because `App(token=…)` would build its own client aimed at slack.com. The token is not
checked at start-up (`token_verification_enabled=False`): Bolt calls `auth.test` on the first
request instead, which also tells the self-event filter who "we" are.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from slack_bolt import App
from slack_bolt.authorization import AuthorizeResult
from slack_sdk import WebClient

from bot.config import Settings
from bot.slack.listeners import Handlers
from bot.slack.ports import Runner, Services
from bot.slack.store import SlackStore
from bot.slack.surface import Surface, WebSurface, make_client

log = logging.getLogger(__name__)

# The console's pretend identity; the self-event filter compares against it.
CONSOLE_TEAM, CONSOLE_BOT_USER, CONSOLE_BOT_ID = "TCONSOLE", "UDELISTBOT", "BDELISTBOT"


@dataclass
class SlackBot:
    """The app and what its listeners use, so serve can also run the ping loop against them."""

    app: App
    handlers: Handlers
    surface: Surface
    store: SlackStore


def build_app(
    settings: Settings,
    services: Services,
    runner: Runner,
    surface: Surface | None = None,
) -> SlackBot:
    """The Slack app; with `surface` given (the console) it never talks to Slack."""
    store = SlackStore(settings.db_path)
    if surface is None:
        client = make_client(settings.slack_bot_token, settings.slack_api_base_url)
        surface = WebSurface(client)
        app = App(
            client=client,
            signing_secret=settings.slack_signing_secret or "",
            token_verification_enabled=False,
            # Listeners only ack and enqueue; a roomy pool keeps acks from queueing.
            listener_executor=ThreadPoolExecutor(max_workers=32),
            logger=logging.getLogger("slack_bolt"),
        )
    else:
        app = App(
            client=WebClient(token=None),
            signing_secret="console",
            authorize=_console_identity,
            process_before_response=True,  # the console waits for each listener in turn
            logger=logging.getLogger("slack_bolt"),
        )
    handlers = Handlers(services, surface, store, runner)
    handlers.register(app)
    return SlackBot(app, handlers, surface, store)


def _console_identity(enterprise_id: str | None, team_id: str | None) -> AuthorizeResult:
    return AuthorizeResult(
        enterprise_id=enterprise_id,
        team_id=team_id or CONSOLE_TEAM,
        bot_user_id=CONSOLE_BOT_USER,
        bot_id=CONSOLE_BOT_ID,
        bot_token="xoxb-console",
    )

"""`delistbot serve`: the Slack bot, over Socket Mode, HTTP, or the console.

Mode, unless `--socket` / `--http` / `--console` says otherwise:
  SLACK_APP_TOKEN set        -> Socket Mode (slack_sdk's built-in client; no public URL needed)
  SLACK_SIGNING_SECRET set   -> HTTP on --port / DELISTBOT_PORT, path /slack/events, served by
                                waitress (a production WSGI server, pure Python)
  neither                    -> the console: the same app in this terminal; with input piped
                                in, that input is the script; with no input at all (or
                                `--demo`), it first plays the repo's sample bounce through the
                                bot on a scratch database, then reads the terminal (or the
                                piped script) on that same database
Slack modes also need SLACK_BOT_TOKEN.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

from bot.cli import EXIT_OK, EXIT_USAGE
from bot.config import Settings, load_settings
from bot.core.errors import ConfigError
from bot.slack.demo import demo_script

log = logging.getLogger("delistbot.serve")

DEMO_BOUNCE = Path("examples/seed-bounce.txt")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="run the Slack bot (Socket Mode, HTTP, or the console without credentials)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--socket", dest="mode", action="store_const", const="socket",
                      help="Socket Mode (needs SLACK_APP_TOKEN and SLACK_BOT_TOKEN)")
    mode.add_argument("--http", dest="mode", action="store_const", const="http",
                      help="HTTP mode (needs SLACK_SIGNING_SECRET and SLACK_BOT_TOKEN)")
    mode.add_argument("--console", dest="mode", action="store_const", const="console",
                      help="drive the bot from this terminal, without Slack")
    parser.add_argument("--port", type=int, help="HTTP port (default DELISTBOT_PORT or 3000)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="HTTP address to bind (default 127.0.0.1; put a TLS proxy in front)")
    parser.add_argument("--demo", nargs="?", const=str(DEMO_BOUNCE), metavar="BOUNCE",
                        help="console only: play a short demo with this bounce "
                        f"(default {DEMO_BOUNCE}) on a scratch database, then go on "
                        "reading input there (a terminal stays open until :quit)")
    parser.set_defaults(func=run)


def choose_mode(requested: str | None, settings: Settings) -> str:
    """The transport to run, or ConfigError naming what is missing."""
    mode = requested or (
        "socket" if settings.slack_app_token
        else "http" if settings.slack_signing_secret
        else "console"
    )
    missing = []
    if mode in {"socket", "http"} and not settings.slack_bot_token:
        missing.append("SLACK_BOT_TOKEN")
    if mode == "socket" and not settings.slack_app_token:
        missing.append("SLACK_APP_TOKEN")
    if mode == "http" and not settings.slack_signing_secret:
        missing.append("SLACK_SIGNING_SECRET")
    if missing:
        raise ConfigError(f"serve --{mode} needs {' and '.join(missing)} in the environment")
    return mode


def run(args: argparse.Namespace) -> int:
    try:
        settings = load_settings()
        mode = choose_mode(args.mode, settings)
        if args.demo and mode != "console":
            raise ConfigError("--demo runs in the console only")
    except ConfigError as exc:
        print(f"delistbot serve: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if mode == "console":
        if args.mode is None and settings.slack_bot_token:
            # A half-configured Slack setup must not pass for a working one.
            print("delistbot serve: SLACK_BOT_TOKEN is set but neither SLACK_APP_TOKEN (Socket "
                  "Mode) nor SLACK_SIGNING_SECRET (HTTP): running the console, not connecting "
                  "to Slack", file=sys.stderr)
        # The console's output is the conversation; only real problems go to stderr.
        logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
        logging.getLogger("slack_bolt").setLevel(logging.ERROR)
        return _run_console(settings, args.demo)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    return _run_slack(settings, mode, args)


def _run_console(settings: Settings, demo: str | None) -> int:
    interactive = sys.stdin.isatty()
    script = "" if interactive or sys.stdin.closed else sys.stdin.read()
    if not demo and not interactive and not script.strip() and DEMO_BOUNCE.is_file():
        demo = str(DEMO_BOUNCE)  # no input at all (CI, `make run < /dev/null`): show the demo
    # After the demo (if any): the terminal, or the piped script.
    rest: Iterator[str] = iter(sys.stdin) if interactive else iter(script.splitlines(True))
    if not demo:
        if interactive:
            print(f"delistbot console: {_HINT}")
        return _console(settings, iter(()), rest, interactive)
    try:
        lines = iter(demo_script(Path(demo)))
    except OSError as exc:
        print(f"delistbot serve --demo: cannot read {demo}: {exc.strerror}", file=sys.stderr)
        return EXIT_USAGE
    print(f"delistbot console demo: {demo} pasted into #console, then its ticket's life over "
          "a day or so (a scratch database; your own is not touched).")
    with tempfile.TemporaryDirectory(prefix="delistbot-demo-") as scratch:
        return _console(replace(settings, db_path=Path(scratch) / "demo.db"), lines, rest,
                        interactive)


_HINT = ("type /delist help, paste a bounce (end with a line '.'), :click N to press a button, "
         ":later 1d to move the clock on, :quit to leave.")


def _console(
    settings: Settings, demo: Iterator[str], rest: Iterator[str], interactive: bool
) -> int:
    from bot.service.tickets import utc_now
    from bot.slack.console import Console, ConsoleClock, ConsoleSurface
    from bot.slack.ports import DeferredRunner
    from bot.slack.wiring import build

    runner = DeferredRunner()
    surface = ConsoleSurface(sys.stdout)
    clock = ConsoleClock(utc_now)
    bot = build(settings, runner, surface, clock)
    console = Console(bot.app, surface, runner,
                      tick=lambda: bot.replies.flush() + bot.pinger.tick(),
                      thread_of=bot.handlers.flows.thread_of, clock=clock)
    if not console.run(demo):
        return EXIT_OK  # the demo said :quit
    if interactive:
        if surface.buttons:
            print(f"\nYour turn, on the same scratch database: {_HINT}")
        console.run(rest, prompt=lambda: print("\n# ", end="", flush=True))
    else:
        console.run(rest)
    return EXIT_OK


def _run_slack(settings: Settings, mode: str, args: argparse.Namespace) -> int:
    import time

    from bot.slack.ports import ThreadRunner
    from bot.slack.wiring import build, warm_up

    runner = ThreadRunner()
    bot = build(settings, runner)
    started = time.monotonic()
    warm_up(bot.handlers.services)
    log.info("diagnosis engine ready (%.1f s)", time.monotonic() - started)
    bot.pinger.start()
    bot.replies.start()
    if mode == "socket":
        from slack_bolt.adapter.socket_mode import SocketModeHandler

        log.info("Socket Mode: connecting to Slack")
        SocketModeHandler(bot.app, settings.slack_app_token).start()  # type: ignore[no-untyped-call]
        return EXIT_OK
    import waitress  # type: ignore[import-untyped]  # ships no type hints
    from slack_bolt.adapter.wsgi import SlackRequestHandler

    port = args.port or settings.port
    log.info("HTTP mode: listening on http://%s:%d/slack/events", args.host, port)
    waitress.serve(SlackRequestHandler(bot.app), host=args.host, port=port,
                   threads=16, ident="delistbot")
    return EXIT_OK

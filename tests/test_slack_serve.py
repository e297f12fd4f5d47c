"""`delistbot serve` picks its transport from the environment, as the README says: SLACK_APP_TOKEN
means Socket Mode, else SLACK_SIGNING_SECRET means HTTP (on DELISTBOT_PORT, path /slack/events,
served by waitress), else the console; `--socket` / `--http` / `--console` force one."""

from __future__ import annotations

import subprocess
import sys
import urllib.error
import urllib.request
from dataclasses import replace
from pathlib import Path

import pytest

from bot.cli.serve import choose_mode
from bot.config import Settings
from bot.core.errors import ConfigError
from tests.fakeslack import (
    APP_TOKEN,
    SIGNING_SECRET,
    FakeSlack,
    bot_env,
    command_body,
    free_port,
    post,
    sign,
    wait_for_port,
)

ROOT = Path(__file__).resolve().parents[1]
FORM = "application/x-www-form-urlencoded"
NONE = Settings()
BOT = replace(NONE, slack_bot_token="xoxb-1")
BOTH = replace(BOT, slack_app_token="xapp-1", slack_signing_secret="s")


@pytest.mark.parametrize(
    ("settings", "flag", "mode"),
    [
        (NONE, None, "console"),
        (BOT, None, "console"),  # a bot token alone reaches Slack by neither transport
        (replace(BOT, slack_signing_secret="s"), None, "http"),
        (replace(BOT, slack_app_token="xapp-1"), None, "socket"),
        (BOTH, None, "socket"),  # no public URL needed: Socket Mode wins
        (BOTH, "http", "http"),
        (BOTH, "console", "console"),
    ],
)
def test_the_transport_follows_the_environment_unless_a_flag_names_one(settings, flag, mode):
    assert choose_mode(flag, settings) == mode


@pytest.mark.parametrize(
    ("settings", "flag", "missing"),
    [
        (replace(NONE, slack_app_token="xapp-1"), None, "SLACK_BOT_TOKEN"),
        (replace(BOT, slack_signing_secret="s"), "socket", "SLACK_APP_TOKEN"),
        (replace(BOT, slack_app_token="xapp-1"), "http", "SLACK_SIGNING_SECRET"),
    ],
)
def test_a_transport_without_its_credentials_names_what_is_missing(settings, flag, missing):
    with pytest.raises(ConfigError, match=missing):
        choose_mode(flag, settings)


def test_a_signing_secret_alone_serves_http_on_delistbot_port_with_waitress(tmp_path):
    fake = FakeSlack().start()
    port = free_port()
    log = (tmp_path / "bot.log").open("w+")
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot", "serve"],  # no flag, no --port
        env=bot_env(fake, tmp_path, SLACK_SIGNING_SECRET=SIGNING_SECRET,
                    DELISTBOT_PORT=str(port)),
        stdout=log, stderr=subprocess.STDOUT, cwd=ROOT,
    )
    try:
        wait_for_port(port, proc)
        body = command_body("help", fake)
        status, answer = post(port, body, FORM, sign(body))
        assert status == 200 and "/delist 203.0.113.44" in answer
        # Only /slack/events is Slack's; the server is waitress, not Bolt's development server.
        request = urllib.request.Request(f"http://127.0.0.1:{port}/", data=body.encode(),
                                         headers={"Content-Type": FORM, **sign(body)})
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=10)
        assert refused.value.code == 404
        assert refused.value.headers["Server"] == "delistbot"
        assert not fake.of("apps.connections.open")  # not Socket Mode
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        fake.stop()
    log.seek(0)
    text = log.read()
    assert f"HTTP mode: listening on http://127.0.0.1:{port}/slack/events" in text
    assert "Traceback" not in text


def test_an_app_token_picks_socket_mode_even_beside_a_signing_secret(tmp_path):
    fake = FakeSlack().start()
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot", "serve"],
        env=bot_env(fake, tmp_path, SLACK_APP_TOKEN=APP_TOKEN,
                    SLACK_SIGNING_SECRET=SIGNING_SECRET),
        stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, cwd=ROOT,
    )
    try:
        call = fake.wait_for("apps.connections.open", timeout=20)[0]
        assert call.auth == f"Bearer {APP_TOKEN}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        fake.stop()


def test_a_bot_token_alone_runs_the_console_and_says_why(tmp_path):
    fake = FakeSlack().start()
    try:
        result = subprocess.run([sys.executable, "-m", "bot", "serve"], input="/delist help\n",
                                text=True, capture_output=True, env=bot_env(fake, tmp_path),
                                cwd=ROOT, timeout=60)
    finally:
        fake.stop()
    assert result.returncode == 0
    assert "> /delist help" in result.stdout  # the console answered
    assert "neither SLACK_APP_TOKEN (Socket Mode) nor SLACK_SIGNING_SECRET (HTTP)" in (
        result.stderr)
    assert not fake.calls  # nothing was sent to Slack

"""Driving the real bot in the Slack tests (no tests here): a `delistbot serve --http` process
against the fake Slack, the requests Slack would send it, and ways to read what it posted.

The fake Slack itself is `tests/fakeslack.py`; its module-wide fixture `fake` is in
`tests/conftest.py`. Each test uses channels and IPs of its own, so that what one test leaves
behind (a ping falling due, a reply still queued) never answers another's waits.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.corpus import CORPUS
from tests.corpus import SEED as SEED_DIR
from tests.fakeslack import (
    SIGNING_SECRET,
    Call,
    FakeSlack,
    action_body,
    bot_env,
    free_port,
    post,
    sign,
    wait_for_port,
)

FORM = "application/x-www-form-urlencoded"
JSON = "application/json"
SEED = SEED_DIR / "qmail-microsoft-blocklist1.txt"
SEED_IP = "11.22.33.44"  # the IP the seed mails name


def need_corpus(*paths: Path) -> None:
    """Skip, saying why, when the shared corpus is not beside the checkout."""
    if not all(p.is_file() for p in (SEED, *paths)):
        pytest.skip(f"the shared corpus is not at {CORPUS} (../shared is absent)")


def seed(ip: str) -> str:
    """The seed bounce for another IP: each test gets its own ticket, untouched by the others."""
    return SEED.read_text().replace(SEED_IP, ip)


def reply(name: str, ip: str) -> str:
    """A provider's mail about `ip`, with provider ticket ids of its own (real ids are unique)."""
    own_id = ip.replace(".", "").ljust(10, "0")
    return (SEED_DIR / name).read_text().replace(SEED_IP, ip).replace("1234567890", own_id)


class Bot:
    """`delistbot serve --http` as a real process, its output in `<home>/bot.log`."""

    def __init__(self, fake: FakeSlack, tmp: Path, **env: str) -> None:
        self.fake, self.port = fake, free_port()
        self.log = (tmp / "bot.log").open("w+")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bot", "serve", "--http", "--port", str(self.port)],
            env=bot_env(fake, tmp, SLACK_SIGNING_SECRET=SIGNING_SECRET, **env),
            stdout=self.log, stderr=subprocess.STDOUT, cwd=Path(__file__).parents[1],
        )
        wait_for_port(self.port, self.proc)

    def send(self, body: str, ctype: str, **headers: str) -> tuple[int, str]:
        return post(self.port, body, ctype, {**sign(body), **headers})

    def stop(self) -> str:
        self.proc.terminate()
        self.proc.wait(timeout=10)
        self.log.seek(0)
        return self.log.read()

    def kill(self) -> None:
        """Die at once, as a crash would: nothing is finished or recorded."""
        self.proc.kill()
        self.proc.wait(timeout=10)


@contextlib.contextmanager
def running(fake: FakeSlack, home: Path, settings: str | None = None,
            **env: str) -> Iterator[Bot]:
    """A bot for the block (with `settings` as its delistbot.toml); stopped after it, and its log
    must hold no traceback."""
    if settings is not None:
        (home / "delistbot.toml").write_text(settings)
        env.setdefault("DELISTBOT_CONFIG", str(home / "delistbot.toml"))
    bot = Bot(fake, home, **env)
    try:
        yield bot
    finally:
        log = bot.stop()
    assert "Traceback" not in log, log


# ---------------------------------------------------------------- what Slack sends


def message(channel: str, ts: str, text: str, user: str = "U0ALICE", **extra: Any) -> dict:
    """A message event in a channel (`thread_ts=` for a reply in a thread)."""
    return {"type": "message", "channel": channel, "user": user, "text": text, "ts": ts,
            "channel_type": "channel", "event_ts": ts, **extra}


def emailed(channel: str, ts: str, file_id: str, name: str = "x", **extra: Any) -> dict:
    """The message Slack posts for a mail sent to a channel's e-mail address: its file is an email."""
    file = {"id": file_id, "filetype": "email", "mode": "email", "name": name}
    return {**message(channel, ts, "", user="USLACKBOT", subtype="file_share"), "bot_id": "B0EMAILAPP",
            "files": [file], **extra}


def thread_message(channel: str, thread_ts: str, ts: str, text: str) -> dict:
    return message(channel, ts, text, thread_ts=thread_ts)


def click(channel: str, action_id: str, value: str, user: str = "U0ALICE",
          block_id: str = "", message_ts: str | None = None, action_ts: str = "1.1") -> str:
    """The block_actions body of a button pressed under the message at `message_ts`."""
    payload: dict[str, Any] = {
        "type": "block_actions", "team": {"id": "T0FAKE"}, "user": {"id": user},
        "api_app_id": "A0FAKE", "trigger_id": "t", "channel": {"id": channel},
        "actions": [{"action_id": action_id, "block_id": block_id, "value": value,
                     "type": "button", "action_ts": action_ts}],
    }
    if message_ts:
        payload["container"] = {"type": "message", "channel_id": channel,
                                "message_ts": message_ts}
        payload["message"] = {"ts": message_ts, "type": "message"}
    return action_body(payload)


# ---------------------------------------------------------------- what the bot posted


def in_channel(channel: str, **match: object) -> Callable[[Call], bool]:
    def where(call: Call) -> bool:
        return call.args.get("channel") == channel and all(
            call.args.get(k) == v for k, v in match.items())
    return where


def shown(call: Call) -> str:
    return json.dumps(call.args.get("blocks")) + call.args.get("text", "")


def action_ids(call: Call) -> set[str]:
    return {e["action_id"] for b in call.args["blocks"] if b["type"] == "actions"
            for e in b["elements"]}


def button_value(call: Call) -> str:
    """The value of the first button of a posted message."""
    return str(next(e["value"] for b in call.args["blocks"] if b["type"] == "actions"
                    for e in b["elements"]))


def card_state(call: Call) -> str | None:
    """The state a posted or updated ticket card shows (its "State:" field), None if no card."""
    for block in call.args.get("blocks") or []:
        for field in block.get("fields") or []:
            if field["text"].startswith("*State:* "):
                return str(field["text"].removeprefix("*State:* "))
    return None


def posted_in(fake: FakeSlack, channel: str, text: str = "") -> list[dict]:
    """What the channel really holds (the fake's messages), whatever the bot heard back."""
    return [m for m in fake.messages if m["channel"] == channel and text in m["text"]]


def cards_in(fake: FakeSlack, channel: str) -> list[dict]:
    """The ticket cards the channel really holds, top-level."""
    return [m for m in posted_in(fake, channel) if "thread_ts" not in m
            and "request_sent" in json.dumps(m["blocks"])]

"""Socket Mode end to end: `delistbot serve` with SLACK_APP_TOKEN connects to the WebSocket URL the
(fake) apps.connections.open returns, acks each envelope and answers through the Web API."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.slack.demo import DEMO_ACK, DEMO_DELISTED
from tests.fakeslack import APP_TOKEN, FakeSlack, bot_env, event_body
from tests.slackbot import card_state

BOUNCE = Path(__file__).parents[1] / "examples" / "seed-bounce.txt"


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeSlack]:
    server = FakeSlack().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def bot(fake: FakeSlack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[subprocess.Popen]:
    tmp = tmp_path_factory.mktemp("socket")
    log = (tmp / "bot.log").open("w+")
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot", "serve"],  # no flag: SLACK_APP_TOKEN picks Socket Mode
        env=bot_env(fake, tmp, SLACK_APP_TOKEN=APP_TOKEN),
        stdout=log, stderr=subprocess.STDOUT, cwd=Path(__file__).parents[1],
    )
    try:
        fake.wait_for("apps.connections.open", timeout=20)
        yield proc
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.seek(0)
        text = log.read()
        assert "Traceback" not in text, text


def test_connects_with_the_app_token(bot, fake):
    call = fake.of("apps.connections.open")[0]
    assert call.auth == f"Bearer {APP_TOKEN}"


def test_slash_command_envelope_is_acked_with_the_answer(bot, fake):
    fake.send_envelope({
        "envelope_id": "env-help", "type": "slash_commands", "accepts_response_payload": True,
        "payload": {"command": "/delist", "text": "help", "channel_id": "C0SOCK",
                    "user_id": "U0ALICE", "team_id": "T0FAKE", "trigger_id": "t1",
                    "response_url": fake.response_url("sock")},
    })
    ack = fake.wait_for_ack("env-help")
    assert "/delist 203.0.113.44" in json.dumps(ack["payload"])


def test_modal_opens_from_a_socket_command(bot, fake):
    fake.send_envelope({
        "envelope_id": "env-modal", "type": "slash_commands", "accepts_response_payload": True,
        "payload": {"command": "/delist", "text": "", "channel_id": "C0SOCK",
                    "user_id": "U0ALICE", "team_id": "T0FAKE", "trigger_id": "trig-sock",
                    "response_url": fake.response_url("sock")},
    })
    fake.wait_for_ack("env-modal")
    call = fake.wait_for("views.open", where=lambda c: c.args["trigger_id"] == "trig-sock")[0]
    assert call.args["view"]["private_metadata"] == "C0SOCK"


def test_events_api_envelope_is_acked_and_handled_once(bot, fake):
    body = json.loads(event_body(
        {"type": "app_home_opened", "user": "U0SOCKHOME", "tab": "home", "event_ts": "1.1"},
        "Ev-sock-home",
    ))
    fake.send_envelope({"envelope_id": "env-ev-1", "type": "events_api", "payload": body,
                        "accepts_response_payload": False, "retry_attempt": 0})
    fake.send_envelope({"envelope_id": "env-ev-2", "type": "events_api", "payload": body,
                        "accepts_response_payload": False, "retry_attempt": 1,
                        "retry_reason": "timeout"})
    fake.wait_for_ack("env-ev-1")
    fake.wait_for_ack("env-ev-2")
    home = fake.wait_for("views.publish", where=lambda c: c.args["user_id"] == "U0SOCKHOME")
    assert len(home) == 1


def test_a_bounce_through_the_socket_opens_a_ticket_with_its_card(bot, fake):
    bounce = (Path(__file__).parents[1] / "examples" / "seed-bounce.txt").read_text()
    fake.send_envelope({
        "envelope_id": "env-bounce", "type": "slash_commands", "accepts_response_payload": True,
        "payload": {"command": "/delist", "text": bounce, "channel_id": "C0SOCKB",
                    "user_id": "U0ALICE", "team_id": "T0FAKE", "trigger_id": "t2",
                    "response_url": fake.response_url("sock")},
    })
    ack = fake.wait_for_ack("env-bounce")
    assert "Diagnosing" in json.dumps(ack)
    card = fake.wait_for("chat.postMessage", where=lambda c: c.args.get("channel") == "C0SOCKB"
                         and "thread_ts" not in c.args)[0]
    assert "request_sent" in json.dumps(card.args["blocks"])
    assert "203.0.113.44" in card.args["text"]


def open_over_socket(fake: FakeSlack, channel: str, ip: str) -> tuple[str, str]:
    """/delist <bounce> as a Socket Mode envelope: (ticket id, card ts)."""
    bounce = BOUNCE.read_text().replace("203.0.113.44", ip)
    fake.send_envelope({
        "envelope_id": f"env-open-{channel}", "type": "slash_commands",
        "accepts_response_payload": True,
        "payload": {"command": "/delist", "text": bounce, "channel_id": channel,
                    "user_id": "U0ALICE", "team_id": "T0FAKE", "trigger_id": "t3",
                    "response_url": fake.response_url("sock")},
    })
    fake.wait_for_ack(f"env-open-{channel}")
    card = fake.wait_for("chat.postMessage", where=lambda c: c.args.get("channel") == channel
                         and "thread_ts" not in c.args)[0]
    ts = next(m["ts"] for m in fake.messages if m["channel"] == channel and "thread_ts" not in m)
    fake.wait_for("chat.postMessage", where=lambda c: c.args.get("thread_ts") == ts)
    return card.args["text"].split(":")[0], ts


def test_a_card_button_and_a_provider_reply_over_the_socket_move_the_ticket(bot, fake):
    ticket, card_ts = open_over_socket(fake, "C0SOCKBTN", "85.12.0.1")
    fake.send_envelope({
        "envelope_id": "env-press", "type": "interactive", "accepts_response_payload": False,
        "payload": {
            "type": "block_actions", "team": {"id": "T0FAKE"}, "user": {"id": "U0BOB"},
            "api_app_id": "A0FAKE", "trigger_id": "t4", "channel": {"id": "C0SOCKBTN"},
            "container": {"type": "message", "channel_id": "C0SOCKBTN", "message_ts": card_ts},
            "message": {"ts": card_ts, "type": "message"},
            "actions": [{"action_id": "request_sent", "block_id": f"ticket:{ticket}",
                         "value": ticket, "type": "button", "action_ts": "1.1"}],
        },
    })
    fake.wait_for_ack("env-press")
    sent = fake.wait_for("chat.update", where=lambda c: c.args.get("ts") == card_ts)[0]
    assert card_state(sent) == "requested"
    fake.wait_for("chat.postMessage", where=lambda c: c.args.get("thread_ts") == card_ts
                  and "<@U0BOB> marked the request sent" in c.args.get("text", ""))
    # Microsoft's auto-reply pasted in the card's thread, delivered twice (Slack's retry).
    reply = json.loads(event_body(
        {"type": "message", "channel": "C0SOCKBTN", "user": "U0ALICE", "text": DEMO_ACK,
         "ts": "1700003000.000200", "thread_ts": card_ts, "channel_type": "channel",
         "event_ts": "1700003000.000200"}, "Ev-sock-reply"))
    for attempt in (0, 1):
        fake.send_envelope({"envelope_id": f"env-reply-{attempt}", "type": "events_api",
                            "payload": reply, "accepts_response_payload": False,
                            "retry_attempt": attempt, "retry_reason": "timeout" if attempt else ""})
        fake.wait_for_ack(f"env-reply-{attempt}")
    acked = fake.wait_for("chat.update", 2, where=lambda c: c.args.get("ts") == card_ts)[-1]
    assert card_state(acked) == "acknowledged"
    assert "SRX1234567890ID" in json.dumps(acked.args["blocks"])
    # The provider's confirmation, pasted later in the same thread, has been handled since:
    # the retried auto-reply had its chance to act, and was not handled twice.
    confirmation = json.loads(event_body(
        {"type": "message", "channel": "C0SOCKBTN", "user": "U0ALICE",
         "text": DEMO_DELISTED.format(ip="85.12.0.1"), "ts": "1700003000.000300",
         "thread_ts": card_ts, "channel_type": "channel", "event_ts": "1700003000.000300"},
        "Ev-sock-confirm"))
    fake.send_envelope({"envelope_id": "env-confirm", "type": "events_api",
                        "payload": confirmation, "accepts_response_payload": False})
    ping = fake.wait_for("chat.postMessage", where=lambda c: c.args.get("thread_ts") == card_ts
                         and "delisted, the provider confirmed it" in c.args.get("text", ""))[0]
    assert ping.args["reply_broadcast"] is True and ping.args["text"].startswith("<@U0ALICE> ")
    said = [c for c in fake.of("chat.postMessage", where=lambda c: c.args.get("thread_ts")
                               == card_ts) if "recognised as acknowledged" in c.args["text"]]
    assert len(said) == 1

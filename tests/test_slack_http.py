"""HTTP mode end to end: `delistbot serve --http` as a real process, a fake Slack on loopback,
requests signed exactly as Slack signs them."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest

from tests.fakeslack import FakeSlack, action_body, command_body, event_body, post, sign
from tests.slackbot import FORM, JSON, Bot, in_channel, running


@pytest.fixture(scope="module")
def bot(fake: FakeSlack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bot]:
    with running(fake, tmp_path_factory.mktemp("bot")) as bot:
        yield bot


def test_help_is_answered_in_the_ack(bot):
    status, body = bot.send(command_body("help", bot.fake), FORM)
    assert status == 200
    answer = json.loads(body)
    assert "/delist 203.0.113.44" in answer["text"] + json.dumps(answer["blocks"])


@pytest.mark.parametrize(
    ("text", "answer"),
    [
        ("lsit", "I do not know `/delist lsit`"),
        ("999.1.1.1", "'999.1.1.1' is not an IP address"),
        ("mail.example.com", "is a host name, not an IP address"),
    ],
)
def test_one_word_that_is_no_command_is_answered_in_the_ack(bot, fake, text, answer):
    status, body = bot.send(command_body(text, fake, channel="C0WORD"), FORM)
    assert status == 200
    assert answer in json.loads(body)["text"]


def test_an_unknown_ticket_is_answered_privately(bot, fake):
    for text in ("status DL-9999", "DL-9998"):
        status, _ = bot.send(command_body(text, fake, channel="C0NOTICKET"), FORM)
        assert status == 200
        ticket = text.split()[-1]
        said = fake.wait_for("response_url", where=lambda c, t=ticket: f"no ticket {t}" in
                             json.dumps(c.args))[0]
        assert said.args["response_type"] == "ephemeral"
    assert not fake.of("chat.postMessage", where=in_channel("C0NOTICKET"))
    assert not fake.of("chat.postMessage", where=in_channel("C0WORD"))


def test_delist_alone_opens_the_paste_form(bot, fake):
    status, _ = bot.send(command_body("", fake, channel="C0MODAL", trigger="trig-modal"), FORM)
    assert status == 200
    call = fake.wait_for("views.open", where=lambda c: c.args["trigger_id"] == "trig-modal")[0]
    view = call.args["view"]
    assert view["callback_id"] == "delist_paste"
    assert view["private_metadata"] == "C0MODAL"


def test_forged_signature_is_refused(bot):
    body = command_body("help", bot.fake)
    headers = sign(body, secret="not-the-secret")
    assert post(bot.port, body, FORM, headers)[0] == 401


def test_unsigned_request_is_refused(bot):
    assert post(bot.port, command_body("help", bot.fake), FORM, {})[0] == 401


def test_stale_timestamp_is_refused_even_with_a_valid_signature(bot):
    body = command_body("help", bot.fake)
    headers = sign(body, timestamp=int(time.time()) - 6 * 60)
    assert post(bot.port, body, FORM, headers)[0] == 401


def test_body_changed_after_signing_is_refused(bot):
    body = command_body("help", bot.fake)
    headers = sign(body)
    assert post(bot.port, body.replace("help", "list"), FORM, headers)[0] == 401


def test_url_verification_challenge_is_answered(bot):
    body = json.dumps({"token": "t", "challenge": "abc123", "type": "url_verification"})
    status, answer = bot.send(body, JSON)
    assert status == 200
    assert json.loads(answer)["challenge"] == "abc123"


@pytest.mark.parametrize(
    "event",
    [
        {"type": "reaction_added", "user": "U1", "reaction": "eyes",
         "item": {"type": "message", "channel": "C1", "ts": "1.1"}},
        {"type": "message", "subtype": "message_changed", "channel": "C0EDIT", "hidden": True,
         "message": {"type": "message", "text": "edited", "ts": "1.2"}, "ts": "1.3"},
        {"type": "message", "subtype": "channel_join", "channel": "C0JOIN", "user": "U1",
         "text": "<@U1> has joined the channel", "ts": "1.4"},
        {"type": "member_joined_channel", "user": "U1", "channel": "C1"},
    ],
)
def test_events_we_do_not_handle_get_200_and_no_reply(bot, fake, event):
    status, _ = bot.send(event_body(event, f"Ev-unhandled-{event['type']}-{event.get('ts')}"),
                         JSON)
    assert status == 200
    assert not fake.of("chat.postMessage", where=in_channel(event.get("channel", "C1")))


def test_unknown_button_is_acknowledged(bot):
    payload = {"type": "block_actions", "team": {"id": "T0FAKE"}, "user": {"id": "U0ALICE"},
               "api_app_id": "A0FAKE", "trigger_id": "t", "channel": {"id": "C0X"},
               "actions": [{"action_id": "something_else", "block_id": "b", "value": "v",
                            "type": "button", "action_ts": "1.1"}]}
    assert bot.send(action_body(payload), FORM)[0] == 200


def test_app_home_is_published_for_the_user(bot, fake):
    event = {"type": "app_home_opened", "user": "U0HOME", "channel": "D1", "tab": "home",
             "event_ts": "1.5"}
    assert bot.send(event_body(event, "Ev-home-1"), JSON)[0] == 200
    call = fake.wait_for("views.publish", where=lambda c: c.args["user_id"] == "U0HOME")[0]
    assert call.args["view"]["type"] == "home"


def home_event(user: str) -> dict[str, str]:
    return {"type": "app_home_opened", "user": user, "channel": "D1", "tab": "home",
            "event_ts": "1.6"}


def for_user(user: str):
    return lambda call: call.args.get("user_id") == user


def test_slack_retry_of_a_delivery_does_not_repeat_the_work(bot, fake):
    body = event_body(home_event("U0RETRY"), "Ev-retry-1")
    assert bot.send(body, JSON)[0] == 200
    fake.wait_for("views.publish", where=for_user("U0RETRY"))
    status, _ = bot.send(body, JSON, **{"X-Slack-Retry-Num": "1",
                                        "X-Slack-Retry-Reason": "http_timeout"})
    assert status == 200
    # A later, different event has been handled, so the retry had its chance to act.
    assert bot.send(event_body(home_event("U0AFTER"), "Ev-retry-sentinel"), JSON)[0] == 200
    fake.wait_for("views.publish", where=for_user("U0AFTER"))
    assert len(fake.of("views.publish", where=for_user("U0RETRY"))) == 1


def test_a_delivery_replayed_after_a_restart_is_not_handled_again(fake, tmp_path):
    body = event_body(home_event("U0RESTART"), "Ev-restart-1")
    first = Bot(fake, tmp_path)
    try:
        assert first.send(body, JSON)[0] == 200
        fake.wait_for("views.publish", where=for_user("U0RESTART"))
    finally:
        first.stop()
    second = Bot(fake, tmp_path)  # same DELISTBOT_DB
    try:
        assert second.send(body, JSON, **{"X-Slack-Retry-Num": "2"})[0] == 200
        assert second.send(event_body(home_event("U0AFTER2"), "Ev-restart-2"), JSON)[0] == 200
        fake.wait_for("views.publish", where=for_user("U0AFTER2"))
    finally:
        log = second.stop()
    assert len(fake.of("views.publish", where=for_user("U0RESTART"))) == 1
    assert "dropping repeated delivery of Ev-restart-1" in log


@pytest.mark.parametrize("status", [429, 500])
def test_rate_limit_and_server_errors_from_slack_are_retried(bot, fake, status):
    user = f"U0FAIL{status}"
    fake.fail_next("views.publish", status, where=lambda a: a.get("user_id") == user)
    assert bot.send(event_body(home_event(user), f"Ev-fail-{status}"), JSON)[0] == 200
    calls = fake.wait_for("views.publish", count=2, where=for_user(user), timeout=15)
    if status == 429:  # the fake says Retry-After: 1; retrying sooner would be refused again
        assert calls[1].at - calls[0].at >= 1.0

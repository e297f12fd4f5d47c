"""Slack's Web API down when a bounce arrives: the diagnosis goes out later, once.

Each test has its own fake Slack, so an outage there touches no other test's traffic.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakeslack import Call, FakeSlack, command_body, event_body
from tests.slackbot import (
    FORM,
    JSON,
    SEED_DIR,
    Bot,
    cards_in,
    click,
    message,
    need_corpus,
    running,
    seed,
)

SETTINGS = '[slack]\nping_interval = "0.5s"\nauto_open = ["C0AUTODOWN"]\n'


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    need_corpus()
    server = FakeSlack().start()
    yield server
    server.stop()


def start(fake: FakeSlack, home: Path) -> Bot:
    (home / "delistbot.toml").write_text(SETTINGS)
    return Bot(fake, home, DELISTBOT_CONFIG=str(home / "delistbot.toml"))


def bounce_event(channel: str, ts: str, ip: str, event_id: str) -> str:
    return event_body(message(channel, ts, seed(ip)), event_id)


def replies(fake: FakeSlack, thread_ts: str, ok: bool) -> list[Call]:
    return fake.of("chat.postMessage", where=lambda c: c.ok is ok
                   and c.args.get("thread_ts") == thread_ts)


def test_a_diagnosis_slack_refused_goes_out_when_slack_is_back_once(fake, tmp_path):
    with running(fake, tmp_path, SETTINGS) as bot:
        fake.down("chat.postMessage")
        assert bot.send(bounce_event("C0DOWN", "1700002000.000100", "11.24.0.1", "Ev-down-1"),
                        JSON)[0] == 200
        # The client's own retries and at least one pass of the retry loop are refused.
        fake.wait_for("chat.postMessage", 6, timeout=30,
                      where=lambda c: not c.ok and c.args.get("channel") == "C0DOWN")
        fake.up("chat.postMessage")
        posted = fake.wait_for("chat.postMessage", timeout=30, where=lambda c: c.ok
                               and c.args.get("thread_ts") == "1700002000.000100")[0]
        assert "11.24.0.1" in posted.args["text"]
        # Another bounce answered since: the loop has had further passes, none posted it again.
        assert bot.send(bounce_event("C0DOWN", "1700002000.000200", "11.24.0.2", "Ev-down-2"),
                        JSON)[0] == 200
        fake.wait_for("chat.postMessage", where=lambda c: c.ok
                      and c.args.get("thread_ts") == "1700002000.000200")
    assert len(replies(fake, "1700002000.000100", ok=True)) == 1


def test_a_tickets_card_and_story_wait_out_an_outage_and_its_thread_still_works(fake, tmp_path):
    with running(fake, tmp_path, SETTINGS) as bot:
        fake.down("chat.postMessage")
        bounce = seed("11.24.3.1")
        assert bot.send(command_body(bounce, fake, channel="C0DOWNCARD"), FORM)[0] == 200
        fake.wait_for("chat.postMessage", 3, timeout=30,
                      where=lambda c: not c.ok and c.args.get("channel") == "C0DOWNCARD")
        fake.up("chat.postMessage")
        card = fake.wait_for("chat.postMessage", timeout=30, where=lambda c: c.ok
                             and c.args.get("channel") == "C0DOWNCARD"
                             and "thread_ts" not in c.args)[0]
        ticket = card.args["text"].split(":")[0]
        card_ts = next(m["ts"] for m in fake.messages if m["channel"] == "C0DOWNCARD")
        story = fake.wait_for("chat.postMessage", 3, timeout=30, where=lambda c: c.ok
                              and c.args.get("thread_ts") == card_ts)
        assert "Draft request" in story[-1].args["text"]
        # The card's thread is the ticket's: a provider's answer there moves it.
        answer = (SEED_DIR / "microsoft-autoreply.txt").read_text()
        event = {"type": "message", "channel": "C0DOWNCARD", "user": "U0ALICE", "text": answer,
                 "ts": "1700002300.000200", "thread_ts": card_ts, "channel_type": "channel",
                 "event_ts": "1700002300.000200"}
        assert bot.send(event_body(event, "Ev-downcard-1"), JSON)[0] == 200
        fake.wait_for("chat.postMessage", timeout=30, where=lambda c: c.ok
                      and c.args.get("thread_ts") == card_ts and "acknowledged" in c.args["text"])
    cards = fake.of("chat.postMessage", where=lambda c: c.ok
                    and c.args.get("channel") == "C0DOWNCARD" and "thread_ts" not in c.args)
    assert len(cards) == 1 and ticket.startswith("DL-")


def test_a_diagnosis_queued_when_the_bot_stopped_goes_out_after_the_restart(fake, tmp_path):
    first = start(fake, tmp_path)
    try:
        fake.down("chat.postMessage")
        assert first.send(bounce_event("C0DOWN2", "1700002100.000100", "11.24.1.1",
                                       "Ev-down2-1"), JSON)[0] == 200
        fake.wait_for("chat.postMessage", 3, timeout=30,
                      where=lambda c: not c.ok and c.args.get("channel") == "C0DOWN2")
    finally:
        first.stop()
    fake.up("chat.postMessage")
    with running(fake, tmp_path, SETTINGS) as second:  # same database
        posted = fake.wait_for("chat.postMessage", timeout=30, where=lambda c: c.ok
                               and c.args.get("thread_ts") == "1700002100.000100")[0]
        assert "11.24.1.1" in posted.args["text"]
        # Slack retrying the delivery after the restart does not bring a second answer.
        assert second.send(bounce_event("C0DOWN2", "1700002100.000100", "11.24.1.1",
                                        "Ev-down2-1"), JSON, **{"X-Slack-Retry-Num": "1"})[0] == 200
        assert second.send(bounce_event("C0DOWN2", "1700002100.000200", "11.24.1.2",
                                        "Ev-down2-2"), JSON)[0] == 200
        fake.wait_for("chat.postMessage", where=lambda c: c.ok
                      and c.args.get("thread_ts") == "1700002100.000200")
    assert len(replies(fake, "1700002100.000100", ok=True)) == 1


def test_a_diagnosis_that_reached_slack_before_a_crash_is_not_posted_again(fake, tmp_path):
    """The bot died after Slack took the message but before it was marked sent."""
    first = start(fake, tmp_path)
    try:
        assert first.send(bounce_event("C0CRASH", "1700002200.000100", "11.24.2.1",
                                       "Ev-crash-1"), JSON)[0] == 200
        fake.wait_for("chat.postMessage", where=lambda c: c.ok
                      and c.args.get("thread_ts") == "1700002200.000100")
    finally:
        first.stop()
    _forget_delivery(tmp_path / "delistbot.db", "1700002200.000100")
    with running(fake, tmp_path, SETTINGS) as second:
        # The restarted bot looks in the thread, finds the reply by its key, and moves on.
        fake.wait_for("conversations.replies", timeout=30,
                      where=lambda c: c.args.get("ts") == "1700002200.000100")
        assert second.send(bounce_event("C0CRASH", "1700002200.000200", "11.24.2.2",
                                        "Ev-crash-2"), JSON)[0] == 200
        fake.wait_for("chat.postMessage", where=lambda c: c.ok
                      and c.args.get("thread_ts") == "1700002200.000200")
    assert len(replies(fake, "1700002200.000100", ok=True)) == 1
    assert "reached Slack on an earlier attempt" in (tmp_path / "bot.log").read_text()


def _forget_delivery(db: Path, thread_ts: str) -> None:
    """What the database holds if the process died between Slack's answer and marking it sent."""
    import sqlite3

    with sqlite3.connect(db) as conn:
        changed = conn.execute(
            "UPDATE slack_outbox SET sent_at = NULL, sent_ts = NULL WHERE thread_ts = ?",
            [thread_ts]).rowcount
    assert changed == 1


def test_a_second_bounce_while_the_card_waits_for_slack_brings_no_second_card(fake, tmp_path):
    with running(fake, tmp_path, SETTINGS) as bot:
        fake.down("chat.postMessage")
        for n in (1, 2):  # the same IP and list twice, in a channel that opens tickets itself
            assert bot.send(bounce_event("C0AUTODOWN", f"1700002400.00010{n}", "11.24.4.1",
                                         f"Ev-autodown-{n}"), JSON)[0] == 200
        fake.wait_for("chat.postMessage", 6, timeout=30,
                      where=lambda c: not c.ok and c.args.get("channel") == "C0AUTODOWN")
        fake.up("chat.postMessage")
        # Whichever came second is told it joins the first one's ticket, in its own thread.
        same = fake.wait_for("chat.postMessage", timeout=30, where=lambda c: c.ok
                             and c.args.get("channel") == "C0AUTODOWN"
                             and "Same IP and list as DL-" in json.dumps(c.args["blocks"]))[0]
        card = fake.wait_for("chat.postMessage", timeout=30, where=lambda c: c.ok
                             and c.args.get("channel") == "C0AUTODOWN"
                             and "request_sent" in json.dumps(c.args.get("blocks")))[0]
        assert {same.args["thread_ts"], card.args["thread_ts"]} == {
            "1700002400.000101", "1700002400.000102"}
        fake.wait_for("chat.postMessage", timeout=30, where=lambda c: c.ok
                      and c.args.get("thread_ts") == card.args["thread_ts"]
                      and "Draft request" in c.args.get("text", ""))
    cards = [c for c in fake.of("chat.postMessage", where=lambda c: c.ok
                                and c.args.get("channel") == "C0AUTODOWN")
             if "request_sent" in json.dumps(c.args.get("blocks"))]
    assert len(cards) == 1


def test_the_same_bounce_given_to_delist_twice_in_an_outage_gets_one_card(fake, tmp_path):
    bounce = seed("11.24.5.1")
    with running(fake, tmp_path, SETTINGS) as bot:
        fake.down("chat.postMessage")
        assert bot.send(command_body(bounce, fake, channel="C0TWICEDOWN"), FORM)[0] == 200
        fake.wait_for("chat.postMessage", timeout=30,  # the card is queued
                      where=lambda c: not c.ok and c.args.get("channel") == "C0TWICEDOWN")
        assert bot.send(command_body(bounce, fake, channel="C0TWICEDOWN"), FORM)[0] == 200
        fake.wait_for("chat.postMessage", 6, timeout=30,
                      where=lambda c: not c.ok and c.args.get("channel") == "C0TWICEDOWN")
        fake.up("chat.postMessage")
        waiting = fake.wait_for("chat.postMessage", timeout=30, where=lambda c: c.ok
                                and "its card is waiting for Slack" in json.dumps(c.args["blocks"]))
        assert waiting[0].args["channel"] == "C0TWICEDOWN"
        fake.wait_for("chat.postMessage", timeout=30, where=lambda c: c.ok
                      and c.args.get("channel") == "C0TWICEDOWN"
                      and "request_sent" in json.dumps(c.args.get("blocks")))
        fake.wait_for("chat.postMessage", timeout=30, where=lambda c: c.ok
                      and "Draft request" in c.args.get("text", "")
                      and c.args.get("channel") == "C0TWICEDOWN")
    cards = [c for c in fake.of("chat.postMessage", where=lambda c: c.ok
                                and c.args.get("channel") == "C0TWICEDOWN")
             if "request_sent" in json.dumps(c.args.get("blocks"))]
    assert len(cards) == 1


def card_calls(fake: FakeSlack, channel: str) -> list[Call]:
    return [c for c in fake.of("chat.postMessage", where=lambda c: c.args.get("channel") == channel
                               and "thread_ts" not in c.args)
            if "request_sent" in json.dumps(c.args.get("blocks"))]


def test_a_500_after_slack_posted_the_card_brings_no_second_card(fake, tmp_path):
    bounce = seed("11.24.6.1")
    with running(fake, tmp_path, SETTINGS) as bot:
        fake.fail_next("chat.postMessage", 500, posted=True)  # the card: posted, answer lost
        assert bot.send(command_body(bounce, fake, channel="C0LOST500"), FORM)[0] == 200
        fake.wait_for("chat.postMessage", where=lambda c: not c.ok
                      and c.args.get("channel") == "C0LOST500")
        card_ts = cards_in(fake, "C0LOST500")[0]["ts"]
        story = fake.wait_for("chat.postMessage", 3, timeout=30, where=lambda c: c.ok
                              and c.args.get("thread_ts") == card_ts)
        assert "Draft request" in story[-1].args["text"]
    assert len(cards_in(fake, "C0LOST500")) == 1
    assert len(card_calls(fake, "C0LOST500")) == 1  # found by its key: never posted again
    assert fake.of("conversations.history", where=lambda c: c.args["channel"] == "C0LOST500")


def test_a_500_after_slack_posted_a_diagnosis_brings_no_second_one(fake, tmp_path):
    with running(fake, tmp_path, SETTINGS) as bot:
        fake.fail_next("chat.postMessage", 500, posted=True)  # posted, and the answer lost
        assert bot.send(bounce_event("C0LOST500D", "1700002600.000100", "11.24.9.1",
                                     "Ev-lost500-1"), JSON)[0] == 200
        fake.wait_for("conversations.replies", timeout=30,
                      where=lambda c: c.args.get("ts") == "1700002600.000100")
        # Another bounce answered since: the retry loop has moved on.
        assert bot.send(bounce_event("C0LOST500D", "1700002600.000200", "11.24.9.2",
                                     "Ev-lost500-2"), JSON)[0] == 200
        fake.wait_for("chat.postMessage", where=lambda c: c.ok
                      and c.args.get("thread_ts") == "1700002600.000200")
    assert len(replies(fake, "1700002600.000100", ok=False)) == 1  # no blind retry by the client
    assert not replies(fake, "1700002600.000100", ok=True)
    assert len([m for m in fake.messages if m.get("thread_ts") == "1700002600.000100"]) == 1


@pytest.mark.parametrize("posted", [True, False], ids=["slack-posted-it", "slack-never-got-it"])
def test_a_bot_killed_while_posting_a_card_neither_doubles_nor_loses_it_or_its_story(
        fake, tmp_path, posted):
    channel = "C0CARDKILL"
    bounce = seed("11.24.7.1")
    fake.hang_next("chat.postMessage", posted=posted, where=lambda a: a.get("channel") == channel
                   and not a.get("thread_ts"))
    first = start(fake, tmp_path)
    try:
        assert first.send(command_body(bounce, fake, channel=channel), FORM)[0] == 200
        fake.wait_for("chat.postMessage", where=lambda c: c.args.get("channel") == channel)
    finally:
        first.kill()  # the card is on its way to Slack, and the bot dies before hearing back
    fake.release_hung()
    with running(fake, tmp_path, SETTINGS) as second:
        story = fake.wait_for("chat.postMessage", 3, timeout=30, where=lambda c: c.ok
                              and c.args.get("channel") == channel and c.args.get("thread_ts"))
        [card] = cards_in(fake, channel)
        assert {c.args["thread_ts"] for c in story} == {card["ts"]}
        assert "11.24.7.1" in story[0].args["text"]  # the diagnosis, then the rest in order
        assert "DNS picture for 11.24.7.1" in json.dumps(story[1].args["blocks"])
        assert "Draft request" in story[2].args["text"]
        # The card's thread is the ticket's: a provider's answer there moves it.
        answer = (SEED_DIR / "microsoft-autoreply.txt").read_text()
        event = {"type": "message", "channel": channel, "user": "U0ALICE", "text": answer,
                 "ts": "1700002500.000200", "thread_ts": card["ts"], "channel_type": "channel",
                 "event_ts": "1700002500.000200"}
        assert second.send(event_body(event, "Ev-cardkill-1"), JSON)[0] == 200
        fake.wait_for("chat.update", timeout=30, where=lambda c: c.ok
                      and c.args.get("ts") == card["ts"] and "acknowledged" in c.args["text"])
    assert len(cards_in(fake, channel)) == 1
    assert len(card_calls(fake, channel)) == (1 if posted else 2)


def test_a_card_update_after_a_button_waits_out_an_outage(fake, tmp_path):
    bounce = seed("11.24.8.1")
    with running(fake, tmp_path, SETTINGS) as bot:
        assert bot.send(command_body(bounce, fake, channel="C0UPDOWN"), FORM)[0] == 200
        [card] = fake.wait_for("chat.postMessage", where=lambda c: c.ok
                               and c.args.get("channel") == "C0UPDOWN")
        ticket = card.args["text"].split(":")[0]
        card_ts = cards_in(fake, "C0UPDOWN")[0]["ts"]
        fake.wait_for("chat.postMessage", 3, timeout=30,
                      where=lambda c: c.ok and c.args.get("thread_ts") == card_ts)
        fake.down("chat.update")
        fake.down("chat.postMessage")
        assert bot.send(click("C0UPDOWN", "request_sent", ticket, block_id=f"ticket:{ticket}",
                              message_ts=card_ts), FORM)[0] == 200
        fake.wait_for("chat.update", 3, timeout=30, where=lambda c: not c.ok)
        fake.up("chat.update")
        fake.up("chat.postMessage")
        fake.wait_for("chat.update", timeout=30, where=lambda c: c.ok
                      and c.args.get("ts") == card_ts and "requested" in c.args["text"])
        said = fake.wait_for("chat.postMessage", timeout=30, where=lambda c: c.ok
                             and c.args.get("thread_ts") == card_ts
                             and "marked the request sent" in c.args.get("text", ""))
    assert len(said) == 1
    assert len(fake.of("chat.update", where=lambda c: c.ok)) == 1

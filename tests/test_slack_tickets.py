"""Tickets in Slack, end to end over HTTP mode: the card and its thread, buttons, provider
replies in the thread, pings from the outbox (overdue, confirmation), across a restart and
through Slack failures. Waits are shortened with a settings file, as an operator would."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakeslack import Call, FakeSlack, action_body, command_body, event_body
from tests.slackbot import (
    FORM,
    JSON,
    Bot,
    action_ids,
    button_value,
    card_state,
    click,
    emailed,
    in_channel,
    message,
    need_corpus,
    posted_in,
    reply,
    running,
    seed,
    shown,
    thread_message,
)

SETTINGS = """
[providers.microsoft_eop]
reminder = "1h"
overdue = "3s"
propagation = "1h"

[slack]
ping_interval = "0.5s"
auto_open = ["C0AUTO"]
channel = "C0FALLBACK"
"""


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    need_corpus()
    return tmp_path_factory.mktemp("tickets")


@pytest.fixture(scope="module")
def bot(fake, home) -> Iterator[Bot]:
    with running(fake, home, SETTINGS) as bot:
        yield bot


def own_bot(fake: FakeSlack, home: Path) -> Bot:
    """A bot on a database of its own (one bot per database: two would share its outboxes)."""
    (home / "delistbot.toml").write_text(SETTINGS)
    return Bot(fake, home, DELISTBOT_CONFIG=str(home / "delistbot.toml"))


def open_by_command(bot: Bot, fake: FakeSlack, channel: str, ip: str) -> tuple[str, str]:
    """/delist <bounce> in `channel`: (ticket id, card ts)."""
    assert bot.send(command_body(seed(ip), fake, channel=channel), FORM)[0] == 200
    card = fake.wait_for("chat.postMessage", where=lambda c: c.args.get("channel") == channel
                         and "thread_ts" not in c.args and ip in c.args.get("text", ""))[0]
    ticket = card.args["text"].split(":")[0]
    ts = next(m["ts"] for m in fake.messages if m["channel"] == channel
              and "thread_ts" not in m and ip in m["text"])
    # The diagnosis under the card: the bot has taken the card's thread for the ticket's (a
    # person cannot answer a card in the milliseconds between Slack's answer and that).
    fake.wait_for("chat.postMessage", where=in_channel(channel, thread_ts=ts))
    return ticket, ts


def press(bot: Bot, channel: str, action_id: str, ticket: str, card_ts: str,
          user: str = "U0ALICE") -> None:
    assert bot.send(click(channel, action_id, ticket, user=user, block_id=f"ticket:{ticket}",
                          message_ts=card_ts), FORM)[0] == 200


def choose(bot: Bot, channel: str, action_id: str, ticket: str, card_ts: str, value: str,
           user: str = "U0ALICE") -> None:
    """Pick an option of a card's menu (the snooze durations)."""
    payload = {
        "type": "block_actions", "team": {"id": "T0FAKE"}, "user": {"id": user},
        "api_app_id": "A0FAKE", "trigger_id": "t", "channel": {"id": channel},
        "container": {"type": "message", "channel_id": channel, "message_ts": card_ts},
        "message": {"ts": card_ts, "type": "message"},
        "actions": [{"action_id": action_id, "block_id": f"ticket:{ticket}",
                     "type": "static_select", "action_ts": "1.1",
                     "selected_option": {"text": {"type": "plain_text", "text": value},
                                         "value": value}}],
    }
    assert bot.send(action_body(payload), FORM)[0] == 200


def open_under(bot: Bot, fake: FakeSlack, channel: str, ts: str, ip: str) -> tuple[Call, str]:
    """A bounce pasted in `channel`, then the "Open ticket" under its diagnosis pressed (twice
    would be the same body): the diagnosis and the body of that press."""
    msg = message(channel, ts, seed(ip), user="U0BOB")
    assert bot.send(event_body(msg, f"Ev-{channel}-1"), JSON)[0] == 200
    diagnosis = fake.wait_for("chat.postMessage", where=in_channel(channel))[0]
    assert diagnosis.args["thread_ts"] == ts and "open_ticket" in action_ids(diagnosis)
    diag_ts = posted_in(fake, channel)[0]["ts"]
    return diagnosis, click(channel, "open_ticket", button_value(diagnosis), user="U0BOB",
                            block_id="diagnosis", message_ts=diag_ts, action_ts="1.2")


def pings(fake: FakeSlack, channel: str, text: str) -> list[Call]:
    return [c for c in fake.of("chat.postMessage", where=in_channel(channel))
            if c.ok and c.args.get("reply_broadcast") and text in c.args.get("text", "")]


def wait_ping(fake: FakeSlack, channel: str, text: str, timeout: float = 20) -> Call:
    return fake.wait_for("chat.postMessage", timeout=timeout, where=lambda c: c.ok
                         and c.args.get("channel") == channel and c.args.get("reply_broadcast")
                         and text in c.args.get("text", ""))[0]


def test_pasted_bounce_gets_a_card_and_its_story_in_the_cards_thread(bot, fake):
    ticket, card_ts = open_by_command(bot, fake, "C0CARD", "11.23.0.1")
    assert ticket.startswith("DL-")
    card = fake.of("chat.postMessage", where=in_channel("C0CARD"))[0]
    assert action_ids(card) == {"request_sent", "delisted", "snooze", "close"}
    assert "<@U0ALICE>" in shown(card)  # the one who pasted it owns it
    story = fake.wait_for("chat.postMessage", 3, where=in_channel("C0CARD", thread_ts=card_ts))
    assert "11.23.0.1" in shown(story[0])  # the diagnosis
    assert "DNS picture for 11.23.0.1" in shown(story[1])
    assert "Draft request" in shown(story[2])


def test_request_sent_updates_the_card_and_says_so_in_the_thread(bot, fake):
    ticket, card_ts = open_by_command(bot, fake, "C0SENT", "11.23.1.1")
    press(bot, "C0SENT", "request_sent", ticket, card_ts)
    update = fake.wait_for("chat.update", where=lambda c: c.args.get("ts") == card_ts)[0]
    assert card_state(update) == "requested"
    note = fake.wait_for("chat.postMessage", where=lambda c: c.args.get("thread_ts") == card_ts
                         and "marked the request sent" in c.args.get("text", ""))
    assert note


def test_a_move_the_ticket_cannot_make_is_explained_privately(bot, fake):
    ticket, card_ts = open_by_command(bot, fake, "C0ILLEGAL", "11.23.2.1")
    press(bot, "C0ILLEGAL", "close", ticket, card_ts)
    closed = fake.wait_for("chat.update", where=lambda c: c.args.get("ts") == card_ts)[0]
    assert card_state(closed) == "closed" and not any(b["type"] == "actions"
                                                 for b in closed.args["blocks"])
    fake.wait_for("chat.postMessage", where=lambda c: c.args.get("thread_ts") == card_ts
                  and "<@U0ALICE> closed it" in c.args.get("text", ""))
    press(bot, "C0ILLEGAL", "request_sent", ticket, card_ts)
    said = fake.wait_for("chat.postEphemeral", where=in_channel("C0ILLEGAL"))[0]
    assert ticket in said.args["text"] and said.args["user"] == "U0ALICE"


def test_provider_autoreply_in_the_thread_moves_the_ticket(bot, fake):
    ticket, card_ts = open_by_command(bot, fake, "C0ACK", "11.23.3.1")
    press(bot, "C0ACK", "request_sent", ticket, card_ts)
    fake.wait_for("chat.update", where=lambda c: c.args.get("ts") == card_ts)
    body = event_body(thread_message("C0ACK", card_ts, "1700001000.000200",
                                     reply("microsoft-autoreply.txt", "11.23.3.1")), "Ev-ack-1")
    assert bot.send(body, JSON)[0] == 200
    update = fake.wait_for("chat.update", 2, where=lambda c: c.args.get("ts") == card_ts)[-1]
    assert card_state(update) == "acknowledged" and "SRX1123310000ID" in shown(update)


def ticket_json(home: Path, ticket: str) -> dict:
    """`delistbot ticket ID --json`, run by the CLI on the bot's own database."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "DELISTBOT_"))}
    env["DELISTBOT_DB"] = str(home / "delistbot.db")
    out = subprocess.run([sys.executable, "-m", "bot", "ticket", ticket, "--json"], env=env,
                         capture_output=True, text=True, timeout=60, check=True)
    return dict(json.loads(out.stdout))


def events_of(home: Path, ticket: str) -> list[dict]:
    """The ticket's event log, read with the CLI from the bot's own database."""
    return list(ticket_json(home, ticket)["events"])


def test_a_plain_note_in_the_thread_moves_nothing(bot, fake, home):
    ticket, card_ts = open_by_command(bot, fake, "C0NOTE", "11.23.4.1")
    body = event_body(thread_message("C0NOTE", card_ts, "1700001100.000200",
                                     "called them, will retry tomorrow"), "Ev-note-1")
    assert bot.send(body, JSON)[0] == 200
    # Handled once the next thread message (a real reply) has been: the note changed nothing.
    body = event_body(thread_message("C0NOTE", card_ts, "1700001100.000300",
                                     reply("microsoft-autoreply.txt", "11.23.4.1")), "Ev-note-2")
    assert bot.send(body, JSON)[0] == 200
    updates = fake.wait_for("chat.update", where=lambda c: c.args.get("ts") == card_ts)
    assert len(updates) == 1 and card_state(updates[0]) == "acknowledged"
    notes = [e for e in events_of(home, ticket) if e["kind"] == "note"]
    assert [n["text"].strip() for n in notes] == ["called them, will retry tomorrow"]
    assert notes[0]["actor"] == "slack:U0ALICE"


def test_overdue_ping_in_the_thread_mentions_the_owner_once(bot, fake):
    ticket, card_ts = open_by_command(bot, fake, "C0LATE", "11.23.5.1")
    press(bot, "C0LATE", "request_sent", ticket, card_ts)
    ping = wait_ping(fake, "C0LATE", "longer than")
    assert ping.args["thread_ts"] == card_ts
    assert ping.args["text"].startswith("<@U0ALICE> ")
    assert ticket in ping.args["text"]
    assert "Next step:" in ping.args["text"] and "https://sender.office.com/" in ping.args["text"]
    # A later event in the same ticket has been handled: still one overdue ping.
    body = event_body(thread_message("C0LATE", card_ts, "1700001200.000200",
                                     reply("microsoft-delisted.txt", "11.23.5.1")), "Ev-late-2")
    assert bot.send(body, JSON)[0] == 200
    wait_ping(fake, "C0LATE", "delisted")
    assert len(pings(fake, "C0LATE", "longer than")) == 1


def test_confirmation_pasted_in_the_thread_pings_the_owner(bot, fake):
    _, card_ts = open_by_command(bot, fake, "C0DONE", "11.23.6.1")
    body = event_body(thread_message("C0DONE", card_ts, "1700001300.000200",
                                     reply("microsoft-delisted.txt", "11.23.6.1")), "Ev-done-1")
    assert bot.send(body, JSON)[0] == 200
    ping = wait_ping(fake, "C0DONE", "delisted, the provider confirmed it")
    assert ping.args["thread_ts"] == card_ts
    assert ping.args["text"].startswith("<@U0ALICE> ")
    update = fake.wait_for("chat.update", where=lambda c: c.args.get("ts") == card_ts)[-1]
    assert card_state(update) == "delisted"


def test_a_ping_slack_refuses_stays_in_the_outbox_and_goes_out_once(bot, fake):
    ticket, card_ts = open_by_command(bot, fake, "C0RETRY", "11.23.7.1")
    fake.wait_for("chat.postMessage", 3, where=in_channel("C0RETRY", thread_ts=card_ts))
    press(bot, "C0RETRY", "request_sent", ticket, card_ts)
    fake.wait_for("chat.postMessage", where=lambda c: c.args.get("thread_ts") == card_ts
                  and "marked the request sent" in c.args.get("text", ""))
    # Every attempt of the client's own retries fails: the ping must wait for a later tick.
    fake.fail_next("chat.postMessage", 500, times=3, where=lambda a: a.get("channel") == "C0RETRY")
    ping = wait_ping(fake, "C0RETRY", "longer than", timeout=30)
    refused = [c for c in fake.of("chat.postMessage", where=in_channel("C0RETRY"))
               if not c.ok and "longer than" in c.args.get("text", "")]
    assert len(refused) == 3 and refused[-1].at < ping.at
    assert len(pings(fake, "C0RETRY", "longer than")) == 1


def test_list_status_and_app_home_show_open_tickets_oldest_first(bot, fake):
    first, _ = open_by_command(bot, fake, "C0LIST", "11.23.8.1")
    second, _ = open_by_command(bot, fake, "C0LIST", "11.23.8.2")
    assert bot.send(command_body("list", fake, channel="C0LIST"), FORM)[0] == 200
    listed = fake.wait_for("response_url", where=lambda c: second in json.dumps(c.args))[0]
    text = json.dumps(listed.args)
    assert text.index(first) < text.index(second)
    assert bot.send(command_body(f"status {second}", fake, channel="C0LIST"), FORM)[0] == 200
    status = fake.wait_for("response_url", where=lambda c: "request_sent" in json.dumps(c.args)
                           and second in json.dumps(c.args))
    assert status
    assert bot.send(command_body("status 11.23.8.1", fake, channel="C0LIST"), FORM)[0] == 200
    by_ip = fake.wait_for("response_url", where=lambda c: "11.23.8.1 ·" in json.dumps(
        c.args, ensure_ascii=False) and "request_sent" in json.dumps(c.args))
    assert first in json.dumps(by_ip[0].args)
    event = {"type": "app_home_opened", "user": "U0LISTER", "tab": "home", "event_ts": "1.1"}
    assert bot.send(event_body(event, "Ev-home-list"), JSON)[0] == 200
    view = fake.wait_for("views.publish", where=lambda c: c.args["user_id"] == "U0LISTER")[0]
    rows = json.dumps(view.args["view"])
    assert rows.index(first) < rows.index(second)
    assert "overdue after" in rows


def test_open_ticket_button_under_a_channel_bounce_keeps_the_ticket_in_that_thread(bot, fake):
    _, pressed = open_under(bot, fake, "C0BUTTON", "1700001400.000100", "11.23.9.1")
    assert bot.send(pressed, FORM)[0] == 200
    card = fake.wait_for("chat.postMessage", where=lambda c: c.args.get("channel") == "C0BUTTON"
                         and "request_sent" in json.dumps(c.args.get("blocks")))[0]
    assert card.args["thread_ts"] == "1700001400.000100"
    diag_ts = posted_in(fake, "C0BUTTON")[0]["ts"]
    cleared = fake.wait_for("chat.update", where=lambda c: c.args.get("ts") == diag_ts)[0]
    assert "open_ticket" not in json.dumps(cleared.args["blocks"])


def test_repeated_deliveries_never_open_a_second_ticket(bot, fake):
    msg = message("C0AUTO", "1700001500.000100", seed("11.23.10.1"), user="U0BOB")
    assert bot.send(event_body(msg, "Ev-auto-1"), JSON)[0] == 200
    assert bot.send(event_body(msg, "Ev-auto-1"), JSON, **{"X-Slack-Retry-Num": "1"})[0] == 200
    assert bot.send(event_body(msg, "Ev-auto-2"), JSON)[0] == 200
    fake.wait_for("chat.postMessage", where=lambda c: c.args.get("channel") == "C0AUTO"
                  and "request_sent" in json.dumps(c.args.get("blocks")))
    # Another bounce in the channel has been handled since: still one card for this one.
    other = {**msg, "text": seed("11.23.10.2"), "ts": "1700001500.000200",
             "event_ts": "1700001500.000200"}
    assert bot.send(event_body(other, "Ev-auto-3"), JSON)[0] == 200
    fake.wait_for("chat.postMessage", where=lambda c: c.args.get("channel") == "C0AUTO"
                  and "11.23.10.2" in c.args.get("text", ""))
    cards = [c for c in fake.of("chat.postMessage", where=in_channel("C0AUTO"))
             if "request_sent" in json.dumps(c.args.get("blocks")) and "11.23.10.1" in shown(c)]
    assert len(cards) == 1


def test_restart_between_opening_and_the_ping(fake, home, tmp_path):
    first = own_bot(fake, tmp_path)
    try:
        ticket, card_ts = open_by_command(first, fake, "C0RESTART", "11.23.11.1")
        press(first, "C0RESTART", "request_sent", ticket, card_ts)
        fake.wait_for("chat.update", where=lambda c: c.args.get("ts") == card_ts)
    finally:
        first.stop()
    with running(fake, tmp_path, SETTINGS) as second:
        ping = wait_ping(fake, "C0RESTART", "longer than")
        assert ping.args["thread_ts"] == card_ts and ticket in ping.args["text"]
        # Pasting the confirmation afterwards proves the restarted bot handled later work too.
        body = event_body(thread_message("C0RESTART", card_ts, "1700001600.000200",
                                         reply("microsoft-delisted.txt", "11.23.11.1")),
                          "Ev-restart-ping")
        assert second.send(body, JSON)[0] == 200
        wait_ping(fake, "C0RESTART", "delisted")
    assert len(pings(fake, "C0RESTART", "longer than")) == 1


def test_a_provider_confirmation_emailed_to_the_channel_moves_its_ticket(bot, fake):
    ticket, card_ts = open_by_command(bot, fake, "C0FWD", "11.23.12.1")
    fake.add_email("F0CONFIRM", reply("microsoft-delisted.txt", "11.23.12.1").encode(),
                   subject="RE: SRX - FW: failure notice")
    event = emailed("C0FWD", "1700001700.000100", "F0CONFIRM", name="RE")
    assert bot.send(event_body(event, "Ev-fwd-1"), JSON)[0] == 200
    ping = wait_ping(fake, "C0FWD", "delisted, the provider confirmed it")
    assert ping.args["thread_ts"] == card_ts and ticket in ping.args["text"]
    update = fake.wait_for("chat.update", where=lambda c: c.args.get("ts") == card_ts)[-1]
    assert card_state(update) == "delisted"


def test_a_second_click_on_open_ticket_opens_nothing_more(bot, fake):
    _, pressed = open_under(bot, fake, "C0CLICK2", "1700001800.000100", "11.23.13.1")
    assert bot.send(pressed, FORM)[0] == 200
    assert bot.send(pressed, FORM)[0] == 200
    fake.wait_for("chat.postEphemeral", where=in_channel("C0CLICK2"))
    fake.wait_for("chat.postMessage", where=lambda c: c.args.get("channel") == "C0CLICK2"
                  and "Draft request" in c.args.get("text", ""))
    cards = [c for c in fake.of("chat.postMessage", where=in_channel("C0CLICK2"))
             if "request_sent" in json.dumps(c.args.get("blocks"))]
    assert len(cards) == 1


@pytest.mark.parametrize("posted", [True, False], ids=["slack-posted-it", "slack-never-got-it"])
def test_a_bot_killed_while_posting_a_ping_neither_doubles_nor_loses_it(fake, home, tmp_path,
                                                                       posted):
    channel, ip = ("C0CRASHED1", "11.23.18.1") if posted else ("C0CRASHED2", "11.23.18.2")
    first = own_bot(fake, tmp_path)
    try:
        ticket, card_ts = open_by_command(first, fake, channel, ip)
        fake.wait_for("chat.postMessage", 3, where=in_channel(channel, thread_ts=card_ts))
        fake.hang_next("chat.postMessage", posted=posted, where=lambda a: a.get(
            "channel") == channel and "longer than" in a.get("text", ""))
        press(first, channel, "request_sent", ticket, card_ts)
        # The overdue ping is on its way to Slack, and the bot dies before hearing back.
        fake.wait_for("chat.postMessage", where=lambda c: c.args.get("channel") == channel
                      and "longer than" in c.args.get("text", ""))
    finally:
        first.kill()
    try:
        with running(fake, tmp_path, SETTINGS) as second:
            # The confirmation's ping comes after the overdue one (a ticket's pings go in order).
            body = event_body(thread_message(channel, card_ts, "1700001900.000200",
                                             reply("microsoft-delisted.txt", ip)), f"Ev-crash-{ip}")
            assert second.send(body, JSON)[0] == 200
            wait_ping(fake, channel, "delisted, the provider confirmed it")
    finally:
        fake.release_hung()
    assert len(posted_in(fake, channel, "longer than")) == 1
    with sqlite3.connect(tmp_path / "delistbot.db") as db:
        overdue = db.execute("SELECT sent_at, attempts FROM outbox WHERE ticket_id = ?"
                             " AND kind = 'overdue'", [ticket]).fetchall()
    assert len(overdue) == 1 and overdue[0][0] is not None and overdue[0][1] == 2


def test_snooze_for_the_chosen_time_holds_the_overdue_ping(bot, fake):
    snoozed, snoozed_ts = open_by_command(bot, fake, "C0SNOOZE", "11.23.14.1")
    other, other_ts = open_by_command(bot, fake, "C0SNOOZE", "11.23.14.2")
    choose(bot, "C0SNOOZE", "snooze", snoozed, snoozed_ts, f"{snoozed}|4h")
    note = fake.wait_for("chat.postMessage", where=lambda c: c.args.get("thread_ts") == snoozed_ts
                         and "snoozed it for 4 h" in c.args.get("text", ""))[0]
    assert "<@U0ALICE>" in note.args["text"]
    card = fake.wait_for("chat.update", where=lambda c: c.args.get("ts") == snoozed_ts)[-1]
    assert "Snoozed until" in shown(card)
    press(bot, "C0SNOOZE", "request_sent", snoozed, snoozed_ts)
    fake.wait_for("chat.update", 2, where=lambda c: c.args.get("ts") == snoozed_ts)
    press(bot, "C0SNOOZE", "request_sent", other, other_ts)
    # The other ticket's overdue ping falls due after the snoozed one's would have.
    assert wait_ping(fake, "C0SNOOZE", "longer than").args["thread_ts"] == other_ts
    assert not [c for c in pings(fake, "C0SNOOZE", "longer than")
                if c.args["thread_ts"] == snoozed_ts]


def test_a_snooze_choice_the_bot_cannot_read_is_explained_privately(bot, fake):
    ticket, card_ts = open_by_command(bot, fake, "C0SNOOZEBAD", "11.23.15.1")
    choose(bot, "C0SNOOZEBAD", "snooze", ticket, card_ts, f"{ticket}|90d")
    said = fake.wait_for("chat.postEphemeral", where=in_channel("C0SNOOZEBAD"))[0]
    assert "between 1 minute and 30 days" in said.args["text"]
    assert not fake.of("chat.update", where=lambda c: c.args.get("ts") == card_ts)


def test_delisted_button_moves_the_ticket_and_pings_the_owner(bot, fake):
    ticket, card_ts = open_by_command(bot, fake, "C0DLBTN", "11.23.16.1")
    press(bot, "C0DLBTN", "request_sent", ticket, card_ts)
    fake.wait_for("chat.update", where=lambda c: c.args.get("ts") == card_ts)
    press(bot, "C0DLBTN", "delisted", ticket, card_ts, user="U0BOB")
    ping = wait_ping(fake, "C0DLBTN", "delisted, marked delisted by hand")
    assert ping.args["thread_ts"] == card_ts and ping.args["text"].startswith("<@U0ALICE> ")
    said = fake.wait_for("chat.postMessage", where=lambda c: c.args.get("thread_ts") == card_ts
                         and "<@U0BOB> marked it delisted" in c.args.get("text", ""))
    assert said
    update = fake.wait_for("chat.update", 2, where=lambda c: c.args.get("ts") == card_ts)[-1]
    assert card_state(update) == "delisted"


def test_hostile_text_in_a_tickets_bounce_replies_and_commands_never_notifies(bot, fake):
    from tests.test_slack_bounces import HOSTILE, TOKENS, typed_in_slack

    bounce = seed("11.23.17.1").replace("mail from IP banned", f"mail from IP banned {HOSTILE}")
    assert bot.send(command_body(typed_in_slack(bounce), fake, channel="C0HOSTTKT"), FORM)[0] == 200
    card = fake.wait_for("chat.postMessage", where=in_channel("C0HOSTTKT"))[0]
    ticket = card.args["text"].split(":")[0]
    card_ts = next(m["ts"] for m in fake.messages if m["channel"] == "C0HOSTTKT")
    fake.wait_for("chat.postMessage", 3, where=in_channel("C0HOSTTKT", thread_ts=card_ts))
    # A provider's auto-reply with the hostile text inside, then a plain note carrying it too.
    answer = reply("microsoft-autoreply.txt", "11.23.17.1") + "\n" + HOSTILE
    for n, text in enumerate([answer, f"note {HOSTILE}"]):
        body = event_body(thread_message("C0HOSTTKT", card_ts, f"1700001900.00010{n}", text),
                          f"Ev-hosttkt-{n}")
        assert bot.send(body, JSON)[0] == 200
    fake.wait_for("chat.update", where=lambda c: c.args.get("ts") == card_ts
                  and card_state(c) == "acknowledged")
    status, answered = bot.send(command_body(f"status {HOSTILE.split()[0]}", fake,
                                             channel="C0HOSTTKT"), FORM)
    assert status == 200
    said = fake.wait_for("response_url", where=lambda c: "No open ticket" in json.dumps(c.args))
    everything = answered + json.dumps([c.args for c in said]) + "".join(
        shown(c) for m in ("chat.postMessage", "chat.update", "chat.postEphemeral")
        for c in fake.of(m, where=in_channel("C0HOSTTKT")))
    assert ticket in everything and "banned" in everything
    for token in TOKENS:
        assert token not in everything, token


def test_a_ping_the_tickets_channel_refuses_goes_to_the_fallback_channel_once(bot, fake, home):
    ticket, card_ts = open_by_command(bot, fake, "C0KICKED", "11.23.19.1")
    fake.wait_for("chat.postMessage", 3, where=in_channel("C0KICKED", thread_ts=card_ts))
    # The bot was removed from the channel after the card went out.
    fake.fail_next_error("chat.postMessage", "not_in_channel", where=lambda a: a.get(
        "channel") == "C0KICKED" and "longer than" in a.get("text", ""))
    press(bot, "C0KICKED", "request_sent", ticket, card_ts)
    ping = fake.wait_for("chat.postMessage", timeout=20, where=lambda c: c.ok and in_channel(
        "C0FALLBACK")(c) and ticket in c.args.get("text", ""))[0]
    assert "thread_ts" not in ping.args and ping.args["text"].startswith("<@U0ALICE> ")
    assert "longer than" in ping.args["text"]
    assert "Not posted in the ticket's channel C0KICKED: Slack answered not_in_channel" in (
        ping.args["text"])
    [row] = [p for p in ticket_json(home, ticket)["pings"] if p["kind"] == "overdue"]
    assert row["sent_at"] and row["error"] == "not_in_channel in C0KICKED; posted in C0FALLBACK"
    # A later ping of the ticket has gone out since: the refused one was not tried again.
    body = event_body(thread_message("C0KICKED", card_ts, "1700002000.000200",
                                     reply("microsoft-delisted.txt", "11.23.19.1")), "Ev-kicked")
    assert bot.send(body, JSON)[0] == 200
    wait_ping(fake, "C0KICKED", "delisted, the provider confirmed it")
    tried = fake.of("chat.postMessage", where=lambda c: "longer than" in c.args.get("text", "")
                    and ticket in c.args.get("text", ""))
    assert [c.args["channel"] for c in tried] == ["C0KICKED", "C0FALLBACK"]


def test_a_provider_mail_forwarded_to_the_channel_is_matched_by_its_ticket_id(bot, fake):
    ticket, card_ts = open_by_command(bot, fake, "C0FWDID", "11.23.20.1")
    body = event_body(thread_message("C0FWDID", card_ts, "1700002100.000200",
                                     reply("microsoft-autoreply.txt", "11.23.20.1")), "Ev-fwdid-1")
    assert bot.send(body, JSON)[0] == 200
    fake.wait_for("chat.update", where=lambda c: c.args.get("ts") == card_ts
                  and "SRX1123201000ID" in shown(c))
    # Microsoft's confirmation without the IP: only its ticket number ties it to the ticket.
    mail = reply("microsoft-delisted.txt", "11.23.20.1").replace(" for 11.23.20.1.", ".")
    assert "11.23.20.1" not in mail
    fake.add_email("F0FWDID", mail.encode(), subject="RE: SRX1123201000ID - FW: failure notice")
    event = emailed("C0FWDID", "1700002100.000300", "F0FWDID", name="RE")
    assert bot.send(event_body(event, "Ev-fwdid-2"), JSON)[0] == 200
    ping = wait_ping(fake, "C0FWDID", "delisted, the provider confirmed it")
    assert ping.args["thread_ts"] == card_ts and ticket in ping.args["text"]
    update = fake.wait_for("chat.update", 2, where=lambda c: c.args.get("ts") == card_ts)[-1]
    assert card_state(update) == "delisted"
    # The forwarded mail is not a bounce: nothing is said under it.
    assert not fake.of("chat.postMessage", where=in_channel("C0FWDID",
                                                            thread_ts="1700002100.000300"))


def test_a_reply_in_a_tickets_thread_belongs_to_that_ticket_whatever_ip_it_quotes(bot, fake):
    mine, mine_ts = open_by_command(bot, fake, "C0BELONG", "11.23.21.1")
    other, other_ts = open_by_command(bot, fake, "C0BELONG", "11.23.21.2")
    # Pasted under the first ticket's card, a confirmation that names the second one's IP.
    body = event_body(thread_message("C0BELONG", mine_ts, "1700002200.000200",
                                     reply("microsoft-delisted.txt", "11.23.21.2")), "Ev-belong")
    assert bot.send(body, JSON)[0] == 200
    ping = wait_ping(fake, "C0BELONG", "delisted, the provider confirmed it")
    assert ping.args["thread_ts"] == mine_ts and mine in ping.args["text"]
    assert other not in ping.args["text"]
    moved = fake.wait_for("chat.update", where=lambda c: c.args.get("ts") == mine_ts)[-1]
    assert card_state(moved) == "delisted"
    assert not fake.of("chat.update", where=lambda c: c.args.get("ts") == other_ts)


def card_updates(fake: FakeSlack, card_ts: str, state: str) -> list[Call]:
    return [c for c in fake.of("chat.update", where=lambda c: c.args.get("ts") == card_ts)
            if card_state(c) == state]


def wait_card(fake: FakeSlack, card_ts: str, state: str) -> Call:
    """The card's update to `state` (the latest, when there are several)."""
    return fake.wait_for("chat.update", where=lambda c: c.args.get("ts") == card_ts
                         and card_state(c) == state)[-1]


def said(fake: FakeSlack, card_ts: str, text: str) -> list[Call]:
    return [c for c in fake.of("chat.postMessage", where=lambda c: c.args.get("thread_ts")
                               == card_ts) if c.ok and text in c.args.get("text", "")]


def test_a_delisted_card_asks_verified_or_still_blocked_and_each_button_works(bot, fake):
    ticket, card_ts = open_by_command(bot, fake, "C0VERIFY", "11.23.30.1")
    press(bot, "C0VERIFY", "request_sent", ticket, card_ts)
    requested = wait_card(fake, card_ts, "requested")
    assert action_ids(requested) == {"delisted", "escalated", "snooze", "close"}
    press(bot, "C0VERIFY", "delisted", ticket, card_ts)
    delisted = wait_card(fake, card_ts, "delisted")
    assert action_ids(delisted) == {"verified", "reopen", "snooze", "close"}
    labels = [e["text"]["text"] for b in delisted.args["blocks"] if b["type"] == "actions"
              for e in b["elements"] if e["type"] == "button"]
    assert labels == ["Verified (mail flows)", "Still blocked", "Close"]

    verified_press = click("C0VERIFY", "verified", ticket, user="U0BOB",
                           block_id=f"ticket:{ticket}", message_ts=card_ts, action_ts="7.1")
    assert bot.send(verified_press, FORM)[0] == 200
    verified = wait_card(fake, card_ts, "verified")
    assert action_ids(verified) == {"reopen", "close"}
    fake.wait_for("chat.postMessage", where=lambda c: c.args.get("thread_ts") == card_ts and
                  "<@U0BOB> marked it verified (mail flows)" in c.args.get("text", ""))
    # Slack delivering that press again changes nothing and says nothing; a second click (a new
    # action_ts) is told privately that it is done already.
    assert bot.send(verified_press, FORM)[0] == 200
    assert bot.send(click("C0VERIFY", "verified", ticket, user="U0BOB",
                          block_id=f"ticket:{ticket}", message_ts=card_ts, action_ts="7.2"),
                    FORM)[0] == 200
    already = fake.wait_for("chat.postEphemeral", where=in_channel("C0VERIFY"))
    assert f"{ticket} is already verified" in already[0].args["text"]

    press(bot, "C0VERIFY", "reopen", ticket, card_ts)
    reopened = wait_card(fake, card_ts, "open")
    assert action_ids(reopened) == {"request_sent", "delisted", "snooze", "close"}
    fake.wait_for("chat.postMessage", where=lambda c: c.args.get("thread_ts") == card_ts and
                  f"<@U0ALICE> marked it still blocked: {ticket} is now open" in c.args.get(
                      "text", ""))
    assert len(said(fake, card_ts, "marked it verified")) == 1
    assert len(fake.of("chat.postEphemeral", where=in_channel("C0VERIFY"))) == 1
    assert len(card_updates(fake, card_ts, "verified")) == 1


def test_escalated_button_moves_a_waiting_ticket_and_a_stale_button_is_told_so(bot, fake):
    ticket, card_ts = open_by_command(bot, fake, "C0ESCAL", "11.23.31.1")
    press(bot, "C0ESCAL", "request_sent", ticket, card_ts)
    wait_card(fake, card_ts, "requested")
    press(bot, "C0ESCAL", "escalated", ticket, card_ts)
    escalated = wait_card(fake, card_ts, "escalated")
    assert action_ids(escalated) == {"delisted", "snooze", "close"}
    fake.wait_for("chat.postMessage", where=lambda c: c.args.get("thread_ts") == card_ts and
                  f"<@U0ALICE> marked it escalated: {ticket} is now escalated" in c.args.get(
                      "text", ""))
    # "Verified" from a card that still showed it elsewhere: refused, explained, card redrawn.
    press(bot, "C0ESCAL", "verified", ticket, card_ts)
    told = fake.wait_for("chat.postEphemeral", where=in_channel("C0ESCAL"))[0]
    assert f"{ticket} is escalated now" in told.args["text"]
    assert "Verified (mail flows)" in told.args["text"]
    fake.wait_for("chat.update", 2, where=lambda c: c.args.get("ts") == card_ts
                  and card_state(c) == "escalated")

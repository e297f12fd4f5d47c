"""Bounces reaching the bot over HTTP mode, end to end: /delist with a paste, the paste form,
a bounce pasted or e-mailed into a channel, and what must stay silent."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.fakeslack import (
    BOT_ID,
    BOT_USER_ID,
    FakeSlack,
    action_body,
    command_body,
    event_body,
)
from tests.slackbot import CORPUS, FORM, JSON, Bot, emailed, message, need_corpus, running, seed, shown

EMAIL = CORPUS / "sisimai" / "maildir" / "bsd" / "rhost-microsoft-01.eml"
NOT_BOUNCE = "hello team, is the 10:00 deploy still on?"


@pytest.fixture(scope="module")
def bot(fake, tmp_path_factory) -> Iterator[Bot]:
    need_corpus(EMAIL)
    with running(fake, tmp_path_factory.mktemp("bounces")) as bot:
        yield bot


def posts_in(fake: FakeSlack, channel: str) -> list:
    return fake.of("chat.postMessage", where=lambda c: c.args.get("channel") == channel)


def wait_posts(fake: FakeSlack, channel: str, count: int = 1) -> list:
    return fake.wait_for("chat.postMessage", count,
                         where=lambda c: c.args.get("channel") == channel)


def settle(bot: Bot, fake: FakeSlack, channel: str) -> None:
    """Handle one more bounce in `channel`'s neighbour: earlier work had its chance to post."""
    sentinel = f"{channel}-SENTINEL"
    ts = "1699999999.000001"
    body = event_body(message(sentinel, ts, seed("11.22.0.1")), f"Ev-settle-{channel}")
    assert bot.send(body, JSON)[0] == 200
    wait_posts(fake, sentinel)


def test_delist_with_a_pasted_bounce_acks_then_posts_the_diagnosis(bot, fake):
    status, body = bot.send(command_body(seed("11.22.1.1"), fake, channel="C0PASTE"), FORM)
    assert status == 200
    assert "Diagnosing" in body
    post = wait_posts(fake, "C0PASTE")[0]
    assert "11.22.1.1" in shown(post)
    assert "Microsoft" in shown(post)
    assert post.args["unfurl_links"] is False and post.args["unfurl_media"] is False


def test_the_paste_form_posts_the_diagnosis_in_the_channel_it_came_from(bot, fake):
    payload = {
        "type": "view_submission", "team": {"id": "T0FAKE"}, "user": {"id": "U0ALICE"},
        "api_app_id": "A0FAKE", "trigger_id": "t",
        "view": {"id": "V1", "type": "modal", "callback_id": "delist_paste",
                 "private_metadata": "C0FORM", "state": {"values": {"bounce": {"text": {
                     "type": "plain_text_input", "value": seed("11.22.2.1")}}}}},
    }
    assert bot.send(action_body(payload), FORM)[0] == 200
    assert "11.22.2.1" in shown(wait_posts(fake, "C0FORM")[0])


def form_submission(channel: str, text: str | None, files: list[dict] | None = None) -> str:
    values: dict = {"bounce": {"text": {"type": "plain_text_input", "value": text}}}
    if files is not None:
        values["file"] = {"file": {"type": "file_input", "files": files}}
    return action_body({
        "type": "view_submission", "team": {"id": "T0FAKE"}, "user": {"id": "U0ALICE"},
        "api_app_id": "A0FAKE", "trigger_id": "t",
        "view": {"id": "V1", "type": "modal", "callback_id": "delist_paste",
                 "private_metadata": channel, "state": {"values": values}},
    })


def test_a_bounce_too_long_to_paste_can_be_attached_to_the_form(bot, fake):
    words = " ".join(f"w{i:05d}" for i in range(800))  # past the form's 3,000 characters
    long_bounce = seed("11.22.2.2").replace("mail from IP banned;", f"mail from IP banned {words};")
    fake.add_upload("F0UPLOAD", "bounce.eml", long_bounce.encode())
    files = [{"id": "F0UPLOAD", "name": "bounce.eml", "filetype": "eml"}]
    assert bot.send(form_submission("C0ATTACH", None, files), FORM)[0] == 200
    posts = wait_posts(fake, "C0ATTACH", count=3)  # the card, then the diagnosis and the draft
    assert "11.22.2.2" in shown(posts[0])
    assert fake.of("files.info", where=lambda c: c.args.get("file") == "F0UPLOAD")
    assert "w00799" in "".join(shown(p) for p in posts)


def test_the_form_sent_empty_says_what_it_needs(bot, fake):
    status, body = bot.send(form_submission("C0EMPTY", "  ", []), FORM)
    assert status == 200
    answer = json.loads(body)
    assert answer["response_action"] == "errors" and "bounce" in answer["errors"]
    settle(bot, fake, "C0EMPTY")
    assert posts_in(fake, "C0EMPTY") == []


def test_a_bounce_pasted_in_a_channel_is_answered_in_its_thread(bot, fake):
    # Slack encodes what users paste: entities, and e-mail addresses as mailto links.
    pasted = seed("11.22.3.1").replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    pasted = pasted.replace("delist@messaging.microsoft.com",
                            "<mailto:delist@messaging.microsoft.com|delist@messaging.microsoft.com>")
    body = event_body(message("C0CHAN", "1700000100.000100", pasted), "Ev-chan-1")
    assert bot.send(body, JSON)[0] == 200
    post = wait_posts(fake, "C0CHAN")[0]
    assert post.args["thread_ts"] == "1700000100.000100"
    assert "11.22.3.1" in shown(post)


def test_a_bounce_emailed_to_the_channel_is_read_through_files_info(bot, fake):
    fake.add_email("F0MAIL1", EMAIL.read_bytes(), subject="Undeliverable: hello")
    event = {
        "type": "message", "subtype": "file_share", "text": "", "user": "USLACKBOT",
        "bot_id": "B0EMAILAPP", "display_as_bot": True, "upload": True, "channel": "C0MAIL",
        "channel_type": "channel", "ts": "1700000200.000100", "event_ts": "1700000200.000100",
        "files": [{"id": "F0MAIL1", "filetype": "email", "mode": "email", "name": "x",
                   "plain_text": "(preview only)"}],
    }
    assert bot.send(event_body(event, "Ev-mail-1"), JSON)[0] == 200
    post = wait_posts(fake, "C0MAIL")[0]
    assert post.args["thread_ts"] == "1700000200.000100"
    assert "198.51.100.222" in shown(post)
    info = fake.of("files.info", where=lambda c: c.args.get("file") == "F0MAIL1")
    assert len(info) == 1
    download = fake.of("files.download", where=lambda c: c.args.get("file") == "F0MAIL1")
    assert download and download[0].auth.startswith("Bearer xoxb-")


def test_a_saved_bounce_dropped_into_the_channel_is_read_too(bot, fake):
    fake.add_upload("F0DROP", "Undeliverable.eml", seed("11.22.11.1").encode())
    fake.add_upload("F0PIC", "screenshot.png", b"\x89PNG\r\n\x1a\n")
    for n, (file_id, filetype) in enumerate([("F0DROP", "eml"), ("F0PIC", "png")]):
        event = {
            "type": "message", "subtype": "file_share", "text": "", "user": "U0ALICE",
            "channel": f"C0DROP{n}", "channel_type": "channel", "upload": True,
            "ts": f"1700001000.00010{n}", "event_ts": f"1700001000.00010{n}",
            "files": [{"id": file_id, "filetype": filetype, "mode": "hosted", "name": "x"}],
        }
        assert bot.send(event_body(event, f"Ev-drop-{n}"), JSON)[0] == 200
    post = wait_posts(fake, "C0DROP0")[0]
    assert post.args["thread_ts"] == "1700001000.000100" and "11.22.11.1" in shown(post)
    settle(bot, fake, "C0DROP1")
    assert posts_in(fake, "C0DROP1") == []  # a picture is nobody's bounce
    assert not fake.of("files.download", where=lambda c: c.args.get("file") == "F0PIC")


def test_a_message_that_is_not_a_bounce_gets_no_answer(bot, fake):
    body = event_body(message("C0QUIET", "1700000300.000100", NOT_BOUNCE), "Ev-quiet-1")
    assert bot.send(body, JSON)[0] == 200
    settle(bot, fake, "C0QUIET")
    assert posts_in(fake, "C0QUIET") == []
    assert not fake.of("chat.postEphemeral", where=lambda c: c.args.get("channel") == "C0QUIET")


def test_the_bots_own_messages_are_ignored(bot, fake):
    own = message("C0SELF", "1700000400.000100", seed("11.22.4.1"),
                  user=BOT_USER_ID, bot_id=BOT_ID)
    assert bot.send(event_body(own, "Ev-self-1"), JSON)[0] == 200
    settle(bot, fake, "C0SELF")
    assert posts_in(fake, "C0SELF") == []


def test_one_message_under_two_event_ids_is_answered_once(bot, fake):
    m = message("C0TWICE", "1700000500.000100", seed("11.22.5.1"))
    assert bot.send(event_body(m, "Ev-twice-1"), JSON)[0] == 200
    assert bot.send(event_body(m, "Ev-twice-2"), JSON)[0] == 200
    wait_posts(fake, "C0TWICE")
    settle(bot, fake, "C0TWICE")
    assert len(posts_in(fake, "C0TWICE")) == 1


def test_thread_replies_and_edits_are_not_taken_for_new_bounces(bot, fake):
    reply = message("C0THREAD", "1700000600.000200", seed("11.22.6.1"),
                    thread_ts="1700000600.000100")
    assert bot.send(event_body(reply, "Ev-thread-1"), JSON)[0] == 200
    settle(bot, fake, "C0THREAD")
    assert posts_in(fake, "C0THREAD") == []


HOSTILE = ("<!channel> <!here> <!everyone> <@U0BOSS> <!subteam^S0OPS|@ops> "
           "<https://evil.example|click> <#C0SECRET>")
TOKENS = ("<!channel>", "<!here>", "<!everyone>", "<@U0BOSS>", "<!subteam", "<https://evil",
          "<#C0SECRET>")


def hostile_bounce() -> str:
    """The seed bounce with mention syntax inside the rejection line, which the bot quotes."""
    return seed("11.22.7.1").replace("mail from IP banned", f"mail from IP banned {HOSTILE}")


def typed_in_slack(text: str) -> str:
    """How Slack delivers characters a user typed: &, < and > as entities (no live mention)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


@pytest.mark.parametrize("encode", [typed_in_slack, lambda text: text],
                         ids=["typed-as-text", "real-mention-markup"])
def test_mentions_inside_a_pasted_bounce_never_notify(bot, fake, encode):
    channel = f"C0HOSTILE{encode.__name__.upper()[:6].strip('<>')}"
    body = event_body(message(channel, "1700000700.000100", encode(hostile_bounce())),
                      f"Ev-hostile-{channel}")
    assert bot.send(body, JSON)[0] == 200
    post = wait_posts(fake, channel)[0]
    assert "banned" in shown(post)  # the line carrying the hostile text is quoted
    for token in TOKENS:
        assert token not in shown(post)
    assert "link_names" not in post.args


def test_mentions_inside_a_bounce_given_to_the_command_never_notify(bot, fake):
    status, body = bot.send(
        command_body(typed_in_slack(hostile_bounce()), fake, channel="C0HOSTCMD"), FORM)
    assert status == 200
    posts = wait_posts(fake, "C0HOSTCMD", count=3)  # card, diagnosis and draft in its thread
    everything = body + "".join(shown(p) for p in posts)
    assert "banned" in everything
    for token in TOKENS:
        assert token not in everything


def test_delist_with_an_ip_acks_then_posts_what_is_known(bot, fake):
    status, body = bot.send(command_body("203.0.113.44", fake, channel="C0IP"), FORM)
    assert status == 200
    assert "203.0.113.44" in body
    assert "203.0.113.44" in shown(wait_posts(fake, "C0IP")[0])


def test_not_in_channel_is_explained_privately(bot, fake):
    fake.fail_next_error("chat.postMessage", "not_in_channel")
    status, _ = bot.send(command_body(seed("11.22.8.1"), fake, channel="C0OUTSIDE"), FORM)
    assert status == 200
    answer = fake.wait_for("response_url", where=lambda c: "/invite" in json.dumps(c.args))
    assert answer[0].args["response_type"] == "ephemeral"




def code_text(posts: list) -> str:
    """What the posts show in code blocks, fences removed and pieces joined as they were split."""
    pieces = [b["text"]["text"] for p in posts for b in p.args.get("blocks") or []
              if b["type"] == "section" and b.get("text", {}).get("text", "").startswith("```")]
    return "".join(piece.removeprefix("```\n").removesuffix("\n```") for piece in pieces)


def test_a_huge_bounce_is_answered_in_full_within_slack_limits(bot, fake):
    words = " ".join(f"w{i:05d}" for i in range(2000))  # a 14,000-character rejection line
    huge = seed("11.22.9.1").replace("mail from IP banned;", f"mail from IP banned {words};")
    body = event_body(message("C0HUGE", "1700000800.000100", huge), "Ev-huge-1")
    assert bot.send(body, JSON)[0] == 200
    posts = wait_posts(fake, "C0HUGE", count=2)  # more than one message: nothing was cut
    settle(bot, fake, "C0HUGE")
    posts = posts_in(fake, "C0HUGE")
    assert all(p.ok for p in posts)  # the fake refuses what Slack would (50 blocks, 3,000 chars)
    assert all(p.args["thread_ts"] == "1700000800.000100" for p in posts)
    quoted = code_text(posts)
    assert all(f"w{i:05d}" in quoted for i in range(2000))
    assert "continued" in shown(posts[1])


def test_odd_charsets_reach_the_channel_as_written(bot, fake):
    """An ISO-2022-JP bounce e-mailed in, and a paste full of emoji, RTL and zero-width marks."""
    japanese = "送信元IPはブロックリストに登録されています"
    mail = ("From: MAILER-DAEMON@mx.example.jp\nTo: admin@example.jp\nSubject: failure notice\n"
            "MIME-Version: 1.0\nContent-Type: text/plain; charset=ISO-2022-JP\n"
            "Content-Transfer-Encoding: 7bit\n\n"
            + seed("11.22.10.1").split("\n", 4)[4].replace("mail from IP banned;",
                                                           f"mail from IP banned {japanese};"))
    fake.add_email("F0JIS", mail.encode("iso-2022-jp"), subject="failure notice")
    event = emailed("C0JIS", "1700000900.000100", "F0JIS")
    assert bot.send(event_body(event, "Ev-jis-1"), JSON)[0] == 200
    post = wait_posts(fake, "C0JIS")[0]
    assert japanese in code_text([post])  # the rejection line, quoted as the server wrote it
    odd = "\u202eevil\u202c \u200b\U0001f4e7 Ünïcödé"
    pasted = seed("11.22.10.2").replace("mail from IP banned;", f"mail from IP banned {odd};")
    body = event_body(message("C0ODD", "1700000900.000200", pasted), "Ev-odd-1")
    assert bot.send(body, JSON)[0] == 200
    post = wait_posts(fake, "C0ODD")[0]
    assert post.ok and odd in code_text([post])

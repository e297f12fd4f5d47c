"""The small pure pieces of the Slack edge: text in and out, command parsing, the event log."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest

from bot.core.errors import ConfigError
from bot.slack.blocks import duration
from bot.slack.listeners import parse_command, word_answer
from bot.slack.store import SlackStore
from bot.slack.text import escape, from_slack
from bot.slack.ticket_flows import snooze_length


@pytest.mark.parametrize(
    ("raw", "plain"),
    [
        ("&lt;<mailto:someone@example.com|someone@example.com>&gt;:", "<someone@example.com>:"),
        ("see <https://example.com/x?a=1&amp;b=2|example.com/x>", "see example.com/x"),
        ("see <https://example.com/y>", "see https://example.com/y"),
        ("a &amp;lt; b", "a &lt; b"),
        ("<!channel> hello <@U0123|bob>", "@channel hello @bob"),
    ],
)
def test_slack_encoded_text_becomes_what_was_pasted(raw, plain):
    assert from_slack(raw) == plain


def test_escape_makes_mentions_and_links_inert():
    assert escape("<!here> & <@U1>") == "&lt;!here&gt; &amp; &lt;@U1&gt;"


@pytest.mark.parametrize(
    ("text", "verb", "arg"),
    [
        ("", "modal", ""),
        ("  help ", "help", ""),
        ("list", "list", ""),
        ("status DL-42", "status", "DL-42"),
        ("dl-42", "status", "dl-42"),
        ("status 203.0.113.44", "status", "203.0.113.44"),
        ("203.0.113.44", "ip", "203.0.113.44"),
        ("2001:db8::25", "ip", "2001:db8::25"),
        ("999.1.1.1", "word", "999.1.1.1"),
        ("lsit", "word", "lsit"),
        ("550 5.7.1 blocked", "bounce", "550 5.7.1 blocked"),
    ],
)
def test_delist_command_words(text, verb, arg):
    assert parse_command(text) == (verb, arg)


@pytest.mark.parametrize(
    ("word", "answer"),
    [
        ("999.1.1.1", "'999.1.1.1' is not an IP address. `/delist help`"),
        ("mail.example.com", "is a host name, not an IP address; block lists are keyed by IP"),
        ("status", "`/delist status` needs a ticket id or an IP"),
        ("lsit", "I do not know `/delist lsit`. `/delist help` shows what I can do"),
        ("<!channel>", "I do not know `/delist &lt;!channel&gt;`"),
    ],
)
def test_one_word_that_is_no_command_is_answered_at_once(word, answer):
    assert answer in word_answer(word)


def test_an_event_claimed_before_a_restart_stays_claimed(tmp_path):
    db = tmp_path / "bot.db"
    assert SlackStore(db).claim("event:Ev1") is True
    reopened = SlackStore(db)
    assert reopened.claim("event:Ev1") is False
    assert reopened.claim("event:Ev2") is True


def test_a_released_claim_can_be_taken_again(tmp_path):
    store = SlackStore(tmp_path / "bot.db")
    store.claim("k")
    store.release("k")
    assert store.claim("k") is True


@pytest.mark.parametrize(("choice", "hours"), [("4h", 4), ("1d", 24), ("3d", 72), ("", 24)])
def test_snooze_choices_are_read_as_durations(choice, hours):
    assert snooze_length(choice) == timedelta(hours=hours)  # "" : a card from before the menu


@pytest.mark.parametrize("choice", ["90d", "0s", "soon", "4 parsecs"])
def test_a_snooze_choice_out_of_range_or_unreadable_is_refused(choice):
    with pytest.raises(ConfigError, match="snooze"):
        snooze_length(choice)


@pytest.mark.parametrize(("hours", "shown"), [
    (28 + 3 / 3600, "28 h"), (1.25, "1.2 h"), (0.5, "30 min"), (2 / 3600, "2 s"),
    (72.01, "3 days"), (24 * 7.5, "7.5 days"),
])
def test_durations_read_as_people_say_them(hours, shown):
    assert duration(hours) == shown


def test_delivered_replies_are_forgotten_after_a_week_undelivered_ones_never(tmp_path):
    store = SlackStore(tmp_path / "bot.db")
    store.queue_reply("sent", "C1", "1.1", [("a", [])])
    store.queue_reply("waiting", "C1", "1.2", [("b", [])])
    (sent,) = store.pending_replies("sent")
    store.reply_sent(sent.id, "2.1")
    assert store.prune_replies(now=time.time() + 3 * 86400) == 0  # not a week yet
    assert store.prune_replies(now=time.time() + 8 * 86400) == 1
    assert [r.group for r in store.pending_replies()] == ["waiting"]


def test_the_warm_up_report_runs_the_whole_engine_before_slack_is_served():
    """`serve` diagnoses this report before it listens, so the engine's lazy preparation is not
    paid by the first commands; it must stay a report the engine reads all the way through."""
    from bot.service.diagnose import diagnose_bytes
    from bot.slack.wiring import _WARM_UP

    [d] = diagnose_bytes(_WARM_UP, "warm-up")
    assert d.is_bounce and d.sending_ip == "192.0.2.1"
    assert str(d.reason) == "blocked" and d.receiver == "microsoft_eop"

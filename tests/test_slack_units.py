"""The small pure pieces of the Slack edge: text in and out, command parsing, the event log."""

from __future__ import annotations

import pytest

from bot.slack.listeners import parse_command
from bot.slack.store import SlackStore
from bot.slack.text import escape, from_slack


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
        ("status 203.0.113.44", "status", "203.0.113.44"),
        ("203.0.113.44", "ip", "203.0.113.44"),
        ("2001:db8::25", "ip", "2001:db8::25"),
        ("999.1.1.1", "bounce", "999.1.1.1"),
        ("550 5.7.1 blocked", "bounce", "550 5.7.1 blocked"),
    ],
)
def test_delist_command_words(text, verb, arg):
    assert parse_command(text) == (verb, arg)


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

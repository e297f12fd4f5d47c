"""Naming a bounce's format and cutting off its returned message: the fast paths decide as the
plain regexes do."""

from __future__ import annotations

import random
import re
from dataclasses import MISSING, fields, replace
from pathlib import Path

import pytest

import bot.core.bounce as bounce_module
from bot.core.bounce import _with, formats, says_returned
from bot.core.bounce.formats import cut_returned_message, identify, load_formats
from bot.core.model import Bounce, Reason, RecipientRecord
from bot.core.prefilter import at_line_start, line_starts, lowered

HELDOUT = Path(__file__).parent / "heldout"


def _texts() -> list[str]:
    rng = random.Random(7)
    phrases = ["Diagnostic information for administrators", "This is the mail system at host x",
               "The original message was received at", "qmail-send", "Microsoft Exchange",
               "----- Original message -----", "-- Returned message", "Original message headers:",
               "Content-Type: message/rfc822", "  ---- Original message follows", "x --- Returned message",
               "The response was:", "amavis", "MDaemon", "Your message:", "------- Failure Reasons",
               # markers whose needles hold the words the sweep tests first (formats._GATES)
               "Sent by Microsoft Exchange Server", "Google Groups", "googlegroups.com", "Amazon SES",
               "did not reach the following recipient(s)", "Your message to a@b.example wasn't delivered",
               "Apache James", "Message details:", "Delivery to the following recipient failed permanently",
               "Generating server: x.prod.outlook.com", "Office 365", "microsoft", "google", "to the"]
    texts = [p.read_text("utf-8", "replace") for p in sorted(HELDOUT.rglob("*")) if p.is_file()]
    for _ in range(300):
        lines = [rng.choice(phrases) for _ in range(rng.randint(0, 8))]
        text = "\n".join(lines)
        texts.append("".join(c.upper() if rng.random() < 0.2 else c for c in text))
    return texts


def test_the_format_named_is_the_first_in_the_table_whose_markers_match() -> None:
    table = load_formats()
    for _ in range(2):  # the second round runs the sweep built after the first body
        for text in _texts():
            plain = next((fmt for fmt in table if any(m.search(text) for m in fmt.markers)), None)
            formats._LAST_BODY = None
            assert identify(text) is plain, text[:200]


def test_the_returned_message_is_cut_at_the_earliest_end_that_starts_a_line() -> None:
    for fmt in (None, *load_formats()):
        for text in _texts():
            ends = (*(fmt.end if fmt else ()), *formats.GENERIC_END)
            found = [m.start() for m in (p.search(text) for p in ends) if m]
            formats._LAST_CUT = None
            assert cut_returned_message(text, fmt) == text[:min(found, default=len(text))]


def test_an_end_that_opens_a_line_is_found_at_line_starts_only() -> None:
    for pattern in (*formats.GENERIC_END, *(e for fmt in load_formats() for e in fmt.end)):
        found = line_starts(pattern)
        if found is None:
            continue
        for text in _texts():
            low = lowered(text)
            if low is None:
                continue
            plain = pattern.search(text)
            ours = at_line_start(pattern, text, low, found, len(text))
            assert (ours and ours.span()) == (plain and plain.span()), (pattern.pattern, text)
    assert line_starts(formats.GENERIC_END[0]) == ("-",)
    assert line_starts(formats.GENERIC_END[1]) is None  # "^\|?-{3,}": no literal every match starts with


def test_a_text_part_mostly_of_indented_quoted_lines_is_read_through_the_quotes() -> None:
    from bot.core.bounce import read

    quoted = ("From: colleague@example.org\nTo: ops@example.org\nSubject: see below\n\n"
              "  > <user@example.com>: host mx.example.com[192.0.2.1] said: 550 5.1.1 User unknown\n"
              "\t>  (in reply to RCPT TO command)\n\n\n>\n")
    (bounce,) = read(quoted.encode())
    assert [(r.address, r.reply_code, r.command) for r in bounce.recipients] == [
        ("user@example.com", "550", "RCPT")]
    assert ">" not in bounce.recipients[0].diagnostic
    # Fewer than half its lines quoted: the text is read as it stands, quote marks and all.
    kept = quoted.replace("\n\n\n>\n", "\nfirst\nsecond\nthird\n")
    (bounce,) = read(kept.encode())
    assert bounce.text.startswith("  > <user@example.com>")
    assert [r.address for r in bounce.recipients] == [None]  # no line starts with the address


def test_a_from_or_subject_pattern_names_a_format_before_later_formats_markers() -> None:
    table = load_formats()
    senders = ["", "MAILER-DAEMON@yahoo.com", "postmaster@outlook.com", "x@googlegroups.com",
               "Mail Delivery System <mailer-daemon@gmail.com>", "MDaemon@mx.example.org", "a@mail.ru"]
    subjects = ["", "Undelivered Mail Returned to Sender", "Mail delivery failed",
                "Returned mail: see transcript", "DELIVERY FAILURE: user unknown", "hello"]
    rng = random.Random(5)
    texts = _texts()
    for _ in range(2):
        for text in texts[::3]:
            sender, subject = rng.choice(senders), rng.choice(subjects)
            plain = next((fmt for fmt in table if any(m.search(text) for m in fmt.markers)
                          or any(p.search(sender) for p in fmt.from_)
                          or any(p.search(subject) for p in fmt.subject)), None)
            assert identify(text, sender, subject) is plain, (text[:200], sender, subject)


def test_a_record_filled_in_by_the_readers_equals_what_dataclasses_replace_builds() -> None:
    # _with copies the instance dict: it holds only while every field is a plain init field.
    assert not hasattr(RecipientRecord, "__post_init__")
    assert all(f.init and f.default_factory is MISSING for f in fields(RecipientRecord))
    record = RecipientRecord(address="a@b.example", diagnostic="550 5.1.1 no such user", status="5.1.1",
                             action="failed")
    changes = {"address": "c@d.example", "diagnostic": "452 4.2.2 full", "status": "4.2.2",
               "reply_code": "452", "remote_mta": "mx.d.example", "action": "delayed", "command": "RCPT",
               "hint": Reason.BLOCKED,
               "diagnostic_type": "smtp"}
    assert set(changes) == {f.name for f in fields(RecipientRecord)}
    for name, value in changes.items():
        filled = _with(record, **{name: value})
        assert filled == replace(record, **{name: value})
        assert getattr(filled, name) == value and record != filled
    assert _with(record, **changes) == replace(record, **changes)
    with pytest.raises(TypeError):
        _with(record, commands="RCPT")


def _plain_says_returned(bounce: Bounce) -> bool:
    """The rule as written: the notice squashed to one case and one space, then its words."""
    actions = {(r.action or "").lower() for r in bounce.recipients}
    if "delayed" in actions or "failed" in actions:
        return "delayed" not in actions
    notice = " ".join(f"{bounce.subject or ''} {bounce.text[:4000]}".split()).lower()
    if any(w in notice for w in bounce_module._DELAY_WORDS) or re.search(r"delayed \d+ (?:minute|hour|day)",
                                                                         notice):
        return False
    return any(w in notice for w in bounce_module._RETURNED_WORDS)


def test_a_notice_says_returned_or_delayed_as_its_squashed_words_do_however_it_is_wrapped() -> None:
    rng = random.Random(11)
    phrases = [*bounce_module._DELAY_WORDS, *bounce_module._RETURNED_WORDS, "delayed 4 hours",
               "Delivery to these recipients", "the message", "will", "returned", "not", "failed"]
    for _ in range(2000):
        words = " ".join(rng.choice(phrases) for _ in range(rng.randint(0, 4))).split(" ")
        text = "".join(w + rng.choice([" ", " ", "\n", "  \n\t", "\u00a0"]) for w in words)
        text = "".join(c.upper() if rng.random() < 0.2 else c for c in text)
        subject = rng.choice(["", "Delayed Mail", "Returned"])
        bounce = Bounce(source="x", format=None, text=text, subject=subject, recipients=(
            RecipientRecord(address="a@b.example", diagnostic="550 no"),))
        assert says_returned(bounce) is _plain_says_returned(bounce), text


def test_every_notice_phrase_holds_one_of_the_words_read_before_squashing() -> None:
    for phrases, keys in ((bounce_module._DELAY_WORDS, bounce_module._DELAY_KEYS),
                          (bounce_module._RETURNED_WORDS, bounce_module._RETURNED_KEYS)):
        assert all(key.split() == [key] for key in keys)
        assert all(any(key in phrase for key in keys) for phrase in phrases)
    assert "delay" in bounce_module._DELAY_KEYS  # _DELAYED_FOR's "delayed"

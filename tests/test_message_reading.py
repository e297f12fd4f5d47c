"""Recognising a message's header block: the one-pass reading answers as the line-by-line rule."""

from __future__ import annotations

import random
import re

import pytest

from bot.core.bounce.message import (
    _CHARSET_ALIASES,
    _COMMON_CHARSETS,
    charset_name,
    looks_like_message,
    mbox_messages,
    normalise_newlines,
    split_mbox,
)
from tests.corpus import CORPUS, need_shared

_FIELD_LINE = re.compile(rb"^[A-Za-z][\w-]*:[ \t]?.*$")


def _line_by_line(data: bytes) -> bool:
    """The rule, line by line: of the first 12 lines, those before a blank one are all fields or
    continuations, and at least two are fields."""
    headers = 0
    for line in data.lstrip(b"\n").split(b"\n", 12)[:12]:
        if not line.strip():
            break
        if line[:1] in (b" ", b"\t"):
            continue
        if not _FIELD_LINE.match(line):
            return False
        headers += 1
    return headers >= 2


SHAPES = [
    b"", b"\n", b"Subject: x", b"Subject: x\nFrom: y", b"\n\nSubject: x\nFrom: y\n\nbody",
    b"Subject: x\n folded\n", b" lead\nSubject: x\nTo: y\n", b"Subject: x\n \t\nTo: y\n",
    b"Subject: x\nTo: y\nnot a field\n", b"Subject: x\nnot a field\nTo: y\n", b"Subject: x\n\x0c\nTo: y",
    b"Subject: x\r\nTo: y\r\n", b"Subject: x\n\rTo: y\n", b"1st: x\nTo: y\n", b"X_Y-z: 1\nA:\n",
    b"Subject:x\nTo:\n\nbody", b"Subject: x\n\t \x0b\nTo: y", b"Subject: x\n \x0bz\nTo: y",
    b"A: 1\n" * 11 + b"junk\n", b"A: 1\n" * 12 + b"junk\n", b"A: 1\n" + b" c\n" * 11 + b"B: 2\n",
    b"A: 1\n" + b" c\n" * 10 + b"B: 2\n", b"A: 1\nB: 2\n" + b"junk" * 30, b"From x@y Mon\nA: 1\nB: 2\n",
]


@pytest.mark.parametrize("data", SHAPES)
def test_header_block_recognition_on_edge_shapes(data: bytes) -> None:
    assert looks_like_message(data) == _line_by_line(data)


def test_header_block_recognition_on_the_corpus_and_mangled_heads() -> None:
    need_shared()
    rng = random.Random(5)
    pieces = [b"\n", b" ", b"\t", b"\n\n", b"x", b":", b"\r", b"\x0c", b"-", b"A: b\n", b"\n c"]
    checked = 0
    for path in sorted(CORPUS.rglob("*")):
        if not path.is_file() or path.suffix in (".jsonl", ".md"):
            continue
        for chunk in split_mbox(normalise_newlines(path.read_bytes())):
            assert looks_like_message(chunk) == _line_by_line(chunk)
            head = bytearray(chunk[:600])
            for _ in range(3):
                i = rng.randrange(len(head) + 1)
                head[i:i] = rng.choice(pieces)
                assert looks_like_message(bytes(head)) == _line_by_line(bytes(head))
            checked += 1
    assert checked > 400


_SEPARATOR = re.compile(rb"^From \S+.*\d\d:\d\d(?::\d\d)?.*$", re.MULTILINE)


def _split_by_scanning(data: bytes) -> list[bytes]:
    """mbox splitting with the separator pattern searched over the whole text."""
    if not data.startswith(b"From "):
        return [data]
    return mbox_messages(data, [m.start() for m in _SEPARATOR.finditer(data)])


MBOXES = [
    b"From a@b Mon Dec  7 10:00:00 2026\nSubject: one\n\nFrom here on\n>From quoted\n"
    b"From c@d Mon Dec  7 10:01 2026\nSubject: two\n\nbody\nFrom nobody at all\n",
    b"From a@b no time\nSubject: x\n\nFrom c@d 10:00\n", b"From a@b 10:00", b"From  a@b 10:00\n\nx",
    b"Subject: no separator\n\nFrom a@b 10:00:00\nx\n", b"From a@b 1:00\nFrom c@d 12:00\nx\n",
    b"From a@b 10:00\n\n\nFrom c@d 11:00\n \n",
]


def test_mbox_splitting_finds_the_separators_scanning_would() -> None:
    datas = list(MBOXES)
    if CORPUS.is_dir():
        datas += [normalise_newlines(p.read_bytes()) for p in sorted(CORPUS.rglob("*"))
                  if p.is_file() and p.suffix not in (".jsonl", ".md")]
    for data in datas:
        assert split_mbox(data) == _split_by_scanning(data)


def test_charset_labels_name_their_codec_whether_resolved_at_import_or_on_the_spot() -> None:
    assert charset_name(None) == "utf-8"
    assert charset_name("iso-2022-jp") == "iso2022_jp"
    assert charset_name("us-ascii") == "utf-8"  # many "us-ascii" parts carry 8-bit text
    assert charset_name("windows-1252") == "cp1252"
    assert charset_name(' "Shift_JIS" ') == "shift_jis"
    assert charset_name("no-such-charset") == "utf-8"
    # an upper-case label is resolved on the spot: it names the codec its table entry does
    for label in [*_COMMON_CHARSETS, *_CHARSET_ALIASES]:
        assert charset_name(label.upper()) == charset_name(label)

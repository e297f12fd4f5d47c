"""The fast MIME reader builds exactly the tree the stdlib's parser builds."""

from __future__ import annotations

import email.message
import email.policy

import pytest

from bot.core.bounce import mime
from bot.core.bounce.message import normalise_newlines, split_mbox
from tests.corpus import CORPUS, need_shared


def _shape(msg: email.message.Message) -> object:
    payload = msg._payload  # type: ignore[attr-defined]
    body = [_shape(m) for m in payload] if isinstance(payload, list) else payload
    return (msg._headers, msg.preamble, msg.epilogue, msg.get_default_type(),  # type: ignore[attr-defined]
            msg.get_unixfrom(), msg.get_content_type(), mime.content_type_value(msg), body)


def _same_tree(data: bytes) -> None:
    try:
        fast = mime.message_from_bytes(data)
    except mime.Unsupported:
        return
    assert _shape(fast) == _shape(mime.stdlib_message_from_bytes(data))


EDGE_CASES = [
    b"",
    b"\n\n",
    b"Subject: x\n",
    b"Subject: x\nnot a header line\nbody\n",
    b" continuation first\nSubject: x\n\nbody",
    b":no name\nSubject: x\n\nbody",
    b"Subject: x\nContent-Type: multipart/mixed\n\nno boundary parameter\n",
    b'Content-Type: multipart/mixed; boundary="b"\n\npreamble only, no boundary line\n',
    b'Content-Type: multipart/mixed; boundary="b"\n\n--b\nContent-Type: text/plain\n\none\n--b\n\ntwo\n',
    b'Content-Type: multipart/mixed; boundary="b"\n\npre\n\n--b\n--b\n\none\n--b--\nepi\nlogue',
    b'Content-Type: multipart/mixed; boundary="b"\n\n--b\n\none\n--b--',
    b'Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: multipart/alternative; boundary=c\n\n'
    b"--c\n\ninner\n--c--\n\n--b\nContent-Type: message/rfc822\n\nSubject: in\n\nreturned\n\n--b--\n",
    b'Content-Type: multipart/report; boundary="b"\n\n--b\nContent-Type: message/delivery-status\n\n'
    b"Reporting-MTA: dns; x\n\nFinal-Recipient: rfc822; a@b\nAction: failed\nnot a field\n\n\n"
    b"Final-Recipient: rfc822; c@d\n--b--\n",
    b'Content-Type: multipart/digest; boundary="b"\n\n--b\n\nSubject: digest part\n\nx\n--b--\n',
    b'Content-Type: multipart/mixed; boundary="b"\n\n--b\nContent-Type: multipart/mixed; boundary="c"\n\n'
    b"--c\n\nunclosed inner\n--b\n\nsecond\n--b--\n",
    b"Content-Type: message/rfc822\n\nContent-Type: message/rfc822\n\nSubject: deep\n\nbody\n",
    b"Subject: form feed\x0cline\nX: \xe3\x81\x82 raw 8-bit\n\nbody\x0bwith\x1cseparators\n",
    # shapes the quick (whole-text) reader takes on itself
    b'Content-Type: multipart/mixed; boundary="b"\n\n--b \t\nContent-Type: text/plain\n\none\n\n'
    b"--b--  \nepi\n",
    b'Content-Type: multipart/mixed; boundary="b"\n\n--b\n--b\n--b\n\nafter repeats\n--b--\n',
    b'Content-Type: multipart/mixed; boundary="b"\n\n--bb\nnot a boundary\n--b\n\nx\n--b--x\n--b--\n',
    b'Content-Type: multipart/report; boundary="b"\n\n--b\nContent-Type: message/delivery-status\n\n'
    b"Reporting-MTA: dns; x\n\n\n\nFinal-Recipient: rfc822; a@b\nStatus: 5.0.0\n\n--b--\n",
    b'Content-Type: multipart/report; boundary="b"\n\n--b\nContent-Type: message/delivery-status\n\n'
    b"Final-Recipient: rfc822; a@b\nnot a field\nmore\n\nX: y\n--b--\n",
    b'Content-Type: multipart/mixed; boundary="b"\n\n--b\nContent-Type: message/rfc822\n\n'
    b'Subject: in\nContent-Type: multipart/alternative; boundary="c"\n\n--c\n\nunclosed\n--b--\n',
    b'Content-Type: multipart/mixed; boundary="b"\n\n--b\nContent-Type: message/rfc822\n\n'
    b'Subject: in\nContent-Type: multipart/alternative; boundary="c"\n\n--c\n\nclosed\n--c--\n\n--b--\n\n',
    b"Subject: x\n: no name\n  its continuation\nX-Blank:\n \nTo: y\n\nbody\n",
    b"CONTENT-TYPE: Text/HTML ; charset=x\n\n<p>x</p>\n",
    b"Content-Type: text\n\nnot a type\n",
    b'Content-Type: multipart/mixed; boundary="b"\n\n--b--\nclosing first\n',
    b'Content-Type: multipart/digest; boundary="b"\n\npre\n--b\n\nSubject: d\n\nx\n'
    b"--b\nContent-Type: text/plain\n\ny\n--b--\n",
    b"Subject: a\nbad line in the middle\nTo: c\n\nbody\n",
    b"X-Empty:\nX-Spaces:   \t\n\tcontinued\n  twice\nSubject:x\n\nbody\n",
    b'Content-Type: multipart/mixed; boundary="b"\n\n--b\nX-Only: headers\n\tfolded\n--b\n'
    b"X-Name-Only:\n--b--\n",
    b'Content-Type: multipart/digest; boundary="b"\n\n--b\nX-No-Type: so the default\n\n'
    b"Subject: d\n\nx\n--b--\n",
    b'Content-Type: multipart/mixed; boundary="b"\n\n--b\nContent-Type: multipart/alternative; boundary=c\n\n'
    b"no inner boundary\n\n--b\n\nnext\n--b--\nafter\n",
    b'Content-Type: multipart/mixed; boundary="b"\n\n--b\nContent-Type: message/rfc822\n\n'
    b'Content-Type: multipart/mixed; boundary="c"\n\ntruncated, no --c line\n--b--\n',
    b'Content-Type: multipart/mixed; boundary="b"\n\n--b\nContent-Type: multipart/mixed; boundary="c"\n\n',
]


@pytest.mark.parametrize("data", EDGE_CASES)
def test_same_tree_as_the_stdlib_on_edge_cases(data: bytes) -> None:
    _same_tree(data)


def test_same_tree_as_the_stdlib_on_every_corpus_message() -> None:
    need_shared()
    checked = 0
    for path in sorted(CORPUS.rglob("*")):
        if path.is_file() and path.suffix not in (".jsonl", ".md"):
            for chunk in split_mbox(normalise_newlines(path.read_bytes())):
                _same_tree(chunk)
                for cut in (len(chunk) // 3, len(chunk) // 2):
                    _same_tree(chunk[:cut])  # truncated mid-part
                checked += 1
    assert checked > 400


def test_the_quick_reader_takes_nearly_every_corpus_message_itself() -> None:
    need_shared()
    texts = [chunk.decode("ascii", "surrogateescape")
             for path in sorted((CORPUS / "sisimai").rglob("*"))
             if path.is_file() and path.suffix != ".jsonl"
             for chunk in split_mbox(normalise_newlines(path.read_bytes()))]
    quick = sum(mime._Quick(text).parse() is not None for text in texts if "\r" not in text)
    assert quick >= 0.9 * len(texts)


def test_carriage_returns_unix_from_lines_and_8bit_content_types_go_to_the_stdlib() -> None:
    eight_bit = b'Content-Type: multipart/mixed; boundary="\xe3\x81\x82"\n\n--\xe3\x81\x82\n\nx\n'
    for data in (b"Subject: x\r\n\r\nbody", b"Subject: x\nFrom someone\nTo: y\n\nbody", eight_bit):
        with pytest.raises(mime.Unsupported):
            mime.message_from_bytes(data)
        assert _shape(mime.parse(data)) == _shape(mime.stdlib_message_from_bytes(data))


ADDRESS_VALUES = [
    "a@b.example", "  Mail Delivery System <MAILER-DAEMON@mx.example.jp> ", "<bounce+x=y@example.com>",
    "John Q. Public <jqp@example.org>", '"Quoted, Name" <q@example.org>', "a@b", "a.b.c@d-e.f",
    "user@[192.0.2.1]", "a..b@example.com", ".a@example.com", "a@example.com.", "a@-x.example",
    "name <a@b> trailing", "(comment) a@b.example", "a@b.example (comment)", "<>", "", "x <y>",
    "Ünïcode <u@example.jp>", "a@b@c", "<a@b.example>, <c@d.example>", "   ",
    '"Neko, Nyaan" <kijitora@example.jp>', "MAILER-DAEMON@smtp.example.jp (Mail Delivery System)",
    '"Back\\slash" <b@example.jp>', '"Un"closed" <c@example.jp>', "a@b.example (nested (comment))",
    "a@b.example (Comment) <x@y.example>", '"Quoted" <not an address>',
]


@pytest.mark.parametrize("value", ADDRESS_VALUES)
def test_the_quick_address_reading_answers_as_parseaddr(value: str) -> None:
    from email.utils import parseaddr

    from bot.core.bounce import _address

    assert _address(value) == (parseaddr(value)[1] or None)


CONTENT_TYPES = [
    'multipart/mixed; boundary="abc"',
    "multipart/mixed;boundary=abc",
    'multipart/mixed; boundary = "a;b" ; x=y',
    'multipart/mixed; boundary="<abc>"',
    "multipart/mixed; boundary=<abc>",
    'multipart/mixed; BOUNDARY="x y "',
    'multipart/mixed; boundary=""',
    "multipart/mixed; boundary=abc def",
    'multipart/mixed; boundary="a"; boundary="b"',
    'multipart/mixed; boundary="a\\"b"',
    'multipart/report; report-type=delivery-status;\n\tboundary="4cD7.17/m.example"',
    "multipart/mixed; xboundary=q; boundary=r",
    'multipart/mixed; boundary="abc',
    "multipart/mixed; boundary=\"'q'\"",
    'multipart/mixed; name="x; boundary=y"; boundary=z',
]


@pytest.mark.parametrize("content_type", CONTENT_TYPES)
def test_the_quick_boundary_reading_answers_as_get_boundary(content_type: str) -> None:
    msg = email.message.Message(policy=email.policy.compat32)
    msg["Content-Type"] = content_type
    quick = mime._simple_boundary(content_type)
    assert quick is None or quick == msg.get_boundary()


def test_same_tree_and_no_crash_on_mangled_corpus_messages() -> None:
    """Cut, spliced and bit-flipped real bounces: the same tree as the stdlib, never an exception."""
    import random

    need_shared()
    rng = random.Random(3)
    sources = [p.read_bytes() for p in sorted((CORPUS / "sisimai" / "maildir" / "bsd").glob("*.eml"))]
    inserts = [b"\n--", b"\n\n", b'Content-Type: multipart/mixed; boundary="x"\n', b"\n--x\n", b"\n--x--\n",
               b"From x\n", b" \t", b"\x00\xff", b"Content-Type: message/rfc822\n\n",
               b"Content-Type: message/delivery-status\n\n", b"\xe3\x81\x82"]
    for _ in range(400):
        data = bytearray(rng.choice(sources))
        for _ in range(rng.randint(1, 8)):
            i = rng.randrange(max(1, len(data)))
            roll = rng.random()
            if roll < 0.3:
                del data[i : i + rng.randint(1, 200)]
            elif roll < 0.6:
                data[i:i] = rng.choice(inserts)
            else:
                data[i : i + 1] = bytes([rng.randrange(256)])
        _same_tree(normalise_newlines(bytes(data)))


CHARSET_TYPES = [
    "text/plain", "text/plain; charset=utf-8", 'text/plain; charset="ISO-2022-JP"',
    "text/plain;charset=Shift_JIS", 'text/plain; format=flowed; charset="us-ascii"; delsp=yes',
    "text/plain; charset = koi8-r ; x=y", 'text/plain; name="a;b"; charset=utf-8',
    'text/plain; charset="utf-8', "text/plain; charset=", "text/plain; charset",
    "text/plain; charset*=utf-8''x", "text/plain; CHARSET=Big5; charset=gbk", 'text/plain; charset="a\\"b"',
    "text/plain; charset=<utf-8>", "charset=utf-8", "text/plain; x-charset=q", 'text/plain; charset=""',
]


@pytest.mark.parametrize("content_type", CHARSET_TYPES)
def test_the_quick_charset_reading_answers_as_get_content_charset(content_type: str) -> None:
    from bot.core.bounce.message import content_charset

    msg = email.message.Message(policy=email.policy.compat32)
    msg["Content-Type"] = content_type
    assert content_charset(msg) == msg.get_content_charset()


def test_the_direct_payload_reading_answers_as_get_payload() -> None:
    from bot.core.bounce.message import _payload

    need_shared()
    datas = [*EDGE_CASES, b"Subject: 8-bit\nContent-Type: text/plain; charset=utf-8\n\n\xe3\x81\x82\n"]
    for path in sorted((CORPUS / "sisimai").rglob("*.eml"))[:150]:
        datas.extend(split_mbox(normalise_newlines(path.read_bytes())))
    for data in datas:
        for part in mime.parse(data).walk():
            assert _payload(part) == part.get_payload()

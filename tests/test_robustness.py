"""Garbage, truncated MIME, huge pastes and odd charsets get an answer, never a traceback."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.core.bounce import MAX_DIAGNOSTIC
from bot.service.diagnose import diagnose_bytes

QMAIL = (b"Hi. This is the qmail-send program at mx.example.net.\n"
         b"I'm afraid I wasn't able to deliver your message to the following addresses.\n\n"
         b"<user@example.com>:\nRemote host said: 550 5.1.1 <user@example.com>... User unknown\n\n")


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=4000))
def test_random_bytes_never_raise(data):
    for diagnosis in diagnose_bytes(data, "fuzz"):
        assert diagnosis.summary


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=3000))
def test_random_text_never_raises(text):
    for diagnosis in diagnose_bytes(text.encode("utf-8", "surrogatepass"), "fuzz"):
        assert diagnosis.summary


@settings(max_examples=100, deadline=None)
@given(st.integers(min_value=0, max_value=len(QMAIL)))
def test_truncated_bounce_never_raises(cut):
    for diagnosis in diagnose_bytes(QMAIL[:cut], "cut"):
        assert diagnosis.summary


def test_truncated_mime_report_still_reads_what_is_there():
    message = (b"From: MAILER-DAEMON@example.net\nSubject: Undelivered Mail Returned to Sender\n"
               b"MIME-Version: 1.0\nContent-Type: multipart/report; report-type=delivery-status; "
               b"boundary=\"B\"\n\n"
               b"--B\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.example.net\n\n"
               b"Final-Recipient: rfc822; user@example.com\nAction: failed\nStatus: 5.2.2\n"
               b"Diagnostic-Code: smtp; 552 5.2.2 Mailbox full")  # no closing boundary
    (d,) = diagnose_bytes(message, "truncated")
    assert d.is_bounce and d.recipients[0].address == "user@example.com"
    assert str(d.reason) == "mailboxfull"


def test_five_megabyte_paste_is_answered():
    paste = QMAIL + b"x" * (5 * 1024 * 1024)
    (d,) = diagnose_bytes(paste, "huge")
    assert d.is_bounce and str(d.reason) == "userunknown"


def test_a_runaway_paste_of_smtp_like_chatter_gets_a_readable_evidence_line():
    # Megabytes of words with reply codes in them, no blank line: read as one long "reply".
    words = b"550 mail host blocked delivery status the user example.com error "
    paste = b"Delivery failed:\n" + b"\n".join([words * 4] * 20000)
    (d,) = diagnose_bytes(paste, "runaway")
    assert d.is_bounce
    assert len(d.evidence or "") <= MAX_DIAGNOSTIC + 2 and (d.evidence or "").endswith(" …")
    assert all(len(r.diagnostic) <= MAX_DIAGNOSTIC + 2 for r in d.recipients)


def test_a_rejection_followed_by_megabytes_of_chatter_still_names_its_list():
    paste = (b"550 5.7.1 Service unavailable; Client host [203.0.113.5] blocked using "
             b"b.barracudacentral.org\n" + b"and then the thread went on and on\n" * 150000)
    (d,) = diagnose_bytes(paste, "long")
    assert d.blocklist == "barracuda" and d.sending_ip == "203.0.113.5"


def test_hostile_text_is_kept_as_data():
    paste = (b"550 5.7.1 <!channel> {{ 7*7 }} <script>alert(1)</script> "
             b"Client host [203.0.113.5] blocked using zen.spamhaus.org")
    (d,) = diagnose_bytes(paste, "hostile")
    assert d.blocklist == "spamhaus" and "<!channel>" in (d.evidence or "")


def _dsn(charset: str, encoded: bytes, cte: str = "8bit") -> bytes:
    return (b"From: MAILER-DAEMON@example.jp\nSubject: Returned mail\nMIME-Version: 1.0\n"
            b"Content-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\n\n"
            b"--B\nContent-Type: text/plain; charset=" + charset.encode() + b"\nContent-Transfer-Encoding: "
            + cte.encode() + b"\n\n" + encoded + b"\n--B\nContent-Type: message/delivery-status\n\n"
            b"Reporting-MTA: dns; mx.example.jp\n\nFinal-Recipient: rfc822; user@example.jp\nAction: failed\n"
            b"Status: 5.1.1\n\n--B--\n")


def test_japanese_charsets_decode():
    text = "宛先のメールアドレスが見つかりません。\n550 5.1.1 <user@example.jp>... User unknown"
    for charset in ("iso-2022-jp", "shift_jis", "euc-jp", "utf-8"):
        (d,) = diagnose_bytes(_dsn(charset, text.encode(charset)), charset)
        assert d.is_bounce and str(d.reason) == "userunknown", charset


def test_base64_and_quoted_printable_bodies_decode():
    import base64
    import quopri
    text = "Remote host said: 552 5.2.2 Mailbox full (Postfach voll, ü)".encode("iso-8859-1")
    for cte, body in (("base64", base64.encodebytes(text)), ("quoted-printable", quopri.encodestring(text))):
        (d,) = diagnose_bytes(_dsn("iso-8859-1", body, cte), cte)
        assert str(d.reason) == "mailboxfull", cte


_HELDOUT = sorted((Path(__file__).parent / "heldout").iterdir())


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(_HELDOUT), st.lists(
    st.tuples(st.integers(0, 1), st.floats(0, 1), st.floats(0, 1), st.binary(max_size=12)),
    min_size=1, max_size=12))
def test_mangled_real_bounces_never_raise(path, edits):
    """Real-shaped bounces with bytes cut, inserted and repeated: the readers' edge cases
    (transcripts, Exchange lines, dotted numbers that are not addresses) still answer."""
    data = bytearray(path.read_bytes())
    for kind, where, other, junk in edits:
        at = int(where * len(data))
        if kind == 0:
            del data[at:at + 1 + len(junk) * 4]
        else:
            start = int(other * len(data))
            data[at:at] = junk + data[start:start + 120]
    for diagnosis in diagnose_bytes(bytes(data), path.name):
        assert diagnosis.summary

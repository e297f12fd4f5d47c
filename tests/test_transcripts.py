"""Bounces that carry the SMTP session instead of a summary (MDaemon, Kerio, hMailServer and
others log "--> command" / "<-- reply" lines): each refused recipient is the RCPT TO the refusal
answered, or every accepted one when the server refused after DATA."""

from __future__ import annotations

from bot.service.diagnose import diagnose_bytes

HEAD = """From: "Mail Server" <postmaster@mail.shop.example>
To: orders@shop.example
Subject: Permanent Delivery Failure

The attached message had PERMANENT fatal delivery errors!

Session Transcript:
"""


def transcript(*lines: str) -> bytes:
    stamped = [f"Thu 2026-11-12 09:02:{n:02d}.100: {line}" for n, line in enumerate(lines)]
    return (HEAD + "\n".join(["Attempting SMTP connection to [mx.customer.example]", *stamped])
            + "\n").encode()


def test_a_refused_rcpt_names_that_recipient_and_the_list():
    d = diagnose_bytes(transcript(
        "<-- 220 mx.customer.example ESMTP",
        "--> MAIL From:<orders@shop.example>",
        "<-- 250 2.1.0 Ok",
        "--> RCPT To:<ines@customer.example>",
        "<-- 554 5.7.1 Service unavailable; Client host [198.51.100.61] blocked using bl.spamcop.net",
        "--> QUIT",
        "<-- 221 Bye",
    ), "t")[0]
    [r] = d.recipients
    assert (r.address, r.status, r.reply_code, str(r.reason)) == (
        "ines@customer.example", "5.7.1", "554", "blocked")
    assert r.diagnostic.endswith("bl.spamcop.net")  # the QUIT after it is not part of the reply
    assert r.remote_mta == "mx.customer.example"
    assert (d.sending_ip, d.blocklist) == ("198.51.100.61", "spamcop")


def test_a_multi_line_refusal_is_read_as_one_reply():
    d = diagnose_bytes(transcript(
        "--> RCPT To:<sue@customer.example>",
        "<-- 550-5.7.1 [198.51.100.62] Our system has detected that this message is likely",
        "<-- 550-5.7.1 unsolicited mail. To reduce the amount of spam sent to Gmail,",
        "<-- 550 5.7.1 this message has been blocked.",
    ), "t")[0]
    [r] = d.recipients
    assert r.diagnostic == ("550 5.7.1 [198.51.100.62] Our system has detected that this message "
                            "is likely unsolicited mail. To reduce the amount of spam sent to "
                            "Gmail, this message has been blocked.")


def test_a_refusal_after_data_applies_to_every_accepted_recipient_in_their_order():
    d = diagnose_bytes(transcript(
        "--> RCPT To:<ines@customer.example>",
        "<-- 250 2.1.5 Ok",
        "--> RCPT To:<Max@customer.example>",
        "<-- 550 5.1.1 <Max@customer.example>: Recipient address rejected: User unknown",
        "--> RCPT To:<zoe@customer.example>",
        "<-- 250 2.1.5 Ok",
        "--> DATA",
        "<-- 354 End data with <CR><LF>.<CR><LF>",
        "--> <message text sent>",
        "<-- 554 5.7.1 Message rejected as spam by Content Filtering.",
    ), "t")[0]
    assert [(r.address, str(r.reason)) for r in d.recipients] == [
        ("ines@customer.example", "spamdetected"),
        ("Max@customer.example", "userunknown"),
        ("zoe@customer.example", "spamdetected"),
    ]


def test_a_transcript_where_every_recipient_was_accepted_is_not_read_as_refusals():
    d = diagnose_bytes(transcript(
        "--> RCPT To:<ines@customer.example>",
        "<-- 250 2.1.5 Ok",
        "--> DATA",
        "<-- 354 go ahead",
        "--> .",
        "<-- 250 2.0.0 queued as 4711",
    ), "t")[0]
    assert not [r for r in d.recipients if r.address == "ines@customer.example"
                and r.reply_code and r.reply_code.startswith("5")]

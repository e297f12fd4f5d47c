"""A bounce forwarded as an attachment (Outlook's and Gmail's "Forward as attachment", or a mail
sent to the channel's address with the bounce attached): the covering note is not a bounce, the
attached message is, and that is what the operator means."""

from __future__ import annotations

from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import default

from bot.service.diagnose import diagnose_bytes

DSN = b"""From: MAILER-DAEMON@out.agency.example (Mail Delivery System)
To: news@agency.example
Subject: Undelivered Mail Returned to Sender
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="R"

--R
Content-Type: text/plain

<ann@contoso.example>: host contoso-example.mail.protection.outlook.com[52.101.1.1]
    said: 550 5.7.606 Access denied, banned sending IP [203.0.113.61]. To request
    removal from this list please visit https://sender.office.com/ and follow the
    directions. (AS16012609) (in reply to RCPT TO command)

--R
Content-Type: message/delivery-status

Reporting-MTA: dns; out.agency.example

Final-Recipient: rfc822; ann@contoso.example
Action: failed
Status: 5.7.606
Diagnostic-Code: smtp; 550 5.7.606 Access denied, banned sending IP [203.0.113.61].

--R--
"""


def forward(inner: bytes, note: str = "Can someone look at this one?") -> bytes:
    cover = EmailMessage()
    cover["From"] = "alice@agency.example"
    cover["To"] = "deliverability@agency.example"
    cover["Subject"] = "Fwd: Undelivered Mail Returned to Sender"
    cover.set_content(note)
    cover.add_attachment(BytesParser(policy=default).parsebytes(inner))
    return cover.as_bytes()


def test_a_bounce_forwarded_as_an_attachment_is_diagnosed_from_the_attachment():
    [d] = diagnose_bytes(forward(DSN), "fwd.eml")
    assert d.is_bounce
    assert (d.recipients[0].address, d.recipients[0].status) == ("ann@contoso.example", "5.7.606")
    assert (d.sending_ip, d.receiver) == ("203.0.113.61", "microsoft_eop")


def test_a_forward_of_a_forward_still_reaches_the_bounce():
    [d] = diagnose_bytes(forward(forward(DSN), note="see below"), "fwd2.eml")
    assert d.is_bounce and d.sending_ip == "203.0.113.61"


def test_a_mail_with_an_ordinary_attached_message_is_still_not_a_bounce():
    chat = b"From: bob@agency.example\nTo: alice@agency.example\nSubject: lunch\n\nNoon?\n"
    [d] = diagnose_bytes(forward(chat), "fwd3.eml")
    assert not d.is_bounce
    assert d.not_bounce_reason


def test_attachments_nested_without_end_do_not_recurse_forever():
    data = b"From: a@b.example\nSubject: hi\n\nhello\n"
    for _ in range(12):
        data = forward(data)
    [d] = diagnose_bytes(data, "deep.eml")
    assert not d.is_bounce  # twelve covering notes and a chat: no bounce, and no recursion error

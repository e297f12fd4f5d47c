"""The same rejection, written by different MTAs, gets the same verdict.

Each line below is a receiver's or list's real wording (providers.md); each layout is how an MTA
wraps a remote reply in its bounce: Postfix's DSN, Exim's and qmail's text, Sendmail's transcript,
Gmail as the sending service, Exchange 2010's line for administrators, MDaemon's session log, and a
reply pasted from a mail client, quoted and re-wrapped. What the operator needs (reason, refused
IP, receiver, list, delist route) must not depend on which MTA wrote the bounce.
"""

from __future__ import annotations

import textwrap

import pytest

from bot.service.diagnose import diagnose_bytes

SUBMITTER = "10.0.0.5"  # the app server that handed the mail over: never the refused IP


def postfix(rcpt, mx, mxip, line):
    """Postfix's multipart/report: its text part, the DSN fields, the returned headers."""
    return f"""From: MAILER-DAEMON@mail.sender.example (Mail Delivery System)
To: news@sender.example
Subject: Undelivered Mail Returned to Sender
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="B1"

--B1
Content-Type: text/plain

This is the mail system at host mail.sender.example.

I'm sorry to have to inform you that your message could not
be delivered to one or more recipients.

<{rcpt}>: host {mx}[{mxip}] said: {line} (in reply to RCPT TO command)

--B1
Content-Type: message/delivery-status

Reporting-MTA: dns; mail.sender.example
Arrival-Date: Mon, 23 Nov 2026 10:00:00 +0000

Final-Recipient: rfc822; {rcpt}
Action: failed
Status: 5.0.0
Remote-MTA: dns; {mx}
Diagnostic-Code: smtp; {line}

--B1
Content-Type: text/rfc822-headers

Received: from app1 (app1.sender.example [{SUBMITTER}])
From: news@sender.example
To: {rcpt}
Subject: hello

--B1--
"""


def exim(rcpt, mx, mxip, line):
    """Exim's plain-text template, the reply indented under the address."""
    return f"""From: Mail Delivery System <Mailer-Daemon@mx.sender.example>
To: news@sender.example
Subject: Mail delivery failed: returning message to sender

This message was created automatically by mail delivery software.

A message that you sent could not be delivered to one or more of its
recipients. This is a permanent error. The following address(es) failed:

  {rcpt}
    host {mx} [{mxip}]
    SMTP error from remote mail server after RCPT TO:<{rcpt}>:
    {line}

------ This is a copy of the message, including all the headers. ------

Received: from [{SUBMITTER}] (helo=app1)
From: news@sender.example
To: {rcpt}
Subject: hello
"""


def pasted(rcpt, mx, mxip, line):
    """Exchange's NDR as a mail client quotes it when forwarding: "> " and re-wrapped at 60."""
    wrapped = textwrap.fill(f"Remote Server returned '{line}'", 60, break_on_hyphens=False)
    return f"""> From: Mail Delivery Subsystem
> Sent: Monday, November 23, 2026 10:00 AM
> Subject: Undeliverable: hello
>
> Delivery has failed to these recipients or groups:
> {rcpt}
>
""" + "\n".join("> " + row for row in wrapped.splitlines()) + "\n"


def sendmail(rcpt, mx, mxip, line):
    """Sendmail without DSN: the reason line and the session transcript."""
    return f"""From: Mail Delivery Subsystem <MAILER-DAEMON@mail.sender.example>
To: <news@sender.example>
Subject: Returned mail: see transcript for details

The original message was received at Mon, 23 Nov 2026 10:00:00 GMT
from app1.sender.example [{SUBMITTER}]

   ----- The following addresses had permanent fatal errors -----
<{rcpt}>
    (reason: {line})

   ----- Transcript of session follows -----
... while talking to {mx}.:
>>> DATA
<<< {line}
554 5.0.0 {rcpt}... Service unavailable
"""


def gmail_sender(rcpt, mx, mxip, line):
    """Gmail as the sending service: the recipient named in a sentence."""
    return f"""From: Mail Delivery Subsystem <mailer-daemon@googlemail.com>
To: news@sender.example
Subject: Delivery Status Notification (Failure)
Content-Type: text/plain; charset="UTF-8"

** Message not delivered **

There was a problem delivering your message to {rcpt}. See the technical details below, or
try resending in a few minutes.

The response from the remote server was:
{line}
"""


def exch2010(rcpt, mx, mxip, line):
    """Exchange 2010 on-premises: the line for administrators, "host #reply ##"."""
    return f"""From: postmaster@sender.example
To: news@sender.example
Subject: Undeliverable: hello
Content-Type: text/plain; charset="us-ascii"

Delivery has failed to these recipients or groups:

{rcpt}
A problem occurred during the delivery of this message to this e-mail address. Try sending this
message again. If the problem continues, please contact your helpdesk.

Diagnostic information for administrators:

Generating server: EXCH01.sender.example

{rcpt}
{mx} #{line} ##

Original message headers:

Received: from EXCH01.sender.example (10.0.0.8) by EXCH01.sender.example
 (10.0.0.8) with Microsoft SMTP Server id 14.3.123.3; Mon, 23 Nov 2026 10:00:00 +0000
"""


def mdaemon(rcpt, mx, mxip, line):
    """MDaemon: the SMTP session log, the refusal answering RCPT TO."""
    return f"""From: "MDaemon at sender.example" <MDaemon@sender.example>
To: news@sender.example
Subject: Permanent Delivery Failure

The attached message had PERMANENT fatal delivery errors!

After one or more unsuccessful delivery attempts the attached message has
been removed from the mail queue on this server.  The number and frequency
of delivery attempts are determined by local configuration parameters.

YOU DO NOT NEED TO RESEND THIS MESSAGE.

Session Transcript:
----------------------------------------------------------
Mon 2026-11-23 10:00:00: Parsing message <pd50000001234.msg>
Mon 2026-11-23 10:00:00: *  From: news@sender.example
Mon 2026-11-23 10:00:00: *  To: {rcpt}
Mon 2026-11-23 10:00:00: Attempting SMTP connection to [{mx}]
Mon 2026-11-23 10:00:00: Connecting to {mxip}:25...
Mon 2026-11-23 10:00:01: Connection established {SUBMITTER}:49152 --> {mxip}:25
Mon 2026-11-23 10:00:01: --> MAIL From:<news@sender.example> SIZE=1234
Mon 2026-11-23 10:00:01: <-- 250 OK
Mon 2026-11-23 10:00:01: --> RCPT To:<{rcpt}>
Mon 2026-11-23 10:00:01: <-- {line}
Mon 2026-11-23 10:00:01: --> QUIT
"""


def qmail(rcpt, mx, mxip, line):
    """qmail-send's template, as in the seed bounce."""
    return f"""From: MAILER-DAEMON@mail.sender.example
To: news@sender.example
Subject: failure notice

Hi. This is the qmail-send program at mail.sender.example.
I'm afraid I wasn't able to deliver your message to the following addresses.
This is a permanent error; I've given up. Sorry it didn't work out.

<{rcpt}>:
{mxip} does not like recipient.
Remote host said: {line}
Giving up on {mxip}.

--- Below this line is a copy of the message.

Return-Path: <news@sender.example>
"""


LAYOUTS = {f.__name__: f for f in (postfix, exim, sendmail, pasted, gmail_sender, exch2010, mdaemon,
                                    qmail)}

# name: (recipient, MX host, MX IP, rejection, expected (reason, ip, receiver, list, method))
CASES = {
    "spamhaus": ("bob@example.org", "mail.example.org", "192.0.2.4",
                 "554 5.7.1 Service unavailable; Client host [198.51.100.23] blocked using "
                 "zen.spamhaus.org; https://www.spamhaus.org/query/ip/198.51.100.23",
                 ("blocked", "198.51.100.23", None, "spamhaus", "web")),
    "open-resolver": ("bob@example.org", "mail.example.org", "192.0.2.4",
                      "554 5.7.1 Service unavailable; Client host [198.51.100.23] blocked using "
                      "zen.spamhaus.org; Error: open resolver; https://www.spamhaus.org/returnc/pub/"
                      "172.64.0.1", ("blocked", "198.51.100.23", None, "spamhaus", "contact_recipient")),
    "microsoft-606": ("ann@contoso.com", "contoso-com.mail.protection.outlook.com", "52.101.1.1",
                      "550 5.7.606 Access denied, banned sending IP [198.51.100.23]. To request "
                      "removal from this list please visit https://sender.office.com/ and follow "
                      "the directions. (AS16012609)",
                      ("blocked", "198.51.100.23", "microsoft_eop", "microsoft_eop", "web")),
    "microsoft-513": ("ann@contoso.com", "contoso-com.mail.protection.outlook.com", "52.101.1.1",
                      "550 5.7.513 Service unavailable, Client host [198.51.100.23] blocked by "
                      "contoso.com using Customer Block list (AS16012607)",
                      ("blocked", "198.51.100.23", "microsoft_eop", None, "contact_recipient")),
    "outlook-s3150": ("tom@hotmail.com", "hotmail-com.olc.protection.outlook.com", "52.101.1.1",
                      "550 5.7.1 Unfortunately, messages from [198.51.100.23] weren't sent. Please "
                      "contact your Internet service provider since part of their network is on "
                      "our block list (S3150).",
                      ("blocked", "198.51.100.23", "outlook_com", "outlook_com", "web")),
    "yahoo-bl21": ("pat@yahoo.com", "mta7.am0.yahoodns.net", "67.195.204.72",
                   "553 5.7.1 [BL21] Connections will not be accepted from 198.51.100.23, because "
                   "the ip is in Spamhaus's list; see https://postmaster.yahooinc.com/error-codes",
                   ("blocked", "198.51.100.23", "yahoo_aol", "spamhaus", "web")),
    "comcast-bl000010": ("joe@comcast.net", "mx1.comcast.net", "96.114.157.80",
                         "554 5.1.0 resimta-ch2-08v.sys.comcast.net 198.51.100.23 found on one or "
                         "more DNSBLs, see http://postmaster.comcast.net/smtp-error-codes.php#BL000010",
                         ("blocked", "198.51.100.23", "comcast", "cloudmark_csi", "web")),
    "t-online-nowl": ("hans@t-online.de", "mx00.t-online.de", "194.25.134.8",
                      "554 IP=198.51.100.23 - None/bad reputation. Ask your postmaster for help or "
                      "to contact <postmaster@rx.t-online.de> / tobr@rx.t-online.de for reset. (NOWL)",
                      ("blocked", "198.51.100.23", "t_online", "t_online", "email")),
    "uceprotect": ("bob@example.org", "mail.example.org", "192.0.2.4",
                   "554 5.7.1 Service unavailable; Client host [198.51.100.23] blocked using "
                   "dnsbl-2.uceprotect.net; Net 198.51.100.0/24 is UCEPROTECT-Level2 listed",
                   # Level 2 lists the neighbourhood: only the receiver can stop using it (B4).
                   ("blocked", "198.51.100.23", None, "uceprotect", "contact_recipient")),
    "sorbs-defunct": ("bob@example.org", "mail.example.org", "192.0.2.4",
                      "554 5.7.1 Service unavailable; Client host [198.51.100.23] blocked using "
                      "dnsbl.sorbs.net; Currently Sending Spam",
                      ("blocked", "198.51.100.23", None, "sorbs", "contact_recipient")),
    "gmail-ptr": ("sue@gmail.com", "gmail-smtp-in.l.google.com", "142.250.1.27",
                  "550-5.7.25 [198.51.100.23] The IP address sending this message does not have a "
                  "550-5.7.25 PTR record setup, or the corresponding forward DNS entry does not "
                  "550-5.7.25 point to the sending IP. - gsmtp",
                  ("requireptr", "198.51.100.23", "google_gmail", None, "fix_sender")),
    "talos": ("bob@example.org", "esa1.example.iphmx.com", "68.232.1.1",
              "554 Your access to this mail system has been rejected due to the sending MTA's poor "
              "reputation. If you believe that this failure is in error, please contact the "
              "intended recipient via alternate means.",
              ("badreputation", None, "cisco_talos", "cisco_talos", "web")),
}


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
@pytest.mark.parametrize("case", sorted(CASES))
def test_the_verdict_does_not_depend_on_the_mta_that_wrote_the_bounce(case: str, layout: str):
    rcpt, mx, mx_ip, line, expected = CASES[case]
    [d] = diagnose_bytes(LAYOUTS[layout](rcpt, mx, mx_ip, line).encode(), f"{case}-{layout}")
    assert (str(d.reason), d.sending_ip, d.receiver, d.blocklist, str(d.delist.method)) == expected

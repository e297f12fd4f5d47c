"""How the engine weighs a bounce's evidence: status code (RFC 3463), the SMTP command the reply
answered (RFC 5321), the words, the DSN's fields (RFC 3464) and what the bounce's writer states.

Every bounce here is small and hand-written in the shape real MTAs use; none is a corpus copy.
"""

from __future__ import annotations

import pytest

from bot.core.bounce.text import command_of, join_reply_lines
from bot.core.model import DelistMethod, Reason
from bot.service.diagnose import diagnose_bytes


def reasons(raw: str) -> list[tuple[str | None, Reason]]:
    return [(r.address, r.reason) for d in diagnose_bytes(raw.encode(), "t") for r in d.recipients]


def dsn(*recipient_blocks: str, text: str = "Delivery failed.\n", headers: str = "") -> str:
    """A multipart/report DSN from the given message/delivery-status recipient paragraphs."""
    return (
        "From: MAILER-DAEMON@mx.example.net\nTo: sender@example.org\n"
        "Subject: Undelivered Mail Returned to Sender\nMIME-Version: 1.0\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\n' + headers + "\n"
        "--B\nContent-Type: text/plain\n\n" + text + "\n"
        "--B\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.example.net\n\n"
        + "\n\n".join(recipient_blocks) + "\n\n"
        "--B\nContent-Type: text/rfc822-headers\n\nFrom: sender@example.org\nTo: user@example.com\n"
        "Subject: hello\n\n--B--\n"
    )


POSTFIX = """From: MAILER-DAEMON@mx.example.org (Mail Delivery System)
To: sender@example.org
Subject: Undelivered Mail Returned to Sender

This is the mail system at host mx.example.org.

                   The mail system

{body}
"""


# --- "user unknown": the status code and the SMTP command decide between userunknown and filtered


def test_user_unknown_answered_to_rcpt_is_a_missing_mailbox_even_when_the_line_wraps():
    body = ("<user@example.com>: host mx.example.com[192.0.2.1] said: 550\n"
            "    <user@example.com>: User unknown (in reply to\n    RCPT TO command)")
    assert reasons(POSTFIX.format(body=body)) == [("user@example.com", Reason.USERUNKNOWN)]


def test_user_unknown_answered_after_data_is_a_filter_refusing_the_message():
    body = ("<user@example.com>: host mx.example.com[192.0.2.1] said: 550 Unknown user\n"
            "    user@example.com (in reply to end of DATA command)")
    assert reasons(POSTFIX.format(body=body)) == [("user@example.com", Reason.FILTERED)]


def test_status_5_1_1_means_no_such_mailbox_whatever_command_the_transcript_ends_on():
    text = ("   ----- Transcript of session follows -----\n... while talking to mx.example.com.:\n"
            ">>> DATA\n<<< 550 5.1.1 <user@example.com>... User Unknown\n")
    block = ("Final-Recipient: RFC822; user@example.com\nAction: failed\nStatus: 5.1.1\n"
             "Diagnostic-Code: SMTP; 550 5.1.1 <user@example.com>... User Unknown")
    assert reasons(dsn(block, text=text)) == [("user@example.com", Reason.USERUNKNOWN)]


def test_a_sender_refusal_coded_5_1_8_is_not_mistaken_for_a_missing_recipient():
    block = ("Final-Recipient: rfc822; user@example.com\nAction: failed\nStatus: 5.1.8\n"
             "Diagnostic-Code: smtp; 501 5.1.8 Sender address rejected")
    assert reasons(dsn(block)) == [("user@example.com", Reason.REJECTED)]


def test_the_command_is_read_from_each_mta_s_own_wording():
    assert command_of("SMTP error from remote mail server after RCPT TO:<a@example.com>:") == "RCPT"
    assert command_of("SMTP error from remote mail server after end of data:") == "DATA"
    assert command_of("(in reply to\n    MAIL FROM command)") == "MAIL"
    assert command_of("192.0.2.1 does not like recipient.\nRemote host said: 550 no") == "RCPT"
    assert command_of("most progress was RCPT TO response; remote host said: 550 x") == "RCPT"
    assert command_of(">>> RCPT To:<a@example.com>\n<<< 550 5.1.1 unknown") == "RCPT"
    assert command_of("550 5.1.1 unknown") is None


def test_access_denied_in_reply_to_mail_from_refuses_the_sender():
    body = ("<user@example.com>: host mx.example.com[192.0.2.1] said: 550 5.7.1 Access denied\n"
            "    (in reply to MAIL FROM command)")
    assert reasons(POSTFIX.format(body=body)) == [("user@example.com", Reason.REJECTED)]


# --- vague status codes give way to the words; precise ones stand


def test_a_vague_5_7_1_gives_way_to_the_words():
    body = ("<user@example.com>: host mx.example.com[192.0.2.1] said: 554 5.7.1 <user@example.com>:\n"
            "    This system is not configured to relay mail (in reply to RCPT TO command)")
    assert reasons(POSTFIX.format(body=body)) == [("user@example.com", Reason.NORELAYING)]


def test_5_5_0_alone_is_not_a_syntax_error_when_the_words_name_the_problem():
    block = ("Final-Recipient: rfc822; user@example.com\nAction: failed\nStatus: 5.5.0\n"
             "Diagnostic-Code: smtp; 554 The mail could not be delivered to the recipient because "
             "the domain is not reachable.")
    assert reasons(dsn(block)) == [("user@example.com", Reason.HOSTUNKNOWN)]


def test_a_command_rejected_with_501_and_no_other_words_is_a_syntax_error():
    block = ("Final-Recipient: rfc822; user@example.com\nAction: failed\nStatus: 5.0.0\n"
             "Diagnostic-Code: smtp; 501 Invalid parameter")
    assert reasons(dsn(block)) == [("user@example.com", Reason.SYNTAXERROR)]


def test_a_bare_451_is_a_local_processing_error_at_the_receiver():
    block = ("Final-Recipient: rfc822; user@example.com\nAction: failed\nStatus: 4.0.0\n"
             "Diagnostic-Code: smtp; 451 Could not look up the routing table")
    assert reasons(dsn(block)) == [("user@example.com", Reason.SYSTEMERROR)]


def test_the_per_mailbox_size_limit_is_exceedlimit_and_the_system_limit_mesgtoobig():
    per_mailbox = ("Final-Recipient: rfc822; a@example.com\nAction: failed\nStatus: 5.2.3\n"
                   "Diagnostic-Code: smtp; 552 5.2.3 Message size exceeds fixed maximum message size")
    system = ("Final-Recipient: rfc822; b@example.com\nAction: failed\nStatus: 5.3.4\n"
              "Diagnostic-Code: smtp; 552 5.3.4 Message size exceeds fixed maximum message size")
    assert reasons(dsn(per_mailbox, system)) == [("a@example.com", Reason.EXCEEDLIMIT),
                                                 ("b@example.com", Reason.MESGTOOBIG)]


def test_a_connection_timeout_after_retries_is_expiry_and_disk_space_is_the_system_s():
    timeout = ("Final-Recipient: rfc822; a@example.com\nAction: failed\nStatus: 4.4.1\n"
               "Diagnostic-Code: X-Postfix; connect to mx.example.com[192.0.2.1]:25: Connection timed out")
    disk = ("Final-Recipient: rfc822; b@example.com\nAction: failed\nStatus: 4.4.5\n"
            "Diagnostic-Code: smtp; 452 4.4.5 Insufficient disk space; try again later")
    assert reasons(dsn(timeout, disk)) == [("a@example.com", Reason.EXPIRED),
                                           ("b@example.com", Reason.SYSTEMFULL)]


def test_a_virus_finding_beats_the_word_content_rejected():
    block = ("Final-Recipient: rfc822; user@example.com\nAction: failed\nStatus: 5.0.0\n"
             "Diagnostic-Code: smtp; 550 Virus Detected; Content Rejected")
    assert reasons(dsn(block)) == [("user@example.com", Reason.VIRUSDETECTED)]


def test_a_duplicated_dkim_signature_header_is_a_format_fault_not_an_authentication_failure():
    block = ("Final-Recipient: rfc822; user@example.com\nAction: failed\nStatus: 5.0.0\n"
             "Diagnostic-Code: smtp; 554 Transaction failed: Duplicate header 'DKIM-Signature'.")
    assert reasons(dsn(block)) == [("user@example.com", Reason.NOTCOMPLIANTRFC)]


# --- what the DSN's fields say (RFC 3464)


def test_x_unix_diagnostics_are_the_local_delivery_program_failing():
    block = ("Final-Recipient: rfc822; user@example.com\nAction: failed\nStatus: 5.0.0\n"
             "Diagnostic-Code: X-Unix; 255")
    assert reasons(dsn(block)) == [("user@example.com", Reason.MAILERERROR)]


def test_fields_before_final_recipient_still_belong_to_that_recipient():
    block = ("Diagnostic-Code: smtp; 550 5.2.2 Mailbox full\nStatus: 5.2.2\n"
             "Final-Recipient: rfc822; user@example.com\nAction: failed")
    (diagnosis,) = diagnose_bytes(dsn(block).encode(), "t")
    (recipient,) = diagnosis.recipients
    assert (recipient.status, recipient.reason) == ("5.2.2", Reason.MAILBOXFULL)


def test_recipients_without_blank_lines_between_them_are_told_apart_by_field_order():
    blocks = ("Action: failed\nFinal-Recipient: rfc822; a@example.com\n"
              "Original-Recipient: rfc822; a@example.com\n"
              "Status: 5.2.2\nDiagnostic-Code: smtp; 552 5.2.2 Mailbox full\n"
              "Original-Recipient: rfc822; b@example.com\nFinal-Recipient: rfc822; b@example.com\n"
              "Action: failed\nStatus: 5.1.1\nDiagnostic-Code: smtp; 550 5.1.1 No such user")
    assert reasons(dsn(blocks)) == [("a@example.com", Reason.MAILBOXFULL),
                                    ("b@example.com", Reason.USERUNKNOWN)]


def test_a_status_comment_is_the_diagnostic_when_there_is_none():
    block = ("Final-Recipient: rfc822; user@example.net\nAction: delayed\n"
             "Status: 4.0.0 (example.net: host name lookup failure)")
    assert reasons(dsn(block)) == [("user@example.net", Reason.NETWORKERROR)]


def test_a_report_that_names_no_recipient_falls_back_to_the_returned_message():
    raw = dsn(text="--- Delivery report unavailable ---\n")
    (diagnosis,) = diagnose_bytes(raw.encode(), "t")
    assert diagnosis.is_bounce
    assert [(r.address, r.reason) for r in diagnosis.recipients] == [("user@example.com", Reason.UNDEFINED)]


# --- what the bounce's writer states


GMAIL_DSN_TEXT = ("\n** Address not found **\n\nYour message wasn't delivered to user@example.com "
                  "because the address couldn't be found, or is unable to receive mail.\n")
GMAIL = "mailer-daemon@googlemail.com"


def test_a_gmail_heading_decides_when_the_report_carries_no_diagnostic():
    block = "Final-Recipient: rfc822; user@example.com\nAction: failed\nStatus: 5.0.0"
    raw = dsn(block, text=GMAIL_DSN_TEXT).replace("MAILER-DAEMON@mx.example.net", GMAIL)
    assert reasons(raw) == [("user@example.com", Reason.USERUNKNOWN)]


def test_a_heading_gives_way_to_a_status_code_that_says_otherwise():
    block = ("Final-Recipient: rfc822; user@example.com\nAction: failed\nStatus: 5.1.8\n"
             "Diagnostic-Code: smtp; 501 5.1.8 Sender address rejected")
    raw = dsn(block, text=GMAIL_DSN_TEXT).replace("MAILER-DAEMON@mx.example.net", GMAIL)
    assert reasons(raw) == [("user@example.com", Reason.REJECTED)]


def test_gmail_null_mx_is_a_domain_that_accepts_no_mail_and_a_4xx_dns_error_is_temporary():
    null_mx = ("Final-Recipient: rfc822; a@example.org\nAction: failed\nStatus: 4.0.0\n"
               "Diagnostic-Code: smtp; DNS Error: 1234 DNS type 'mx' lookup of example.org responded with "
               "code NOERROR The domain example.org doesn't receive email according to the administrator: "
               "returned Null MX")
    nxdomain = ("Final-Recipient: rfc822; b@example.net\nAction: failed\nStatus: 4.0.0\n"
                "Diagnostic-Code: smtp; DNS Error: 1234 DNS type 'mx' lookup of example.net responded with "
                "code NXDOMAIN Domain name not found: example.net")
    assert reasons(dsn(null_mx, nxdomain)) == [("a@example.org", Reason.NOTACCEPT),
                                               ("b@example.net", Reason.NETWORKERROR)]


def test_orange_and_la_poste_codes_name_the_reason():
    body = ("<a@orange.fr>: host smtp-in.orange.fr[192.0.2.1] said: 550 5.2.0 Mail rejete.\n"
            "    Mail rejected. OFR_506 [506] (in reply to end of DATA command)\n\n"
            "<b@laposte.net>: host smtp-in.laposte.net[192.0.2.2] said: 550 5.5.0 Adresse\n"
            "    destinataire invalide. Invalid recipient. LPN007_416 (in reply to RCPT TO command)\n\n"
            "<c@wanadoo.fr>: host smtp-in.orange.fr[192.0.2.1] said: 550 5.5.0 Le compte du\n"
            "    destinataire est bloque. The recipient account is blocked. LPN007_426 (in reply to\n"
            "    RCPT TO command)")
    assert reasons(POSTFIX.format(body=body)) == [("a@orange.fr", Reason.SPAMDETECTED),
                                                  ("b@laposte.net", Reason.USERUNKNOWN),
                                                  ("c@wanadoo.fr", Reason.SUSPEND)]


# --- reading the text


def test_a_reply_refolded_mid_line_by_postfix_reads_as_one_sentence():
    lines = ["host mx.example.com[192.0.2.1] said: 550-5.7.1 [192.0.2.9] Messages with multiple 550",
             "5.7.1 addresses in From: header are not accepted."]
    assert join_reply_lines(lines) == ("host mx.example.com[192.0.2.1] said: 550-5.7.1 [192.0.2.9] Messages "
                                       "with multiple addresses in From: header are not accepted.")


def test_plain_text_recipient_lines_in_the_shapes_mtas_print():
    raw = ("From: MAILER-DAEMON@mx.example.net\nTo: sender@example.org\nSubject: Returned mail\n\n"
           "---The following addresses had delivery errors---\n\n"
           "a@example.com [User unknown]\n\n"
           "Mailbox is full: <b@example.com>\n\n"
           " c@example.com ... unknown host\n")
    assert reasons(raw) == [("a@example.com", Reason.FILTERED), ("b@example.com", Reason.MAILBOXFULL),
                            ("c@example.com", Reason.HOSTUNKNOWN)]


def test_a_mime_boundary_on_an_unfolded_header_line_is_still_read():
    raw = ("From: postmaster@mx.example.net\nTo: sender@example.org\nSubject: Undeliverable\n"
           'Content-Type: multipart/mixed; boundary="OUT"\n\n--OUT\nContent-Type: multipart/alternative;\n'
           'boundary="IN"\n\n--IN\nContent-Type: text/plain\n\nError: Invalid user address\n\n'
           "Error message below:\n550 - Requested action not taken: no such user here\n\n"
           "  RCPT TO: user@example.com\n--IN--\n--OUT--\n")
    (diagnosis,) = diagnose_bytes(raw.encode(), "t")
    assert diagnosis.is_bounce
    assert [r.address for r in diagnosis.recipients] == ["user@example.com"]


def test_a_session_transcript_yields_the_failure_reply_not_the_greeting():
    raw = ("From: MAILER-DAEMON@mx.example.net\nTo: sender@example.org\nSubject: Undelivered Mail\n\n"
           "Transcript of session follows.\n Out: 220 mx.example.com ESMTP\n In:  EHLO mx.example.net\n"
           " Out: 250 mx.example.com\n In:  DATA\n Out: 451 4.3.0 Error: queue file write error\n\n"
           "Recipient: <user@example.com>\n")
    (diagnosis,) = diagnose_bytes(raw.encode(), "t")
    (recipient,) = diagnosis.recipients
    assert (recipient.reply_code, recipient.reason) == ("451", Reason.SYSTEMERROR)


# --- complaints


def test_an_abuse_report_naming_several_recipients_is_feedback_for_each():
    raw = ("From: fbl@isp.example\nTo: abuse@example.org\nSubject: Abuse Report\nMIME-Version: 1.0\n"
           'Content-Type: multipart/report; report-type=feedback-report; boundary="F"\n\n'
           "--F\nContent-Type: text/plain\n\nThis is an abuse report.\n\n"
           "--F\nContent-Type: message/feedback-report\n\nFeedback-Type: abuse\nVersion: 1\n"
           "Original-Rcpt-To: a@isp.example\nOriginal-Rcpt-To: b@isp.example\n\n"
           "--F\nContent-Type: text/rfc822-headers\n\nFrom: news@example.org\nSubject: offer\n\n--F--\n")
    assert reasons(raw) == [("a@isp.example", Reason.FEEDBACK), ("b@isp.example", Reason.FEEDBACK)]


def test_a_microsoft_jmrp_complaint_is_feedback_for_the_original_recipient():
    raw = ("From: staff@hotmail.com\nTo: abuse@example.org\n"
           "Subject: complaint about message from 192.0.2.1\n"
           'MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="J"\n\n'
           "--J\nContent-Type: message/rfc822\n\nX-HmXmrOriginalRecipient: user@hotmail.com\n"
           "From: news@example.org\nTo: user@hotmail.com\nSubject: offer\n\nhello\n--J--\n")
    assert reasons(raw) == [("user@hotmail.com", Reason.FEEDBACK)]


def test_each_recipient_keeps_its_own_words_when_another_carries_the_reply_code():
    raw = ("Hi. This is the qmail-send program at mail.example.org.\n"
           "I'm afraid I wasn't able to deliver your message to the following addresses.\n\n"
           "<nobody@example.com>:\nSorry, no mailbox here by that name. (#5.1.1)\n\n"
           "<full@example.net>:\n192.0.2.5 does not like recipient.\n"
           "Remote host said: 552 5.2.2 <full@example.net>: Mailbox full\nGiving up on 192.0.2.5.\n")
    assert reasons(raw) == [("nobody@example.com", Reason.USERUNKNOWN),
                            ("full@example.net", Reason.MAILBOXFULL)]


def test_a_bounce_forwarded_inline_with_quoting_is_read_through_the_quotes():
    raw = ("From: colleague@example.org\nTo: ops@example.org\nSubject: Fwd: Returned mail\n\n"
           "Forwarding this.\n\n> From: Mail Delivery Subsystem <MAILER-DAEMON>\n"
           "> Subject: Returned mail: see transcript for details\n>\n"
           ">    ----- The following addresses had permanent fatal errors -----\n> <user@example.com>\n"
           ">     (reason: 550 5.1.1 <user@example.com>... User unknown)\n>\n"
           "> Final-Recipient: RFC822; user@example.com\n> Action: failed\n> Status: 5.1.1\n"
           "> Diagnostic-Code: SMTP; 550 5.1.1 <user@example.com>... User unknown\n")
    assert reasons(raw) == [("user@example.com", Reason.USERUNKNOWN)]


def test_an_x_unix_exit_status_is_not_read_as_an_smtp_reply_code():
    block = ("Final-Recipient: rfc822; user@example.com\nAction: failed\nStatus: 5.0.0\n"
             "Diagnostic-Code: X-Unix; 255")
    (diagnosis,) = diagnose_bytes(dsn(block).encode(), "t")
    assert diagnosis.recipients[0].reply_code is None


@pytest.mark.parametrize(("reply", "reason"), [
    ("554 5.7.1 <unknown[203.0.113.9]>: Client host rejected: Access denied", Reason.BLOCKED),
    ("550 5.1.1 <user@example.com>: Recipient address rejected: User unknown in local recipient table",
     Reason.USERUNKNOWN),
    ("550 5.7.1 Your message was rejected due to example.com's DMARC policy", Reason.AUTHFAILURE),
    ("553 5.7.1 Sender address rejected: not owned by user sender@example.org", Reason.REJECTED),
    ("554 5.7.1 <user@example.com>: Relay access denied", Reason.NORELAYING),
    ("452 4.3.1 Insufficient system storage", Reason.SYSTEMFULL),
    ("550 5.2.1 <user@example.com>: The email account that you tried to reach is disabled", Reason.SUSPEND),
    ("552 5.2.2 <user@example.com>: Mailbox full", Reason.MAILBOXFULL),
    ("450 4.7.0 Please come back later", Reason.SECURITYERROR),
])
def test_common_replies_at_rcpt_get_their_reason(reply, reason):
    body = f"<user@example.com>: host mx.example.com[192.0.2.1] said: {reply} (in reply to RCPT TO command)"
    assert reasons(POSTFIX.format(body=body)) == [("user@example.com", reason)]


@pytest.mark.parametrize(("words", "reason"), [
    ("all relevant MX records point to non-existent hosts", Reason.HOSTUNKNOWN),
    ("retry time not reached for any host after a long failure period", Reason.EXPIRED),
    ("Unrouteable address", Reason.HOSTUNKNOWN),
    ("an MX or SRV record indicated no SMTP service", Reason.NOTACCEPT),
])
def test_exim_s_own_words_get_their_reason(words, reason):
    raw = ("From: Mail Delivery System <Mailer-Daemon@mx.example.net>\nTo: sender@example.org\n"
           "Subject: Mail delivery failed: returning message to sender\n\n"
           "This message was created automatically by mail delivery software.\n\n"
           "A message that you sent could not be delivered to one or more of its\n"
           "recipients. This is a permanent error. The following address(es) failed:\n\n"
           f"  user@example.com\n    {words}\n")
    assert reasons(raw) == [("user@example.com", reason)]


def test_exchange_s_hash_decorated_reply_gives_its_code():
    raw = ("From: postmaster@corp.example.com\nTo: sender@example.org\nSubject: Undeliverable: hello\n\n"
           "Delivery has failed to these recipients or groups:\n\n"
           "Diagnostic information for administrators:\n\nGenerating server: EX01.corp.example.com\n\n"
           "jane@corp.example.com\n#552 5.2.2 STOREDRV.Deliver; recipient mailbox is full ##\n")
    (diagnosis,) = diagnose_bytes(raw.encode(), "t")
    (recipient,) = diagnosis.recipients
    assert (recipient.reply_code, recipient.status, recipient.reason) == ("552", "5.2.2", Reason.MAILBOXFULL)


def test_a_paste_starting_with_an_address_line_is_read_as_a_bounce_not_as_headers():
    raw = "<user@example.com>:\nDeferred: Connection timed out with mx.example.com.\n"
    assert reasons(raw) == [("user@example.com", Reason.EXPIRED)]


def test_qmail_s_queue_lifetime_note_gives_way_to_the_failure_it_follows():
    raw = ("<user@example.net>:\nUnable to contact LDAP server. (#4.4.3)I'm not going to try again; this\n"
           "message has been in the queue too long.\n")
    assert reasons(raw) == [("user@example.net", Reason.SYSTEMERROR)]


def test_qmail_s_queue_lifetime_note_alone_is_an_expiry():
    raw = "<user@example.net>:\nI'm not going to try again; this message has been in the queue too long.\n"
    assert reasons(raw) == [("user@example.net", Reason.EXPIRED)]


def test_a_forwarding_loop_is_a_network_error():
    raw = "<user@example.net>:\nThis message is looping: it already has my Delivered-To line. (#5.4.6)\n"
    assert reasons(raw) == [("user@example.net", Reason.NETWORKERROR)]


def test_a_provider_s_missing_mailbox_verdict_offers_no_delisting():
    raw = ("From: postmaster@contoso.onmicrosoft.com\nTo: sender@example.org\n"
           "Subject: Undeliverable: hello\n\n"
           "Diagnostic information for administrators:\n\nuser@contoso.com\n"
           "Remote Server returned '550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP "
           "address lookup'\n")
    (diagnosis,) = diagnose_bytes(raw.encode(), "t")
    assert diagnosis.reason is Reason.USERUNKNOWN
    assert diagnosis.receiver == "microsoft_eop"
    assert diagnosis.delist.method is DelistMethod.NONE


def one(diagnostic: str):
    """The diagnosis of a bare pasted rejection line."""
    [d] = diagnose_bytes(diagnostic.encode(), "t")
    return d


def test_an_spf_failure_at_any_server_is_an_authentication_problem_not_gmails():
    d = one("550 5.7.23 <bob@example.org>: Recipient address rejected: Message rejected due to: "
            "SPF fail - not authorized. Please see http://www.openspf.net/Why?s=mfrom;"
            "id=news@sender.example;ip=198.51.100.23;r=bob@example.org")
    assert d.reason is Reason.AUTHFAILURE
    assert d.receiver is None
    assert "Gmail" not in (d.verdict or "")


def test_greylisting_is_a_deferral_that_needs_no_action():
    d = one("450 4.2.0 <bob@example.org>: Recipient address rejected: Greylisted, see "
            "http://postgrey.schweikert.ch/help/example.org.html")
    assert d.temporary
    assert d.reason is not Reason.USERUNKNOWN
    assert d.delist.method is DelistMethod.NONE
    assert (d.next_step or "").startswith("Nothing to do")


def test_a_reverse_dns_mismatch_naming_the_ip_is_a_ptr_problem():
    d = one("550 5.7.1 Client host rejected: reverse DNS lookup for 198.51.100.23 does not match "
            "(FCrDNS)")
    assert (d.reason, d.sending_ip) == (Reason.REQUIREPTR, "198.51.100.23")


def test_a_spamhaus_dbl_listing_is_about_the_domain_not_the_ip():
    d = one("554 5.7.1 <news@sender.example>: Sender address rejected: sender.example is listed in "
            "dbl.spamhaus.org; https://www.spamhaus.org/query/domain/sender.example")
    assert d.blocklist == "spamhaus"
    assert "Domain Block List" in (d.verdict or "")
    assert "removal of the IP" not in (d.next_step or "")
    assert "domain" in (d.next_step or "")


def test_a_workspace_domain_that_only_takes_its_own_gateways_is_for_the_recipients_admin():
    d = one("550 5.7.1 IP not in whitelist for RCPT domain, closing connection. - gsmtp")
    assert d.receiver == "google_gmail"
    assert d.delist.method is DelistMethod.CONTACT_RECIPIENT


def test_a_cloudmark_reset_link_names_cloudmark_without_guessing_the_receiver():
    d = one("550 5.7.1 Message rejected due to sender reputation; see "
            "https://csi.cloudmark.com/reset-request/?ip=198.51.100.177")
    assert (d.receiver, d.blocklist, d.sending_ip) == (None, "cloudmark_csi", "198.51.100.177")


@pytest.mark.parametrize("diagnostic, ip", [
    ("553 5.7.1 [BL21] Connections will not be accepted from 203.0.113.47, because the ip is in "
     "Spamhaus's list; see https://postmaster.yahooinc.com/error-codes", "203.0.113.47"),
    ("553 5.3.0 flpd573 DNSBL:RBL 521< 192.0.2.212 >_is_blocked.For assistance forward this error "
     "to abuse_rbl@abuse-att.net", "192.0.2.212"),
    ("421 Too many spams from your IP (198.51.100.9), please visit http://postmaster.free.fr/",
     "198.51.100.9"),
    ("550 5.7.1 Service refused, please contact postmaster@laposte.net LPNAAA_101 (203.0.113.149 "
     "listed on zen.spamhaus.org) [101]", "203.0.113.149"),
    ("550 5.7.1 [IPv6:2001:db8::7] Our system has detected that this message does not meet IPv6 "
     "sending guidelines regarding PTR records and authentication. - gsmtp", "2001:db8::7"),
    ("554 resimta-ch2-18v.sys.comcast.net 198.51.100.130 Comcast block for spam. Please see "
     "http://postmaster.comcast.net/smtp-error-codes.php#BL000000", "198.51.100.130"),
])
def test_the_refused_ip_is_found_in_each_receivers_own_phrasing(diagnostic, ip):
    assert one(diagnostic).sending_ip == ip


def test_an_ip_in_a_link_path_or_a_private_range_is_not_taken_for_the_senders():
    # The resolver's address in Spamhaus's returnc link, and an internal hop, are not the sender.
    assert one("554 5.7.1 Rejected: see https://www.spamhaus.org/returnc/pub/172.64.0.1 "
               "(relay 10.0.0.5)").sending_ip is None
    # Nor a dotted number that is no address at all ("03.0.113.9" has a leading zero).
    assert one("554 5.7.1 Rejected, host 03.0.113.9 found on one or more DNSBLs").sending_ip is None


def test_the_old_cbl_zone_is_spamhaus_xbl_now():
    d = one("554 5.7.1 Service unavailable; Client host [198.51.100.3] blocked using cbl.abuseat.org")
    assert (d.blocklist, d.delist.url) == ("spamhaus", "https://check.spamhaus.org/")


def test_backscatterer_is_waited_out_not_paid():
    d = one("554 5.7.1 Service unavailable; Client host [198.51.100.3] blocked using "
            "ips.backscatterer.org")
    assert (d.blocklist, d.delist.method) == ("backscatterer", DelistMethod.AUTO_EXPIRY)
    assert "do not pay" in (d.next_step or "")


@pytest.mark.parametrize("received", [
    "Received: from client.example.org by mail.example.org ([93.184.216.34]) with ESMTP",
    "RECEIVED: FROM client.example.org BY mail.example.org ([93.184.216.34]) WITH ESMTP",
    "received: from nearby.example.org (nearby [10.0.0.9])\n"
    "\tby mail.example.org ([93.184.216.34]) with ESMTP",
    # U+212A (Kelvin sign) in the block: a text whose case the prefilter must not trust.
    "X-Note: 5 \u212a\nReceived: from client by mail.example.org ([93.184.216.34]) with ESMTP",
])
def test_the_sending_ip_comes_from_the_first_received_by_address_whatever_the_case(received: str) -> None:
    raw = (
        "From: MAILER-DAEMON@mx.example.net\nTo: sender@example.org\n"
        "Subject: Undelivered Mail Returned to Sender\nMIME-Version: 1.0\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\n\n'
        "--B\nContent-Type: text/plain\n\nDelivery failed.\n\n"
        "--B\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.example.net\n\n"
        "Final-Recipient: rfc822; user@example.com\nAction: failed\nStatus: 5.7.1\n"
        "Diagnostic-Code: smtp; 550 5.7.1 Message rejected by policy\n\n"
        "--B\nContent-Type: text/rfc822-headers\n\n"
        "Received: from localhost by mail.example.org (Postfix) with ESMTP id 4F2\n"
        + received + "\nFrom: sender@example.org\nTo: user@example.com\nSubject: hello\n\n--B--\n"
    )
    [diagnosis] = diagnose_bytes(raw.encode(), "t")
    assert diagnosis.sending_ip == "93.184.216.34"
    assert diagnosis.sending_ip_source == "returned headers (Received: by)"


def test_the_refused_ip_is_the_first_valid_address_the_rejection_names_whatever_its_case():
    raw = dsn("Final-Recipient: rfc822; user@example.com\nAction: failed\nStatus: 5.7.1\n"
              "Diagnostic-Code: smtp; 554 5.7.1 Service unavailable; CLIENT HOST [999.1.1.1] garbled, "
              "Client host [203.0.113.5] blocked using zen.spamhaus.org")
    (diagnosis,) = diagnose_bytes(raw.encode(), "t")
    assert (diagnosis.sending_ip, diagnosis.sending_ip_source) == ("203.0.113.5", "rejection text")


def test_the_sending_ip_header_is_found_among_other_x_headers_in_any_case():
    from bot.core.engine import ip_from_headers

    headers = ("X-Mailer: mailer 1.0\nX-Spam-Score: 0\nReceived: from a by b\n  x-originating-ip: wrapped\n"
               "x-ORIGINATING-IP: [198.51.100.7]\nX-Sender-IP: 203.0.113.9\n")
    assert ip_from_headers(headers) == ("198.51.100.7", "returned headers (x-ORIGINATING-IP)")
    assert ip_from_headers("X-SES-Outgoing: 2025.10.20-198.51.100.210\n") == (
        "198.51.100.210", "returned headers (X-SES-Outgoing)")
    assert ip_from_headers("X-Mailer: x-originating-ip: 198.51.100.7\n") == (None, None)


@pytest.mark.parametrize(("diagnostic", "expected"), [
    ("203.0.113.5 said no thanks", "203.0.113.5"),  # at the very start
    ("mx1.example.net 198.51.100.7 said no", "198.51.100.7"),
    ("host 10.1.2.3 and 198.51.100.7 said no", "198.51.100.7"),  # the internal one does not count
    ("a 198.51.100.7 and 203.0.113.9 said no", None),  # two public ones: neither is surely the client
    ("x1.2.3.198.51.100.7 no", None),  # part of a longer dotted run, not an address
    ("\u0663198.51.100.7 said no", None),  # a digit before it, if not an ASCII one
])
def test_a_lone_public_address_in_the_reply_is_taken_as_the_client(diagnostic: str,
                                                                   expected: str | None) -> None:
    from bot.core.engine import rejected_ip
    assert rejected_ip(diagnostic) == expected

"""Bounce events in the JSON that sending services post to webhooks: the recipient, the remote
server's words and the service's sending IP are read from each service's own field names."""

from __future__ import annotations

import json
import subprocess
import sys

from bot.core.model import Reason
from bot.service.diagnose import diagnose_bytes

SES = {
    "notificationType": "Bounce",
    "bounce": {
        "bounceType": "Permanent", "bounceSubType": "General",
        "bouncedRecipients": [{
            "emailAddress": "ann@contoso.example", "action": "failed", "status": "5.7.606",
            "diagnosticCode": "smtp; 550 5.7.606 Access denied, banned sending IP [203.0.113.88]. To "
                              "request removal from this list please visit https://sender.office.com/ "
                              "and follow the directions. (AS16012609)"}],
        "remoteMtaIp": "52.101.1.1", "reportingMTA": "dns; a8-1.smtp-out.amazonses.com"},
    "mail": {"source": "news@sender.example", "sourceIp": "10.1.2.3",
             "destination": ["ann@contoso.example"]},
}


def diagnose(payload: object) -> list:
    return diagnose_bytes(json.dumps(payload).encode(), "event.json")


def test_an_ses_notification_inside_its_sns_envelope_names_recipient_ip_and_receiver():
    [d] = diagnose({"Type": "Notification", "Message": json.dumps(SES)})
    assert d.format == "amazon_ses"
    assert (d.recipients[0].address, d.recipients[0].status) == ("ann@contoso.example", "5.7.606")
    assert (d.sending_ip, d.receiver, d.blocklist) == ("203.0.113.88", "microsoft_eop", "microsoft_eop")
    assert d.recipients[0].diagnostic.startswith("550 5.7.606")  # "smtp;" is not the server's


def test_ses_source_ip_is_the_api_caller_not_the_sending_ip():
    bounced = json.loads(json.dumps(SES))
    bounced["bounce"]["bouncedRecipients"][0]["diagnosticCode"] = "smtp; 550 5.1.1 user unknown"
    [d] = diagnose(bounced)
    assert d.sending_ip != "10.1.2.3"
    assert d.recipients[0].reason is Reason.USERUNKNOWN


def test_a_mailgun_failure_takes_the_ip_from_its_envelope_when_the_reply_names_none():
    [d] = diagnose({
        "event": "failed", "severity": "permanent", "recipient": "bob@example.org",
        "delivery-status": {"code": 554, "enhanced-code": "5.7.1", "mx-host": "mx.example.org",
                            "message": "Service unavailable; blocked using bl.spamcop.net"},
        "envelope": {"sending-ip": "198.51.100.150", "targets": "bob@example.org"},
    })
    assert d.format == "mailgun"
    r = d.recipients[0]
    assert (r.address, r.reply_code, r.status, r.remote_mta) == (
        "bob@example.org", "554", "5.7.1", "mx.example.org")
    assert (d.sending_ip, d.sending_ip_source) == ("198.51.100.150", "event field (sending-ip)")
    assert d.blocklist == "spamcop"


def test_a_sendgrid_batch_gives_one_diagnosis_per_failure_and_skips_other_events():
    batch = [
        {"email": "a@yahoo.com", "event": "deferred", "sg_event_id": "e1", "ip": "192.0.2.10",
         "response": "421 4.7.0 [TSS04] Messages from 192.0.2.10 temporarily deferred due to "
                     "unexpected volume or user complaints"},
        {"email": "b@example.org", "event": "open", "sg_event_id": "e2", "ip": "192.0.2.10"},
        {"email": "c@example.org", "event": "bounce", "type": "blocked", "sg_event_id": "e3",
         "ip": "192.0.2.10", "status": "5.7.1",
         "reason": "554 5.7.1 Service unavailable; Client host [192.0.2.10] blocked using "
                   "b.barracudacentral.org"},
    ]
    found = diagnose(batch)
    assert [d.recipients[0].address for d in found] == ["a@yahoo.com", "c@example.org"]
    assert [d.format for d in found] == ["sendgrid", "sendgrid"]
    assert found[0].temporary and found[0].receiver == "yahoo_aol"
    assert found[1].blocklist == "barracuda"


def test_postmark_and_sparkpost_bounces_are_read():
    [pm] = diagnose({"RecordType": "Bounce", "Type": "HardBounce", "Email": "kim@icloud.com",
                     "Details": "smtp;554 5.7.1 [CS01] Message rejected due to local policy."})
    assert (pm.format, pm.receiver, pm.recipients[0].address) == (
        "postmark", "apple_icloud", "kim@icloud.com")
    [sp] = diagnose({"msys": {"message_event": {
        "type": "bounce", "rcpt_to": "joe@comcast.net", "sending_ip": "198.51.100.31",
        "raw_reason": "554 5.1.0 resimta-ch2-08v.sys.comcast.net Comcast block for spam. Please "
                      "see http://postmaster.comcast.net/smtp-error-codes.php#BL000000"}}})
    assert (sp.format, sp.receiver, sp.sending_ip) == ("sparkpost", "comcast", "198.51.100.31")


def test_json_lines_are_read_line_by_line():
    lines = "\n".join(json.dumps({"email": f"u{i}@example.org", "event": "bounce",
                                  "reason": "550 5.1.1 No such user"}) for i in range(3))
    assert len(diagnose_bytes(lines.encode(), "events.jsonl")) == 3


def test_json_without_a_failure_is_not_a_bounce_and_says_why():
    [d] = diagnose({"event": "delivered", "recipient": "bob@example.org",
                    "delivery-status": {"code": 250, "message": "OK"}})
    assert not d.is_bounce and "JSON" in (d.not_bounce_reason or "")


def test_cli_reads_an_event_from_stdin_and_reports_the_event_field():
    out = subprocess.run([sys.executable, "-m", "bot", "diagnose", "--no-dns", "--json", "-"],
                         input=json.dumps({"Type": "Notification", "Message": json.dumps(SES)}),
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert (data["sending_ip"], data["recipients"][0]["address"]) == (
        "203.0.113.88", "ann@contoso.example")


def test_hostile_json_gets_an_answer_not_a_traceback():
    for data in (b"[" * 100_000, b'{"a": ' * 50_000, b"[1, 2, 3]", b'{"email": "x"}', b"{not json"):
        [d] = diagnose_bytes(data, "bad.json")
        assert not d.is_bounce and d.not_bounce_reason

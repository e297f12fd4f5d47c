"""Microsoft refusals that sender.office.com does not clear get the route that does, as
`delistbot diagnose --json` prints it (providers.md A1 and A2).

One real `delistbot diagnose --json` process reads every rejection below from its own file and
answers one JSON line each; each test then looks at the line for its code.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.test_cli_diagnose import delistbot

PORTAL = "https://sender.office.com/"
OUTLOOK_FORM = "https://support.microsoft.com/supportrequestform/8ad563e3-288e-2a61-8122-3ba03d6b8d75"

# Rejections as Exchange Online words them (providers.md A1 "Codes"), with the Outlook.com ones (A2).
REJECTIONS = {
    "5.7.506": "550 5.7.506 Access Denied, Bad HELO",
    "5.7.510": "550 5.7.510 Access denied, contoso.com does not accept email over IPv6",
    "5.7.501": "550 5.7.501 Access denied, spam abuse detected",
    "5.7.502": "550 5.7.502 Access denied, spam abuse detected",
    "5.7.503": "550 5.7.503 Access denied, spam abuse detected",
    "5.7.705": "550 5.7.705 Access denied, tenant has exceeded threshold",
    "5.7.708": "550 5.7.708 Service unavailable. Access denied, traffic not accepted from this IP.",
    "5.7.750": "550 5.7.750 Service unavailable. Client blocked from sending from unregistered domains",
    "5.7.509": "550 5.7.509 Access denied, sending domain [EXAMPLE.JP] does not pass DMARC verification "
               "and has a DMARC policy of reject.",
    "4.7.500": "451 4.7.500 Access denied, please try again later.",
    "5.7.513": "550 5.7.513 Service unavailable, Client host [203.0.113.5] blocked by contoso.com using "
               "Customer Block list (AS16012607)",
    "5.7.606": "550 5.7.606 Access denied, banned sending IP [203.0.113.5]. To request removal from this "
               "list please visit https://sender.office.com/ and follow the directions. For more "
               "information please go to http://go.microsoft.com/fwlink/?LinkID=526655 (AS16012609)",
    "S3140": "550 5.7.1 Unfortunately, messages from [203.0.113.5] weren't sent. Please contact your "
             "Internet service provider since part of their network is on our block list (S3140).",
    "S3150": "550 5.7.1 Unfortunately, messages from [203.0.113.5] weren't sent. Please contact your "
             "Internet service provider since part of their network is on our block list (S3150). You "
             "can also refer your provider to http://mail.live.com/mail/troubleshooting.aspx#errors.",
}


@pytest.fixture(scope="module")
def answers(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    folder: Path = tmp_path_factory.mktemp("microsoft")
    paths = []
    for code, text in REJECTIONS.items():
        path = folder / f"{code}.txt"
        path.write_text(f"Delivery has failed to these recipients or groups:\n\nuser@contoso.com\n\n"
                        f"Remote Server returned '{text}'\n")
        paths.append(str(path))
    result = delistbot("diagnose", "--json", *paths)
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    return {Path(d["source"]).stem: d for d in lines}


@pytest.mark.parametrize("code", ["5.7.506", "5.7.510"])
def test_a_refused_connection_is_fixed_by_the_sender_not_the_delist_portal(answers, code):  # type: ignore[no-untyped-def]
    d = answers[code]
    assert d["receiver"] == "microsoft_eop"
    assert d["delist"] == {"method": "fix_sender", "url": None, "address": None}
    assert PORTAL not in d["summary"]
    assert "HELO" in d["summary"] or "IPv4" in d["summary"]


@pytest.mark.parametrize("code", ["5.7.501", "5.7.502", "5.7.503", "5.7.705", "5.7.708", "5.7.750"])
def test_a_restricted_sending_tenant_is_cleared_by_its_own_admin_not_the_portal(answers, code):  # type: ignore[no-untyped-def]
    d = answers[code]
    assert d["receiver"] == "microsoft_eop"
    assert d["delist"] == {"method": "fix_sender", "url": None, "address": None}
    assert "Defender portal" in d["summary"] and PORTAL not in d["summary"]


def test_a_dmarc_reject_is_an_authentication_fix_not_a_delisting(answers):  # type: ignore[no-untyped-def]
    d = answers["5.7.509"]
    assert d["recipients"][0]["reason"] == "authfailure"
    assert d["delist"] == {"method": "fix_sender", "url": None, "address": None}
    assert "DMARC" in d["summary"] and PORTAL not in d["summary"]


def test_a_temporary_access_denied_lifts_by_itself(answers):  # type: ignore[no-untyped-def]
    d = answers["4.7.500"]
    assert d["temporary"] is True
    assert d["delist"]["method"] == "auto_expiry" and d["delist"]["url"] is None
    assert PORTAL not in d["summary"]


def test_a_tenant_block_needs_the_recipients_admin(answers):  # type: ignore[no-untyped-def]
    d = answers["5.7.513"]
    assert d["delist"] == {"method": "contact_recipient", "url": None, "address": None}
    assert "recipient's mail administrator" in d["summary"]
    assert d["sending_ip"] == "203.0.113.5"


def test_a_banned_sending_ip_still_goes_to_the_delist_portal(answers):  # type: ignore[no-untyped-def]
    d = answers["5.7.606"]
    assert d["delist"] == {"method": "web", "url": PORTAL, "address": None}


@pytest.mark.parametrize("code", ["S3140", "S3150"])
def test_outlook_com_blocks_go_to_outlook_sender_support_with_a_portal_warning(answers, code):  # type: ignore[no-untyped-def]
    d = answers[code]
    assert d["receiver"] == "outlook_com"
    assert d["delist"] == {"method": "web", "url": OUTLOOK_FORM, "address": None}
    assert any("sender.office.com portal does not clear" in w for w in d["warnings"])


def test_routes_that_no_provider_acts_on_carry_no_provider_wait():
    """MTA-STS failures are the recipient's to fix; Outlook.com's 5.7.515 and HELO mismatches the
    sender's: none is a delisting, so none promises Microsoft's 24 or 48 hours."""
    from bot.service.diagnose import diagnose_bytes

    for text, method in (
        ("451 4.4.8 MX hosts of contoso.com failed MTA-STS validation", "contact_recipient"),
        ("550 5.7.515 Access denied, sending domain [example.com] does not meet the required "
         "authentication level.", "fix_sender"),
        ("550 domain [example.com] mismatches client ip 192.0.2.225.", "fix_sender"),
    ):
        [d] = diagnose_bytes(text.encode(), "t")
        assert (str(d.delist.method), d.to_json()["expected_wait_hours"]) == (method, None), text
        assert "sender.office.com" not in (d.next_step or "")

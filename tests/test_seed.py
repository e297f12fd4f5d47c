"""The bounce that started the project, pasted from Outlook exactly as a user would."""

from __future__ import annotations

from bot.core.model import DelistMethod, Reason
from bot.service.diagnose import diagnose_bytes
from tests.corpus import SEED, need_shared


def seed_diagnosis():
    need_shared()
    (diagnosis,) = diagnose_bytes((SEED / "qmail-microsoft-blocklist1.txt").read_bytes(), "seed")
    return diagnosis


def test_seed_names_microsoft_the_ip_and_the_list():
    d = seed_diagnosis()
    assert d.is_bounce
    assert d.receiver == "microsoft_eop"
    assert d.blocklist == "microsoft_eop"
    assert d.reason is Reason.BLOCKED
    assert d.sending_ip == "11.22.33.44"
    assert d.sending_ip_source == "rejection text"
    assert d.format == "qmail"


def test_seed_unwraps_the_diagnostic_into_one_line():
    d = seed_diagnosis()
    assert d.evidence is not None
    assert "To request removal from this list" in d.evidence
    assert "\n" not in d.evidence


def test_seed_recipient_is_the_only_failed_address():
    d = seed_diagnosis()
    assert [(r.address, r.reply_code, r.status) for r in d.recipients] == [
        ("name@myclient.com", "550", "5.7.1")
    ]


def test_seed_routes_to_the_portal_and_warns_the_quoted_address_is_stale():
    d = seed_diagnosis()
    assert d.delist.method is DelistMethod.WEB
    assert d.delist.url == "https://sender.office.com/"
    assert any("delist@messaging.microsoft.com" in w and "undeliverable" in w for w in d.warnings)
    assert d.expected_wait_hours == 24
    assert d.verdict.startswith("Microsoft 365 rejected mail from 11.22.33.44")

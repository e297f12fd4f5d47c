"""`delistbot check` as a user runs it: a subprocess talking to the loopback DNS server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.core import dnsbl, knowledge
from tests.dnsserver import CLEAN_IP, DQS_KEY, LISTED_IP, SPAMCOP_TXT, DnsTestServer, Wildcard, seed

ZONES = dnsbl.load_zones(knowledge.load().providers)
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def server() -> Iterator[DnsTestServer]:
    srv = DnsTestServer().start()
    names = [(z.query_zone(k), z.ipv6) for z in ZONES for k in ({}, {"dqs": DQS_KEY})]
    seed(srv, [(n, v6) for n, v6 in names if n])
    yield srv
    srv.stop()


def run(server: DnsTestServer, tmp_path: Path, *args: str,
        **env: str) -> subprocess.CompletedProcess[str]:
    settings = tmp_path / "delistbot.toml"
    settings.write_text('[dns]\ntimeout = "0.3s"\ndeadline = "2s"\n')
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("DELISTBOT_")}
    full_env.update({"DELISTBOT_NAMESERVERS": server.address,
                     "DELISTBOT_CONFIG": str(settings), **env})
    return subprocess.run([sys.executable, "-m", "bot", "check", *args], cwd=ROOT, env=full_env,
                          capture_output=True, text=True, timeout=60)


def test_a_listed_ip_exits_1_and_says_where_why_and_how_to_get_off(server, tmp_path):
    proc = run(server, tmp_path, LISTED_IP)
    assert proc.returncode == 1, proc.stderr
    out = proc.stdout
    assert out.startswith(f"{LISTED_IP}: listed on 2 of 11 lists asked")
    assert f"reason: {SPAMCOP_TXT}" in out
    assert "delist: auto_expiry — https://www.spamcop.net/bl.shtml" in out
    assert "Abusix Mail Intelligence (<key>.combined.mail.abusix.zone): needs a key" in out
    assert "DELISTBOT_DQS_KEY is not set" in out


def test_json_has_one_row_per_list_with_the_contract_fields(server, tmp_path):
    proc = run(server, tmp_path, LISTED_IP, "--json")
    data = json.loads(proc.stdout)
    assert proc.returncode == 1 and data["listed"] == 2
    for row in data["listings"]:
        assert {"list", "zone", "status", "code", "meaning", "detail"} <= set(row)
        assert row["status"] in {"listed", "not_listed", "unknown"}
    assert "sorbs" not in proc.stdout.lower()


def test_a_clean_ip_exits_0(server, tmp_path):
    proc = run(server, tmp_path, CLEAN_IP)
    assert proc.returncode == 0, proc.stderr
    assert "listed on 0 of 11 lists asked, 0 unknown, 11 not listed" in proc.stdout


def test_with_a_dqs_key_the_note_goes_and_the_key_never_appears(server, tmp_path):
    proc = run(server, tmp_path, LISTED_IP, "--json", DELISTBOT_DQS_KEY=DQS_KEY)
    assert DQS_KEY not in proc.stdout + proc.stderr
    assert json.loads(proc.stdout)["notes"] == []


def test_spamhaus_errors_are_reported_as_unknown(server, tmp_path):
    server.behave("zen.spamhaus.org", Wildcard("127.255.255.254"))
    try:
        proc = run(server, tmp_path, CLEAN_IP)
    finally:
        server.behaviours.clear()
    assert proc.returncode == 0
    assert "Spamhaus ZEN (zen.spamhaus.org) 127.255.255.254: error: query through a public" \
        in proc.stdout


@pytest.mark.parametrize(("args", "message"), [
    (["garbage"], "'garbage' is not an IP address"),
    (["mail.example.com"], "'mail.example.com' is a host name, not an IP address"),
    (["1.2.3.4.5"], "is not an IP address"),
    ([""], "'' is not an IP address"),
    (["010.1.1.1"], "an octet with a leading zero is ambiguous"),
    (["85.10.0.0/16"], "'85.10.0.0/16' has 65,536 addresses; at most 256"),
    (["85.10.20.0/24", "garbage"], "'garbage' is not an IP address"),  # then nothing is asked
    (["85.10.20.0/33"], "'85.10.20.0/33' is not an IP address or a network"),
])
def test_bad_input_is_a_usage_error_with_a_clear_message(server, tmp_path, args, message):
    before = sum(server.queries.values())
    proc = run(server, tmp_path, "--", *args)
    assert proc.returncode == 2
    assert message in proc.stderr and "Traceback" not in proc.stderr and proc.stdout == ""
    assert sum(server.queries.values()) == before


@pytest.mark.parametrize(("arg", "shown"), [
    ("192.168.1.20", "192.168.1.20 is not a public address (private range)"),
    ("240.0.0.1", "240.0.0.1 is not a public address (reserved range)"),
    ("224.0.0.1", "224.0.0.1 is not a public address (multicast range)"),
    ("100.64.0.1", "(shared address space for carrier-grade NAT, RFC 6598)"),
    ("fd12:3456::1", "fd12:3456::1 is not a public address (unique local range)"),
    ("fe80::1", "fe80::1 is not a public address (link-local range)"),
    ("::1", "::1 is not a public address (loopback range)"),
    ("::ffff:10.9.8.7", "10.9.8.7 is not a public address (private range)"),  # v4-mapped
])
def test_a_non_public_address_is_answered_without_asking_any_list(server, tmp_path, arg, shown):
    before = sum(server.queries.values())
    proc = run(server, tmp_path, arg)
    assert proc.returncode == 0, proc.stderr
    assert shown in proc.stdout and "public block lists never list it" in proc.stdout
    assert sum(server.queries.values()) == before


def test_an_ipv4_mapped_ipv6_address_is_checked_as_the_ipv4_host(server, tmp_path):
    proc = run(server, tmp_path, f"::ffff:{LISTED_IP}", "--json")
    assert proc.returncode == 1
    data = json.loads(proc.stdout)
    assert data["ip"] == LISTED_IP and data["listed"] == 2


def test_a_network_is_swept_and_only_what_needs_attention_is_shown(server, tmp_path):
    network = LISTED_IP.rsplit(".", 1)[0] + ".0/24"
    proc = run(server, tmp_path, network, "10.1.2.3")
    assert proc.returncode == 1, proc.stderr
    out = proc.stdout
    assert out.startswith("257 addresses checked against 11 lists: 1 listed, 0 with unknown "
                          "answers, 1 not public (nothing asked)")
    assert f"{LISTED_IP}: listed on 2 of 11 lists asked" in out
    assert f"reason: {SPAMCOP_TXT}" in out
    assert "10.1.2.3 is not a public address (private range)" in out
    assert "The other 255 addresses are not listed anywhere." in out
    assert out.count("DELISTBOT_DQS_KEY is not set") == 1


def test_several_addresses_in_json_one_check_each(server, tmp_path):
    proc = run(server, tmp_path, LISTED_IP, CLEAN_IP, "--json")
    data = json.loads(proc.stdout)
    assert proc.returncode == 1
    assert (data["addresses"], data["listed"], data["unknown"]) == (2, 1, 0)
    assert [c["ip"] for c in data["checks"]] == [LISTED_IP, CLEAN_IP]
    assert [c["listed"] for c in data["checks"]] == [2, 0]


def test_a_sweep_of_clean_addresses_exits_0(server, tmp_path):
    network = LISTED_IP.rsplit(".", 1)[0] + ".32/30"  # .32 to .35: on no list
    proc = run(server, tmp_path, network)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("4 addresses checked against 11 lists: 0 listed")


@pytest.mark.parametrize(("setting", "message"), [
    ("127.0.0.1:port", "bad port"),
    ("dns.google", "'dns.google' is not an IP address"),
    ("127.0.0.1:70000", "port 70000 out of range"),
])
def test_a_bad_nameserver_setting_is_a_usage_error(server, tmp_path, setting, message):
    proc = run(server, tmp_path, CLEAN_IP, DELISTBOT_NAMESERVERS=setting)
    assert proc.returncode == 2 and "DELISTBOT_NAMESERVERS" in proc.stderr
    assert message in proc.stderr and "Traceback" not in proc.stderr


# ---------------------------------------------------------------- diagnose with DNS evidence

BOUNCE = f"""From: MAILER-DAEMON@mx.sender.example
To: news@sender.example
Subject: failure notice

Hi. This is the qmail-send program at mx.sender.example.
I'm afraid I wasn't able to deliver your message to the following
addresses.
This is a permanent error; I've given up. Sorry it didn't work out.

<someone@recipient.example>:
85.10.20.99 does not like recipient.
Remote host said: 550 5.7.1 Service unavailable; Client host
[{LISTED_IP}] blocked using bl.spamcop.net; Blocked - see
https://www.spamcop.net/bl.shtml?{LISTED_IP}
Giving up on 85.10.20.99.

--- Below this line is a copy of the message.

Return-Path: <news@sender.example>
From: news@sender.example
To: someone@recipient.example
"""


def diagnose(server: DnsTestServer, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "bounce.txt"
    path.write_text(BOUNCE)
    settings = tmp_path / "delistbot.toml"
    settings.write_text('[dns]\ntimeout = "0.3s"\ndeadline = "2s"\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith("DELISTBOT_")}
    env.update({"DELISTBOT_NAMESERVERS": server.address, "DELISTBOT_CONFIG": str(settings)})
    return subprocess.run([sys.executable, "-m", "bot", "diagnose", *args, str(path)], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=60)


def test_diagnose_json_gains_the_dns_evidence(server, tmp_path):
    proc = diagnose(server, tmp_path, "--json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    dns = data["dns"]
    spamcop = next(x for x in dns["listings"] if x["list"] == "SpamCop")
    assert spamcop["status"] == "listed" and spamcop["detail"] == SPAMCOP_TXT
    assert dns["mx"]["provider"] == "microsoft_eop" and data["receiver"] == "microsoft_eop"
    assert dns["ptr"] == ["mail.sender.example"] and dns["fcrdns"] is True
    assert dns["spf"]["result"] == "pass" and dns["spf"]["authorises"] is True
    assert dns["dmarc"]["policy"] == "reject"


def test_diagnose_text_shows_the_evidence(server, tmp_path):
    out = diagnose(server, tmp_path).stdout
    assert "DNS evidence:" in out
    assert "SpamCop (bl.spamcop.net) 127.0.0.2" in out
    assert "MX of recipient.example: recipient-example.mail.protection.outlook.com -> " \
           "microsoft_eop" in out
    assert "reverse DNS: mail.sender.example (forward-confirmed)" in out
    assert "SPF of sender.example: pass (matched include:_spf.mailer.example)" in out
    assert "DMARC of sender.example: reject" in out


def test_diagnose_without_dns_asks_nothing(server, tmp_path):
    before = sum(server.queries.values())
    proc = diagnose(server, tmp_path, "--json", "--no-dns")
    assert proc.returncode == 0 and "dns" not in json.loads(proc.stdout)
    assert sum(server.queries.values()) == before

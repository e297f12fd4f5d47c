"""Block-list knowledge and answer interpretation (pure: no sockets)."""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path

import pytest

from bot.core import dnsbl, knowledge
from bot.core.dnsbl import ListingStatus
from bot.core.errors import KnowledgeError
from bot.core.ports import DnsAnswer, DnsStatus

KNOW = knowledge.load()
ZONES = {z.id: z for z in dnsbl.load_zones(KNOW.providers)}
ZEN = ZONES["spamhaus_zen"]
SPAMCOP = ZONES["spamcop_scbl"]


def ok(*records: str) -> DnsAnswer:
    return DnsAnswer(DnsStatus.OK, records, ttl=60)


NX = DnsAnswer(DnsStatus.NXDOMAIN, ttl=30)


# ---------------------------------------------------------------- the data


def test_every_zone_belongs_to_an_active_block_list_operator() -> None:
    for zone in ZONES.values():
        provider = KNOW.providers[zone.provider]
        assert provider.kind == "dnsbl" and provider.status == "active", zone.id


def test_sorbs_is_not_among_the_queried_zones() -> None:
    assert all("sorbs" not in (z.zone or "") + (z.key_zone or "") for z in ZONES.values())


def test_every_zone_cites_its_source_in_the_reference() -> None:
    assert all(z.source.startswith("providers.md B") for z in ZONES.values())


def _write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "dnsbl.toml"
    path.write_text(body)
    return path


ROW = """
[[zone]]
id = "x"
provider = "spamcop"
name = "X"
zone = "x.example.net"
access = "free"
source = "providers.md B3"
{extra}
[zone.codes]
"127.0.0.2" = "listed"
"""


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ('colour = "red"', "unknown key(s) colour"),
        ('access2 = "x"', "unknown key(s) access2"),
        ('ipv6 = "yes"', "'ipv6' must be bool"),
        ('key = "dqs"', "key and key_zone go together"),
        ('key = "other"\nkey_zone = "{key}.x.example"', "key must be one of"),
    ],
)
def test_a_bad_row_is_an_error_naming_the_row(tmp_path: Path, extra: str, message: str) -> None:
    with pytest.raises(KnowledgeError, match=re.escape(message)) as info:
        dnsbl.load_zones(KNOW.providers, _write(tmp_path, ROW.format(extra=extra)))
    assert "dnsbl.toml [[zone]] #1 (x)" in str(info.value)


def test_a_dangling_provider_id_is_an_error(tmp_path: Path) -> None:
    body = ROW.format(extra="").replace('"spamcop"', '"spamcopp"')
    with pytest.raises(KnowledgeError, match=r"#1 \(x\): unknown provider 'spamcopp'"):
        dnsbl.load_zones(KNOW.providers, _write(tmp_path, body))


def test_a_zone_of_a_defunct_list_is_refused(tmp_path: Path) -> None:
    body = ROW.format(extra="").replace('"spamcop"', '"sorbs"')
    with pytest.raises(KnowledgeError, match="'sorbs' is defunct"):
        dnsbl.load_zones(KNOW.providers, _write(tmp_path, body))


def test_a_duplicate_zone_is_an_error(tmp_path: Path) -> None:
    body = ROW.format(extra="") + ROW.format(extra="").replace('id = "x"', 'id = "y"')
    with pytest.raises(KnowledgeError, match=r"duplicate zone zone 'x\.example\.net'"):
        dnsbl.load_zones(KNOW.providers, _write(tmp_path, body))


def test_a_return_code_outside_127_is_an_error(tmp_path: Path) -> None:
    body = ROW.format(extra="").replace('"127.0.0.2" = "listed"', '"10.0.0.2" = "listed"')
    with pytest.raises(KnowledgeError, match=r"not a 127\.x\.y\.z return code"):
        dnsbl.load_zones(KNOW.providers, _write(tmp_path, body))


# ---------------------------------------------------------------- names and input


def test_ipv4_query_name_reverses_the_octets() -> None:
    ip = ipaddress.ip_address("192.0.2.99")
    assert dnsbl.query_name(ip, "zen.spamhaus.org") == "99.2.0.192.zen.spamhaus.org"


def test_ipv6_query_name_is_32_reversed_nibbles() -> None:
    ip = ipaddress.ip_address("2001:db8:1:2:3:4:567:89ab")
    assert dnsbl.query_name(ip, "bl.example") == (
        "b.a.9.8.7.6.5.0.4.0.0.0.3.0.0.0.2.0.0.0.1.0.0.0.8.b.d.0.1.0.0.2.bl.example")


@pytest.mark.parametrize(
    ("text", "problem"),
    [("garbage", "is not an IP address"), ("1.2.3", "is not an IP address"),
     ("999.1.1.1", "is not an IP address"), ("mail.example.com", "is a host name")],
)
def test_input_that_is_not_an_ip_is_explained(text: str, problem: str) -> None:
    target = dnsbl.parse_target(text)
    assert target.problem and problem in target.problem and target.ip is None


@pytest.mark.parametrize("text", ["10.1.2.3", "192.168.0.1", "127.0.0.1", "::1", "fe80::1",
                                  "100.64.0.1", "240.0.0.1", "fd00::1"])
def test_non_public_addresses_are_answered_without_asking(text: str) -> None:
    target = dnsbl.parse_target(text)
    assert target.private and "public block lists never list it" in target.private


@pytest.mark.parametrize(("text", "kind"), [
    ("10.1.2.3", "private range"), ("127.0.0.1", "loopback range"),
    ("169.254.1.1", "link-local range"), ("fe80::1%eth0", "link-local range"),
    ("224.0.0.1", "multicast range"), ("ff02::1", "multicast range"),
    ("0.0.0.0", "unspecified address"), ("::", "unspecified address"),
    ("240.0.0.1", "reserved range"), ("255.255.255.255", "limited broadcast"),
    ("192.0.2.1", "documentation range"), ("2001:db8::1", "documentation range"),
    ("100.64.0.1", "shared address space for carrier-grade NAT"), ("fd00::1", "unique local range"),
    ("64:ff9b::5566:7788", "NAT64 translation range"), ("198.18.0.1", "benchmarking range"),
])
def test_a_non_public_address_says_which_range_it_is_in(text: str, kind: str) -> None:
    target = dnsbl.parse_target(text)
    assert target.private and f"({kind}" in target.private


@pytest.mark.parametrize("text", ["85.10.20.30", "2a01:4f8::1", "8.8.8.8", "::ffff:8.8.8.8"])
def test_a_public_address_is_asked(text: str) -> None:
    target = dnsbl.parse_target(text)
    assert target.ip is not None and not target.private and not target.problem


def test_a_network_is_its_addresses_host_bits_ignored() -> None:
    addresses, problem = dnsbl.parse_sweep("85.10.20.77/24")
    assert problem is None and len(addresses) == 256
    assert addresses[0] == "85.10.20.0" and addresses[-1] == "85.10.20.255"
    assert dnsbl.parse_sweep("2a01:4f8::/120")[0][-1] == "2a01:4f8::ff"


@pytest.mark.parametrize(("text", "problem"), [
    ("85.10.0.0/23", "has 512 addresses; at most 256"),
    ("2a01:4f8::/64", "at most 256"),
    ("85.10.20.0/40", "is not an IP address or a network"),
    ("mail.example.com/24", "is not an IP address or a network"),
])
def test_a_network_too_big_or_malformed_is_explained(text: str, problem: str) -> None:
    addresses, found = dnsbl.parse_sweep(text)
    assert not addresses and found and problem in found


def test_an_ipv4_mapped_ipv6_address_is_checked_as_ipv4() -> None:
    assert str(dnsbl.parse_target("::ffff:85.10.20.30").ip) == "85.10.20.30"


def test_ipv6_skips_lists_without_ipv6_data_and_keyed_lists_without_a_key() -> None:
    plan = dnsbl.plan(ZONES.values(), ipaddress.ip_address("2a01:4f8::1"), {})
    asked = {p.zone.id for p in plan.queries}
    assert asked == {"spamhaus_zen"}
    why = {s.list: s.why for s in plan.skipped}
    assert why["Abusix Mail Intelligence"].startswith("needs a key (DELISTBOT_ABUSIX_KEY")
    assert why["SpamCop"] == "publishes no IPv6 data; not asked"


def test_a_key_goes_into_the_query_but_never_into_what_is_shown() -> None:
    plan = dnsbl.plan([ZEN], ipaddress.ip_address("85.10.20.30"), {"dqs": "SECRETKEY"})
    (query,) = plan.queries
    assert query.name == "30.20.10.85.SECRETKEY.zen.dq.spamhaus.net"
    assert query.shown == "<key>.zen.dq.spamhaus.net"
    assert query.test_listed == "2.0.0.127.SECRETKEY.zen.dq.spamhaus.net"


# ---------------------------------------------------------------- answers


def test_nxdomain_means_not_listed() -> None:
    assert dnsbl.interpret(SPAMCOP, NX).status is ListingStatus.NOT_LISTED


def test_a_defined_code_is_a_listing_with_its_meaning_and_the_txt_reason() -> None:
    listing = dnsbl.interpret(SPAMCOP, ok("127.0.0.2"), ok("Blocked - see https://x"))
    assert listing.status is ListingStatus.LISTED
    assert listing.code == "127.0.0.2" and "SpamCop" in (listing.meaning or "")
    assert listing.detail == "Blocked - see https://x"


def test_several_zen_codes_are_all_explained() -> None:
    listing = dnsbl.interpret(ZEN, ok("127.0.0.10", "127.0.0.4"))
    assert listing.code == "127.0.0.4, 127.0.0.10"
    assert "XBL" in (listing.meaning or "") and "PBL" in (listing.meaning or "")


@pytest.mark.parametrize("code", ["127.255.255.252", "127.255.255.254", "127.255.255.255"])
def test_spamhaus_error_codes_are_unknown_never_listed(code: str) -> None:
    listing = dnsbl.interpret(ZEN, ok(code))
    assert listing.status is ListingStatus.UNKNOWN
    assert (listing.meaning or "").startswith("error:")


def test_an_error_code_beside_a_listing_code_still_makes_it_unknown() -> None:
    listing = dnsbl.interpret(ZEN, ok("127.0.0.2", "127.255.255.254"))
    assert listing.status is ListingStatus.UNKNOWN


def test_a_code_the_list_does_not_define_is_unknown() -> None:
    listing = dnsbl.interpret(SPAMCOP, ok("127.0.0.99"))
    assert listing.status is ListingStatus.UNKNOWN
    assert "not a code SpamCop defines" in listing.detail


@pytest.mark.parametrize("status", [DnsStatus.TIMEOUT, DnsStatus.SERVFAIL, DnsStatus.REFUSED,
                                    DnsStatus.ERROR])
def test_a_failed_lookup_is_unknown(status: DnsStatus) -> None:
    listing = dnsbl.interpret(SPAMCOP, DnsAnswer(status))
    assert listing.status is ListingStatus.UNKNOWN and listing.code is None


def test_a_list_answering_its_test_points_right_is_trusted() -> None:
    assert dnsbl.health(SPAMCOP, ok("127.0.0.2"), NX).problem is None


def test_a_list_that_lists_127_0_0_1_is_not_trusted_even_when_it_says_listed() -> None:
    health = dnsbl.health(SPAMCOP, ok("127.0.0.2"), ok("127.0.0.2"))
    problem = health.problem
    assert problem and "never listed" in problem
    listing = dnsbl.distrust(dnsbl.interpret(SPAMCOP, ok("127.0.0.2")), health)
    assert listing.status is ListingStatus.UNKNOWN
    assert listing.detail.startswith("not trustworthy right now")


def test_a_list_that_does_not_list_127_0_0_2_is_not_trusted_when_it_says_clean() -> None:
    health = dnsbl.health(SPAMCOP, NX, NX)
    problem = health.problem
    assert problem and "always listed" in problem
    assert dnsbl.distrust(dnsbl.interpret(SPAMCOP, NX), health).status is ListingStatus.UNKNOWN


def test_a_list_whose_test_point_lists_an_error_code_is_not_trusted() -> None:
    problem = dnsbl.health(ZEN, ok("127.255.255.254"), NX).problem
    assert problem and "always listed" in problem and "127.255.255.254" in problem


@pytest.mark.parametrize("failed", [DnsStatus.TIMEOUT, DnsStatus.SERVFAIL, DnsStatus.REFUSED])
def test_a_test_point_without_an_answer_makes_the_list_unanswered_not_believed(
        failed: DnsStatus) -> None:
    health = dnsbl.health(SPAMCOP, DnsAnswer(failed), NX)
    assert health.unanswered and health.problem and "“always listed” test point failed" \
        in health.problem
    said_clean = dnsbl.distrust(dnsbl.interpret(SPAMCOP, NX), health)
    assert said_clean.status is ListingStatus.UNKNOWN
    assert said_clean.detail.startswith("not trustworthy right now")
    assert said_clean.detail.endswith("it said not listed")


def test_a_lookup_that_failed_like_its_test_points_keeps_its_own_reason() -> None:
    health = dnsbl.health(SPAMCOP, DnsAnswer(DnsStatus.TIMEOUT), DnsAnswer(DnsStatus.TIMEOUT))
    assert health.problem and "test points failed" in health.problem
    own = dnsbl.interpret(SPAMCOP, DnsAnswer(DnsStatus.TIMEOUT, detail="2 s per query"))
    assert dnsbl.distrust(own, health) == own
    assert own.status is ListingStatus.UNKNOWN and "timeout" in own.detail


def test_a_healthy_list_is_believed_as_it_answered() -> None:
    health = dnsbl.health(SPAMCOP, ok("127.0.0.2"), NX)
    listing = dnsbl.interpret(SPAMCOP, ok("127.0.0.2"))
    assert health == dnsbl.Health() and dnsbl.distrust(listing, health) == listing

"""SPF (RFC 7208) evaluation and DMARC lookup, each case in two worlds: DNS answered from an
in-memory table (a fake of the `Resolver` port by behaviour: names that exist, names that fail),
and the same table served by the loopback DNS server (TXT, A, AAAA, MX, PTR records; a failing
name never answers) and asked through the production resolver over UDP, as in production.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from bot.adapters.dns import DnsResolver
from bot.core import spf
from bot.core.ports import DnsAnswer, DnsStatus
from tests.dnsserver import DnsTestServer, Drop

IP = "192.0.2.10"


class TableDns:
    """Answers from {(name, type): [records]}; names in `failing` time out."""

    def __init__(self, records: dict[tuple[str, str], list[str]],
                 failing: set[str] | None = None) -> None:
        self.records = {(n.lower(), t): v for (n, t), v in records.items()}
        self.failing = failing or set()
        self.asked: list[tuple[str, str]] = []

    async def query(self, name: str, rdtype: str) -> DnsAnswer:
        name = name.rstrip(".").lower()
        self.asked.append((name, rdtype))
        if name in self.failing:
            return DnsAnswer(DnsStatus.TIMEOUT)
        if (name, rdtype) in self.records:
            return DnsAnswer(DnsStatus.OK, tuple(self.records[(name, rdtype)]), 60)
        exists = any(n == name for n, _ in self.records)
        return DnsAnswer(DnsStatus.NODATA if exists else DnsStatus.NXDOMAIN, ttl=60)


class LoopbackDns:
    """The same table served by the loopback DNS server, asked with the production resolver;
    names in `failing` (and below them) never answer."""

    def __init__(self, server: DnsTestServer, records: dict[tuple[str, str], list[str]],
                 failing: set[str] | None = None) -> None:
        server.reset()
        for (name, rdtype), values in records.items():
            for value in values:
                if rdtype == "TXT":
                    server.add_txt(name, value)
                else:
                    server.add(name, rdtype, value)
        for name in failing or ():
            server.behave(name, Drop())
        self.resolver = DnsResolver([("127.0.0.1", server.port)], timeout=0.3)
        self.asked: list[tuple[str, str]] = []

    async def query(self, name: str, rdtype: str) -> DnsAnswer:
        self.asked.append((name.rstrip(".").lower(), rdtype))
        return await self.resolver.query(name, rdtype)


@pytest.fixture(scope="module")
def loopback() -> Iterator[DnsTestServer]:
    server = DnsTestServer().start()
    yield server
    server.stop()


WORLD: list[object] = []  # the loopback server, when the test runs in that world


@pytest.fixture(params=["table", "loopback"], autouse=True)
def world(request: pytest.FixtureRequest) -> Iterator[str]:
    WORLD[:] = [request.getfixturevalue("loopback")] if request.param == "loopback" else []
    yield request.param
    WORLD.clear()


def make_dns(records: dict[tuple[str, str], list[str]],
             failing: set[str] | None = None) -> TableDns | LoopbackDns:
    if WORLD:
        server = WORLD[0]
        assert isinstance(server, DnsTestServer)
        return LoopbackDns(server, records, failing)
    return TableDns(records, failing)


def check(records: dict[tuple[str, str], list[str]], ip: str = IP, domain: str = "example.com",
          failing: set[str] | None = None, sender: str | None = None) -> spf.SpfResult:
    return asyncio.run(spf.check_host(make_dns(records, failing), ip, domain, sender))


def txt(record: str, name: str = "example.com") -> dict[tuple[str, str], list[str]]:
    return {(name, "TXT"): [record]}


@pytest.mark.parametrize(
    ("record", "result"),
    [
        ("v=spf1 ip4:192.0.2.0/24 -all", "pass"),
        ("v=spf1 ip4:192.0.2.10 -all", "pass"),
        ("v=spf1 ip4:198.51.100.0/24 -all", "fail"),
        ("v=spf1 ip4:198.51.100.0/24 ~all", "softfail"),
        ("v=spf1 ip4:198.51.100.0/24 ?all", "neutral"),
        ("v=spf1 ip4:198.51.100.0/24", "neutral"),
        ("v=spf1 -ip4:192.0.2.10 +all", "fail"),
        ("V=SPF1 IP4:192.0.2.10 -ALL", "pass"),
        ("v=spf1 ip6:2001:db8::/32 -all", "fail"),
        ("v=spf1 foo=bar ip4:192.0.2.10 -all", "pass"),
    ],
)
def test_address_mechanisms_and_qualifiers(record: str, result: str) -> None:
    assert check(txt(record)).result == result


def test_an_ip6_mechanism_matches_an_ipv6_client() -> None:
    assert check(txt("v=spf1 ip6:2001:db8::/32 -all"), ip="2001:db8::5").result == "pass"


def test_no_record_is_none_and_other_txt_records_are_ignored() -> None:
    assert check({("example.com", "TXT"): ["google-site-verification=x"]}).result == "none"
    assert check({}).result == "none"


def test_two_spf_records_are_a_permerror() -> None:
    records = {("example.com", "TXT"): ["v=spf1 -all", "v=spf1 +all"]}
    assert check(records).result == "permerror"


@pytest.mark.parametrize("record", ["v=spf1 ip4:192.0.2.300 -all", "v=spf1 frobnicate -all",
                                    "v=spf1 include -all", "v=spf1 a/33 -all",
                                    "v=spf1 redirect=a.example redirect=b.example",
                                    "v=spf1 -all ip4:bad"])
def test_a_syntax_error_anywhere_is_a_permerror_before_evaluation(record: str) -> None:
    result = check(txt(record))
    assert result.result == "permerror" and result.detail


def test_a_dns_failure_is_a_temperror_not_a_guess() -> None:
    assert check({}, failing={"example.com"}).result == "temperror"
    records = txt("v=spf1 include:slow.example -all")
    assert check(records, failing={"slow.example"}).result == "temperror"


def test_include_passes_only_on_the_included_pass() -> None:
    records = {**txt("v=spf1 include:_spf.esp.example -all"),
               **txt("v=spf1 ip4:192.0.2.0/24 -all", "_spf.esp.example")}
    result = check(records)
    assert result.result == "pass" and result.matched == "include:_spf.esp.example"
    records[("_spf.esp.example", "TXT")] = ["v=spf1 ip4:198.51.100.0/24 -all"]
    assert check(records).result == "fail"  # the include's fail is "no match", then -all


def test_include_of_a_domain_without_spf_is_a_permerror() -> None:
    assert check(txt("v=spf1 include:nothing.example -all")).result == "permerror"


def test_a_and_mx_mechanisms_with_cidr_lengths() -> None:
    records = {**txt("v=spf1 a:relay.example/24 -all"), ("relay.example", "A"): ["192.0.2.200"]}
    assert check(records).result == "pass"
    records = {**txt("v=spf1 mx -all"), ("example.com", "MX"): ["10 mx1.example.com."],
               ("mx1.example.com", "A"): ["192.0.2.10"]}
    assert check(records).result == "pass"
    records[("mx1.example.com", "A")] = ["192.0.2.11"]
    assert check(records).result == "fail"
    records[("example.com", "TXT")] = ["v=spf1 mx/30 -all"]
    assert check(records).result == "pass"


def test_a_uses_aaaa_for_an_ipv6_client_and_the_ipv6_cidr_length() -> None:
    records = {**txt("v=spf1 a/24//64 -all"), ("example.com", "AAAA"): ["2001:db8:1:2::1"]}
    assert check(records, ip="2001:db8:1:2::99").result == "pass"
    assert check(records, ip="2001:db8:1:3::99").result == "fail"


def test_ptr_mechanism_needs_a_forward_confirmed_name() -> None:
    records = {**txt("v=spf1 ptr -all"), ("10.2.0.192.in-addr.arpa", "PTR"): ["mail.example.com."],
               ("mail.example.com", "A"): ["192.0.2.10"]}
    assert check(records).result == "pass"
    records[("mail.example.com", "A")] = ["192.0.2.99"]
    assert check(records).result == "fail"


def test_exists_with_a_macro() -> None:
    records = {**txt("v=spf1 exists:%{ir}.%{l1r+-}._spf.%{d} -all"),
               ("10.2.0.192.strong._spf.example.com", "A"): ["127.0.0.2"]}
    assert check(records, sender="strong-bad@example.com").result == "pass"


def test_redirect_applies_when_nothing_matched() -> None:
    records = {**txt("v=spf1 redirect=_spf.example.net"),
               **txt("v=spf1 ip4:192.0.2.0/24 -all", "_spf.example.net")}
    assert check(records).result == "pass"
    records[("example.com", "TXT")] = ["v=spf1 redirect=missing.example"]
    assert check(records).result == "permerror"


def test_more_than_ten_dns_mechanisms_is_a_permerror() -> None:
    records = txt("v=spf1 " + " ".join(f"a:h{i}.example" for i in range(11)) + " -all")
    for i in range(11):
        records[(f"h{i}.example", "A")] = ["198.51.100.1"]
    result = check(records)
    assert result.result == "permerror" and "more than 10 DNS lookups" in result.detail


def test_ten_dns_mechanisms_are_allowed() -> None:
    records = txt("v=spf1 " + " ".join(f"a:h{i}.example" for i in range(9)) + " ip4:192.0.2.10"
                  " a:h9.example -all")
    for i in range(10):
        records[(f"h{i}.example", "A")] = ["198.51.100.1"]
    assert check(records).result == "pass"


def test_lookups_inside_includes_count_toward_the_limit() -> None:
    records = txt("v=spf1 include:a.example include:b.example -all")
    records.update(txt("v=spf1 " + " ".join(f"a:x{i}.example" for i in range(5)) + " ?all",
                       "a.example"))
    records.update(txt("v=spf1 " + " ".join(f"a:y{i}.example" for i in range(5)) + " ?all",
                       "b.example"))
    for i in range(5):
        records[(f"x{i}.example", "A")] = records[(f"y{i}.example", "A")] = ["198.51.100.1"]
    assert check(records).result == "permerror"


def test_more_than_two_void_lookups_is_a_permerror() -> None:
    record = "v=spf1 a:n1.example a:n2.example a:n3.example -all"
    result = check(txt(record))
    assert result.result == "permerror" and "void" in result.detail
    assert check(txt("v=spf1 a:n1.example a:n2.example -all")).result == "fail"


def test_more_than_ten_mx_names_is_a_permerror() -> None:
    records = {**txt("v=spf1 mx -all"),
               ("example.com", "MX"): [f"10 mx{i}.example.com." for i in range(11)]}
    assert check(records).result == "permerror"


@pytest.mark.parametrize(
    ("macro", "expanded"),
    [  # RFC 7208 §7.4 examples, sender strong-bad@email.example.com, IP 192.0.2.3
        ("%{s}", "strong-bad@email.example.com"), ("%{o}", "email.example.com"),
        ("%{d}", "email.example.com"), ("%{d4}", "email.example.com"),
        ("%{d3}", "email.example.com"), ("%{d2}", "example.com"), ("%{d1}", "com"),
        ("%{dr}", "com.example.email"), ("%{d2r}", "example.email"), ("%{l}", "strong-bad"),
        ("%{l-}", "strong.bad"), ("%{lr}", "strong-bad"), ("%{lr-}", "bad.strong"),
        ("%{l1r-}", "strong"), ("%{ir}.%{v}._spf.%{d2}", "3.2.0.192.in-addr._spf.example.com"),
        ("%{lr-}.lp._spf.%{d2}", "bad.strong.lp._spf.example.com"),
    ],
)
def test_macro_expansion_matches_the_rfc_examples(macro: str, expanded: str) -> None:
    state = spf._State(spf.ipaddress.ip_address("192.0.2.3"), "strong-bad@email.example.com",
                       TableDns({}))
    assert spf.expand(macro, state, "email.example.com") == expanded


def test_ipv6_i_macro_is_dotted_nibbles() -> None:
    state = spf._State(spf.ipaddress.ip_address("2001:db8::cb01"), "a@b.example", TableDns({}))
    assert spf.expand("%{ir}.%{v}._spf.%{d2}", state, "email.example.com") == (
        "1.0.b.c.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6._spf.example.com")


# ---------------------------------------------------------------- DMARC


def dmarc(records: dict[tuple[str, str], list[str]], domain: str = "example.com",
          failing: set[str] | None = None) -> spf.DmarcResult:
    return asyncio.run(spf.dmarc_policy(make_dns(records, failing), domain))


def test_dmarc_policy_at_the_domain() -> None:
    result = dmarc(txt("v=DMARC1; p=quarantine; pct=50; rua=mailto:d@example.com",
                       "_dmarc.example.com"))
    assert (result.status, result.policy) == ("found", "quarantine")
    assert result.to_json()["pct"] == "50" and result.to_json()["aspf"] == "r"


def test_dmarc_tree_walk_finds_the_parent_and_applies_its_subdomain_policy() -> None:
    records = txt("v=DMARC1; p=reject; sp=none", "_dmarc.example.com")
    result = dmarc(records, "news.mail.example.com")
    assert (result.found_at, result.policy) == ("example.com", "none")


def test_dmarc_tree_walk_never_asks_the_tld() -> None:
    dns = make_dns({})
    asyncio.run(spf.dmarc_policy(dns, "a.b.example.com"))
    assert [n for n, _ in dns.asked] == ["_dmarc.a.b.example.com", "_dmarc.b.example.com",
                                         "_dmarc.example.com"]


def test_dmarc_none_invalid_and_temperror() -> None:
    assert dmarc({}).status == "none"
    assert dmarc(txt("v=DMARC1; p=bogus", "_dmarc.example.com")).status == "invalid"
    assert dmarc(txt("p=reject; v=DMARC1", "_dmarc.example.com")).status == "none"
    assert dmarc({}, failing={"_dmarc.example.com"}).status == "temperror"
    two = {("_dmarc.example.com", "TXT"): ["v=DMARC1; p=none", "v=DMARC1; p=reject"]}
    assert dmarc(two).status == "invalid"


@pytest.mark.parametrize("domain", ["a" * 64 + ".example", "two..dots.example", "example",
                                    "x." * 127 + "example"])
def test_a_domain_that_cannot_exist_is_said_so_and_nothing_is_asked(domain: str) -> None:
    dns = make_dns({})
    result = asyncio.run(spf.check_host(dns, IP, domain))
    assert result.result == "none" and result.detail.startswith("not a valid domain name")
    policy = asyncio.run(spf.dmarc_policy(dns, domain))
    assert policy.status == "invalid" and policy.detail.startswith("not a valid domain name")
    assert dns.asked == []


def test_an_internationalised_domain_is_asked_in_its_idna_form() -> None:
    records = txt("v=spf1 ip4:192.0.2.0/24 -all", "xn--bcher-kva.example")
    assert check(records, domain="bücher.example").result == "pass"


def test_an_internationalised_domain_gets_its_own_dmarc_policy_not_the_subdomain_one() -> None:
    records = txt("v=DMARC1; p=reject; sp=none", "_dmarc.xn--bcher-kva.example")
    result = dmarc(records, "bücher.example")
    assert (result.found_at, result.policy) == ("xn--bcher-kva.example", "reject")

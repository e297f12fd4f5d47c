"""`check_ip` and the diagnosis evidence over real DNS, against the loopback server."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import pytest

from bot.adapters.dns import DnsResolver
from bot.core import dnsbl, knowledge
from bot.core.dnsbl import ListingStatus
from bot.core.model import Diagnosis
from bot.service.evidence import EvidenceService, enrich
from tests.dnsserver import (
    CLEAN_IP,
    DQS_KEY,
    LISTED_IP,
    LISTED_IP6,
    SPAMCOP_TXT,
    Delay,
    DnsTestServer,
    Drop,
    Rcode,
    Wildcard,
    reverse,
    seed,
)

KNOW = knowledge.load()
ZONES = dnsbl.load_zones(KNOW.providers)
TIMEOUT = 0.3


def queried_zones(keys: dict[str, str | None]) -> list[tuple[str, bool]]:
    out = []
    for z in ZONES:
        name = z.query_zone(keys)
        if name:
            out.append((name, z.ipv6))
    return out


@pytest.fixture(scope="module")
def server() -> Iterator[DnsTestServer]:
    srv = DnsTestServer().start()
    yield srv
    srv.stop()


@pytest.fixture
def dns(server: DnsTestServer) -> DnsTestServer:
    server.reset()
    seed(server, queried_zones({"dqs": DQS_KEY}) + queried_zones({}))
    return server


def service(server: DnsTestServer, keys: dict[str, str | None] | None = None,
            deadline: float = 3.0, resolver: DnsResolver | None = None) -> EvidenceService:
    resolver = resolver or DnsResolver([("127.0.0.1", server.port)], timeout=TIMEOUT)
    return EvidenceService(KNOW, ZONES, resolver, keys or {}, deadline=deadline)


def by_list(result: object) -> dict[str, dnsbl.Listing]:
    return {x.list: x for x in result.listings}  # type: ignore[attr-defined]


def test_a_listed_ip_is_listed_with_the_meaning_and_the_lists_txt_reason(dns: DnsTestServer):
    result = asyncio.run(service(dns).check_ip(LISTED_IP))
    spamcop = by_list(result)["SpamCop"]
    assert spamcop.status is ListingStatus.LISTED
    assert spamcop.code == "127.0.0.2" and spamcop.detail == SPAMCOP_TXT
    assert by_list(result)["Spamhaus ZEN"].meaning.startswith("XBL")
    assert by_list(result)["PSBL"].status is ListingStatus.NOT_LISTED


def test_a_clean_ip_is_not_listed_anywhere_and_nothing_is_unknown(dns: DnsTestServer):
    result = asyncio.run(service(dns).check_ip(CLEAN_IP))
    assert {x.status for x in result.listings} == {ListingStatus.NOT_LISTED}
    assert len(result.listings) == len(ZONES) - 1  # Abusix needs a key
    assert [s.list for s in result.skipped] == ["Abusix Mail Intelligence"]


def test_sorbs_is_never_asked(dns: DnsTestServer):
    asyncio.run(service(dns).check_ip(LISTED_IP))
    assert dns.asked("sorbs.net") == 0 and dns.asked("spamcop.net") > 0


def test_spamhaus_error_answers_are_unknown_and_the_missing_dqs_key_is_said(dns: DnsTestServer):
    dns.behave("zen.spamhaus.org", Wildcard("127.255.255.254"))
    result = asyncio.run(service(dns).check_ip(LISTED_IP))
    zen = by_list(result)["Spamhaus ZEN"]
    assert zen.status is ListingStatus.UNKNOWN and zen.code == "127.255.255.254"
    assert "public/open resolver" in (zen.meaning or "")
    assert any("DELISTBOT_DQS_KEY is not set" in note for note in result.notes)


def test_with_a_dqs_key_spamhaus_is_asked_through_dqs_and_the_key_is_never_shown(
        dns: DnsTestServer):
    dns.behave("zen.spamhaus.org", Drop())  # proves the public mirror is not asked
    result = asyncio.run(service(dns, {"dqs": DQS_KEY}).check_ip(LISTED_IP))
    zen = by_list(result)["Spamhaus ZEN"]
    assert zen.status is ListingStatus.LISTED and zen.zone == "<key>.zen.dq.spamhaus.net"
    assert DQS_KEY not in json.dumps(result.to_json())
    assert not result.notes


def test_a_slow_zone_beyond_the_timeout_is_unknown_and_the_others_still_answer(
        dns: DnsTestServer):
    dns.behave("psbl.surriel.com", Delay(TIMEOUT * 3))
    dns.behave("bl.mailspike.net", Drop())
    result = asyncio.run(service(dns).check_ip(LISTED_IP))
    for name in ("PSBL", "Mailspike"):
        assert by_list(result)[name].status is ListingStatus.UNKNOWN
        assert "timeout" in by_list(result)[name].detail
    assert by_list(result)["SpamCop"].status is ListingStatus.LISTED


def test_a_slow_zone_within_the_timeout_answers(dns: DnsTestServer):
    dns.behave("psbl.surriel.com", Delay(TIMEOUT / 3))
    result = asyncio.run(service(dns).check_ip(CLEAN_IP))
    assert by_list(result)["PSBL"].status is ListingStatus.NOT_LISTED


@pytest.mark.parametrize("rcode", ["SERVFAIL", "REFUSED"])
def test_a_failing_zone_is_unknown_never_clean(dns: DnsTestServer, rcode: str):
    dns.behave("bl.spamcop.net", Rcode(rcode))
    listing = by_list(asyncio.run(service(dns).check_ip(LISTED_IP)))["SpamCop"]
    assert listing.status is ListingStatus.UNKNOWN and rcode in listing.detail


def test_a_zone_listing_everything_fails_its_test_point_and_is_not_believed(dns: DnsTestServer):
    dns.behave("psbl.surriel.com", Wildcard("127.0.0.2"))  # like SpamCop's 2021 domain lapse
    listing = by_list(asyncio.run(service(dns).check_ip(CLEAN_IP)))["PSBL"]
    assert listing.status is ListingStatus.UNKNOWN
    assert listing.detail.startswith("not trustworthy right now")


def test_the_overall_deadline_cuts_off_what_has_not_answered(dns: DnsTestServer):
    dns.behave("psbl.surriel.com", Delay(1.0))
    resolver = DnsResolver([("127.0.0.1", dns.port)], timeout=2.0)
    result = asyncio.run(service(dns, deadline=0.4, resolver=resolver).check_ip(CLEAN_IP))
    assert "overall deadline" in by_list(result)["PSBL"].detail
    assert by_list(result)["SpamCop"].status is ListingStatus.NOT_LISTED


def test_an_ipv6_address_is_looked_up_by_nibbles(dns: DnsTestServer):
    result = asyncio.run(service(dns).check_ip(LISTED_IP6))
    zen = by_list(result)["Spamhaus ZEN"]
    assert zen.status is ListingStatus.LISTED and zen.code == "127.0.0.3"
    assert "Listed by CSS" in zen.detail
    assert dns.asked(reverse(LISTED_IP6, "zen.spamhaus.org")) >= 1
    assert "SpamCop" in {s.list for s in result.skipped}


def test_answers_are_cached_for_their_ttl_and_shared_between_checks(dns: DnsTestServer):
    now = [1000.0]
    resolver = DnsResolver([("127.0.0.1", dns.port)], timeout=TIMEOUT, clock=lambda: now[0])
    svc = service(dns, resolver=resolver)

    async def twice() -> None:
        await svc.check_ip(LISTED_IP)
        sent = resolver.sent
        await svc.check_ip(LISTED_IP)
        assert resolver.sent == sent  # all from the cache
        now[0] += 61  # past every TTL in the seed (60 s, negative 30 s)
        await svc.check_ip(LISTED_IP)
        assert resolver.sent == 2 * sent

    asyncio.run(twice())


def test_concurrent_checks_ask_each_test_point_once(dns: DnsTestServer):
    svc = service(dns)

    async def both() -> None:
        await asyncio.gather(svc.check_ip(LISTED_IP), svc.check_ip(CLEAN_IP))

    asyncio.run(both())
    assert dns.queries[(reverse("127.0.0.2", "bl.spamcop.net"), "A")] == 1


def test_a_sweep_asks_each_zones_test_points_once_and_answers_each_address(
        dns: DnsTestServer):
    ips = [f"85.10.20.{i}" for i in range(24, 40)] + ["10.0.0.1", "2a01:4f8:10:20::30"]
    results = asyncio.run(service(dns).check_ips(ips))
    assert [r.query for r in results] == ips
    listed = {r.ip: by_list(r) for r in results if r.with_status(ListingStatus.LISTED)}
    assert set(listed) == {LISTED_IP, LISTED_IP6}
    assert listed[LISTED_IP]["SpamCop"].detail == SPAMCOP_TXT
    assert results[-2].private and not results[-2].listings
    for zone in ("bl.spamcop.net", "psbl.surriel.com"):
        assert dns.queries[(reverse("127.0.0.2", zone), "A")] == 1
        assert dns.queries[(reverse("127.0.0.1", zone), "A")] == 1


def test_a_sweep_distrusts_a_zone_failing_its_test_points_for_every_address(
        dns: DnsTestServer):
    dns.behave("psbl.surriel.com", Wildcard("127.0.0.2"))
    results = asyncio.run(service(dns).check_ips([LISTED_IP, CLEAN_IP]))
    for result in results:
        psbl = by_list(result)["PSBL"]
        assert psbl.status is ListingStatus.UNKNOWN
        assert psbl.detail.startswith("not trustworthy right now")


def test_a_sweep_asks_a_zone_that_never_answers_only_for_its_test_points(dns: DnsTestServer):
    dns.behave("psbl.surriel.com", Drop())
    # 48 addresses, 8 queries in flight: one dead zone's 48 timeouts (0.3 s each) would hold
    # the slots for 1.8 s, past the deadline, and every other list's answers would be lost.
    resolver = DnsResolver([("127.0.0.1", dns.port)], timeout=TIMEOUT, concurrency=8)
    ips = [LISTED_IP] + [f"85.10.21.{i}" for i in range(47)]
    results = asyncio.run(service(dns, deadline=1.5, resolver=resolver).check_ips(ips))
    assert dns.asked("psbl.surriel.com") == 2  # "always listed" and "never listed"
    for result in results:
        psbl = by_list(result)["PSBL"]
        assert psbl.status is ListingStatus.UNKNOWN
        assert psbl.detail.startswith("the list is not answering") and "timeout" in psbl.detail
        others = [x for x in result.listings if x.list != "PSBL"]
        assert all(x.status is not ListingStatus.UNKNOWN for x in others)
    assert by_list(results[0])["SpamCop"].status is ListingStatus.LISTED


def test_a_zone_whose_always_listed_test_point_is_gone_is_not_believed(dns: DnsTestServer):
    dns.remove(reverse("127.0.0.2", "bl.spamcop.net"))  # a lapsed or emptied zone
    result = asyncio.run(service(dns).check_ip(LISTED_IP))
    spamcop = by_list(result)["SpamCop"]
    assert spamcop.status is ListingStatus.UNKNOWN
    assert "“always listed” test point answers not listed" in spamcop.detail
    assert spamcop.detail.endswith("it said listed (127.0.0.2)")
    assert by_list(result)["Spamhaus ZEN"].status is ListingStatus.LISTED


def test_a_zone_whose_test_points_time_out_is_unknown_even_when_the_ip_answers(
        dns: DnsTestServer):
    dns.behave(reverse("127.0.0.2", "bl.spamcop.net"), Drop())
    spamcop = by_list(asyncio.run(service(dns).check_ip(LISTED_IP)))["SpamCop"]
    assert spamcop.status is ListingStatus.UNKNOWN
    assert "“always listed” test point failed: no answer in time" in spamcop.detail


def test_the_overall_deadline_cuts_off_a_sweep_cleanly(dns: DnsTestServer):
    dns.behave("psbl.surriel.com", Delay(1.0))
    resolver = DnsResolver([("127.0.0.1", dns.port)], timeout=2.0)
    results = asyncio.run(service(dns, deadline=0.4, resolver=resolver).check_ips(
        [LISTED_IP, CLEAN_IP]))
    for result in results:
        assert "overall deadline" in by_list(result)["PSBL"].detail
    assert by_list(results[0])["SpamCop"].status is ListingStatus.LISTED


def test_a_check_cut_off_by_its_deadline_leaves_the_shared_test_point_check_to_the_next(
        dns: DnsTestServer):
    dns.behave(reverse("127.0.0.2", "psbl.surriel.com"), Delay(1.0))  # only the test point
    resolver = DnsResolver([("127.0.0.1", dns.port)], timeout=2.0)
    svc = service(dns, deadline=0.8, resolver=resolver)

    async def two() -> tuple[object, object]:
        first = asyncio.ensure_future(svc.check_ip(CLEAN_IP))
        await asyncio.sleep(0.5)  # the second check joins the test-point check in flight
        second = asyncio.ensure_future(svc.check_ip(LISTED_IP))
        return await first, await second

    first, second = asyncio.run(two())
    assert "overall deadline" in by_list(first)["PSBL"].detail
    assert by_list(second)["PSBL"].status is ListingStatus.NOT_LISTED
    assert dns.queries[(reverse("127.0.0.2", "psbl.surriel.com"), "A")] == 1


def test_failures_are_not_cached(dns: DnsTestServer):
    dns.behave("bl.spamcop.net", Rcode("SERVFAIL"))
    svc = service(dns)

    async def run() -> None:
        await svc.check_ip(CLEAN_IP)
        dns.behaviours.clear()
        listing = by_list(await svc.check_ip(CLEAN_IP))["SpamCop"]
        assert listing.status is ListingStatus.NOT_LISTED

    asyncio.run(run())


def test_a_long_txt_record_arrives_over_tcp(dns: DnsTestServer):
    long_spf = "v=spf1 " + " ".join(f"ip4:85.{i}.0.0/16" for i in range(60)) + " -all"
    dns.add_txt("big.example", long_spf)
    resolver = DnsResolver([("127.0.0.1", dns.port)], timeout=TIMEOUT)
    answer = asyncio.run(resolver.query("big.example", "TXT"))
    assert answer.records == (long_spf,)


# ---------------------------------------------------------------- diagnosis evidence


def diagnosis(ip: str, receiver: str | None = None) -> Diagnosis:
    return Diagnosis(source="t.eml", is_bounce=True, sending_ip=ip,
                     sender_domain="sender.example", recipient_domain="recipient.example",
                     receiver=receiver)


def test_evidence_names_the_receiver_from_mx_and_checks_the_sender(dns: DnsTestServer):
    svc = service(dns)
    evidence = asyncio.run(svc.gather(diagnosis(LISTED_IP)))
    assert evidence.mx and evidence.mx["provider"] == "microsoft_eop"
    assert evidence.ptr == ("mail.sender.example",) and evidence.fcrdns is True
    assert evidence.spf and evidence.spf.result == "pass"
    assert evidence.spf.matched == "include:_spf.mailer.example"
    assert evidence.dmarc and evidence.dmarc.policy == "reject"
    enriched = enrich(diagnosis(LISTED_IP), evidence)
    assert enriched.receiver == "microsoft_eop"
    dns_json = enriched.to_json()["dns"]
    assert set(dns_json) >= {"listings", "mx", "ptr", "fcrdns", "spf", "dmarc"}
    spamcop = next(x for x in dns_json["listings"] if x["list"] == "SpamCop")
    assert spamcop["status"] == "listed" and spamcop["zone"] == "bl.spamcop.net"


def test_evidence_reports_a_generic_ptr_as_not_forward_confirmed(dns: DnsTestServer):
    evidence = asyncio.run(service(dns).gather(diagnosis(CLEAN_IP, receiver="google_gmail")))
    assert evidence.ptr == ("85-10-20-31.dyn.isp.example",) and evidence.fcrdns is False
    assert enrich(diagnosis(CLEAN_IP, "google_gmail"), evidence).receiver == "google_gmail"


def test_evidence_for_a_private_ip_asks_no_list(dns: DnsTestServer):
    evidence = asyncio.run(service(dns).gather(diagnosis("10.0.0.5")))
    assert evidence.check and evidence.check.private and not evidence.check.listings
    assert evidence.ptr is None and evidence.spf is None
    assert dns.asked("spamcop.net") == 0


@pytest.mark.parametrize(("mx", "provider"), [
    ("contoso-com.mail.protection.outlook.com", "microsoft_eop"),
    ("mail.messaging.microsoft.com", "microsoft_eop"),  # the seed bounce's FOPE-era host
    ("contoso-com.olc.protection.outlook.com", "outlook_com"),
    ("aspmx.l.google.com", "google_gmail"),
    ("alt1.aspmx.l.google.com", "google_gmail"),
    ("mta7.am0.yahoodns.net", "yahoo_aol"),
    ("mx0a-00123401.pphosted.com", "proofpoint"),
    ("eu-smtp-inbound-1.mimecast.com", "mimecast"),
    ("mx1.hc1234-56.iphmx.com", "cisco_talos"),
    ("d123456a.ess.barracudanetworks.com", "barracuda"),
    ("d123456b.ess.de.barracudanetworks.com", "barracuda"),
    ("mx.unknown-host.example", None),
])
def test_the_receiver_is_named_from_the_recipient_domains_mx(dns: DnsTestServer, mx: str,
                                                              provider: str | None):
    dns.add("customer.example", "MX", f"10 {mx}.", "20 backup.unknown-host.example.")
    found = asyncio.run(service(dns).mx("customer.example"))
    assert found["provider"] == provider and found["hosts"][0] == mx
    assert found["status"] == "ok"


def test_the_preferred_mx_decides_whatever_order_the_records_come_in(dns: DnsTestServer):
    dns.add("customer.example", "MX", "30 mx.unknown-host.example.",
            "5 mx0b-00123401.pphosted.com.", "10 customer.mail.protection.outlook.com.")
    found = asyncio.run(service(dns).mx("customer.example"))
    assert found["provider"] == "proofpoint"
    assert found["hosts"] == ["mx0b-00123401.pphosted.com",
                              "customer.mail.protection.outlook.com", "mx.unknown-host.example"]


def test_a_recipient_domain_without_mx_names_no_receiver(dns: DnsTestServer):
    svc = service(dns)
    assert asyncio.run(svc.mx("gone.example")) == {
        "domain": "gone.example", "status": "nxdomain", "hosts": [], "provider": None}
    dns.behave("broken.example", Rcode("SERVFAIL"))
    assert asyncio.run(svc.mx("broken.example"))["status"] == "servfail"


def test_a_recipient_domain_that_cannot_exist_is_not_asked(dns: DnsTestServer):
    domain = "a" * 64 + ".example"
    assert asyncio.run(service(dns).mx(domain)) == {
        "domain": domain, "status": "invalid", "hosts": [], "provider": None}
    assert sum(dns.queries.values()) == 0

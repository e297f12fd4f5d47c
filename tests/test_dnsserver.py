"""The loopback DNS server's quick path answers exactly what its dnspython path answers.

The quick path exists for speed (benchmarks/dns_sweep.py); these tests keep it honest, so the
tests and benchmarks that rely on the server see the same DNS either way.
"""

from __future__ import annotations

import asyncio

import dns.flags
import dns.message
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import pytest

from tests.dnsserver import LISTED_IP, DnsTestServer, Drop, Wildcard, reverse


@pytest.fixture(scope="module")
def server() -> DnsTestServer:
    srv = DnsTestServer()  # not started: answers are computed in-process
    srv.add(reverse(LISTED_IP, "bl.spamcop.net"), "A", "127.0.0.2")
    srv.add(reverse(LISTED_IP, "bl.spamcop.net"), "A", "127.0.0.3", "127.0.0.2", ttl=30)
    srv.add_txt(reverse(LISTED_IP, "bl.spamcop.net"), "listed " * 40)
    srv.add("sender.example", "MX", "10 mx.sender.example.", "20 mx2.sender.example.")
    srv.add(reverse(LISTED_IP, "in-addr.arpa"), "PTR", "mail.sender.example.")
    srv.add("example", "TXT", '"single label"')
    srv.add("big.example", "TXT", *(f'"{"x" * 200} {i}"' for i in range(20)))
    return srv


def both(server: DnsTestServer, query: dns.message.Message,
         tcp: bool = False) -> tuple[dns.message.Message, dns.message.Message]:
    wire = query.to_wire()
    quick = server.quick_answer(wire, tcp=tcp)
    assert quick is not None, "a plain query should take the quick path"
    slow = asyncio.run(server.answer(wire, tcp=tcp))
    assert slow is not None
    return dns.message.from_wire(quick), dns.message.from_wire(slow)


def same(a: dns.message.Message, b: dns.message.Message) -> None:
    assert (a.id, a.flags, a.rcode(), a.edns, a.payload) == (b.id, b.flags, b.rcode(), b.edns,
                                                             b.payload)
    assert a.question == b.question
    for x, y in ((a.answer, b.answer), (a.authority, b.authority)):
        assert [(r.name, r.rdtype, r.ttl, sorted(r.to_text().lower().splitlines())) for r in x] == \
               [(r.name, r.rdtype, r.ttl, sorted(r.to_text().lower().splitlines())) for r in y]


@pytest.mark.parametrize(("name", "rdtype"), [
    (reverse(LISTED_IP, "bl.spamcop.net"), "A"),  # two adds, duplicate rdata, least TTL
    (reverse(LISTED_IP, "bl.spamcop.net"), "TXT"),  # split into character-strings
    ("sender.example", "MX"),
    (reverse(LISTED_IP, "in-addr.arpa"), "PTR"),
    ("sender.example", "AAAA"),  # the name exists: no data
    ("nothing.here.example", "A"),  # NXDOMAIN, SOA at the parent
    ("example", "TXT"),
    ("missing", "A"),  # NXDOMAIN of a one-label name: the SOA owner is the name itself
    ("Sender.EXAMPLE", "MX"),  # case is kept in the question, ignored in the lookup
])
@pytest.mark.parametrize("edns", [-1, 0])
def test_the_quick_path_gives_the_dnspython_answer(server, name, rdtype, edns):
    query = dns.message.make_query(name, rdtype, use_edns=edns)
    same(*both(server, query))


def test_a_too_big_udp_answer_is_left_to_the_truncating_path_and_fits_over_tcp(server):
    query = dns.message.make_query("big.example", "TXT", use_edns=-1)
    assert server.quick_answer(query.to_wire()) is None
    assert dns.flags.TC & dns.message.from_wire(asyncio.run(server.answer(query.to_wire()))).flags
    quick, slow = both(server, query, tcp=True)
    same(quick, slow)
    assert len(quick.answer[0]) == 20


@pytest.mark.parametrize("kind", ["behaviour", "options", "class", "two questions", "response"])
def test_anything_unusual_takes_the_dnspython_path(server, kind):
    query = dns.message.make_query("a.zone.example", "A")
    if kind == "behaviour":
        server.behave("zone.example", Drop())
    elif kind == "options":
        query.use_edns(0, options=[dns.edns.GenericOption(65001, b"x")])
    elif kind == "class":
        query = dns.message.make_query("a.zone.example", "A", rdclass=dns.rdataclass.CH)
    elif kind == "two questions":
        query.question.append(query.question[0].__class__(query.question[0].name,
                                                          dns.rdataclass.IN,
                                                          dns.rdatatype.TXT))
    else:
        query.flags |= dns.flags.QR
    try:
        assert server.quick_answer(query.to_wire()) is None
    finally:
        server.behaviours.clear()


def test_a_wildcard_zone_still_answers_through_the_dnspython_path(server):
    server.behave("zen.spamhaus.org", Wildcard("127.255.255.254"))
    try:
        query = dns.message.make_query(reverse(LISTED_IP, "zen.spamhaus.org"), "A")
        assert server.quick_answer(query.to_wire()) is None
        reply = dns.message.from_wire(asyncio.run(server.answer(query.to_wire())))
        assert reply.rcode() == dns.rcode.NOERROR
        assert reply.answer[0][0].to_text() == "127.255.255.254"
    finally:
        server.behaviours.clear()


def test_every_query_is_counted_once_on_either_path(server):
    server.queries.clear()
    name = reverse(LISTED_IP, "bl.spamcop.net")
    wire = dns.message.make_query(name, "A").to_wire()
    server.quick_answer(wire)
    asyncio.run(server.answer(wire))
    assert server.queries[(name, "A")] == 2
    big = dns.message.make_query("big.example", "TXT", use_edns=-1).to_wire()
    assert server.quick_answer(big) is None  # too big for UDP: left to `answer`
    asyncio.run(server.answer(big))
    assert server.queries[("big.example", "TXT")] == 1

"""The dnspython adapter's own behaviour: reading answers, matching them to queries, sockets,
several nameservers. Over real UDP on loopback; answers are built with dnspython."""

from __future__ import annotations

import asyncio
import gc
import socket
import struct
import threading
import warnings
from collections.abc import Callable, Iterator

import dns.edns
import dns.flags
import dns.message
import dns.rcode
import dns.rrset
import pytest

from bot.adapters import dns as adapter
from bot.adapters.dns import DnsResolver, Question, answer_of, read_answer
from bot.core.ports import DnsAnswer, DnsStatus
from tests.dnsserver import DnsTestServer, Rcode

NAME = "31.20.10.85.bl.example.net"
SOA = "ns.example.net. hostmaster.example.net. 1 3600 600 86400 {minimum}"


# ---------------------------------------------------------------- reading answers


def response(rdtype: str = "A", rcode: int = dns.rcode.NOERROR,
             answer: list[tuple[str, str, int, str]] = (),  # type: ignore[assignment]
             soa: tuple[str, int, int] | None = None, edns: int = 0) -> dns.message.Message:
    query = dns.message.make_query(NAME, rdtype, use_edns=edns)
    reply = dns.message.make_response(query)
    reply.set_rcode(rcode)
    for owner, rtype, ttl, text in answer:
        reply.answer.append(dns.rrset.from_text(owner, ttl, "IN", rtype, text))
    if soa:
        owner, ttl, minimum = soa
        reply.authority.append(dns.rrset.from_text(owner, ttl, "IN", "SOA",
                                                   SOA.format(minimum=minimum)))
    return reply


def read(wire: bytes, rdtype: str = "A") -> DnsAnswer | None:
    return read_answer(wire, Question.of(NAME, rdtype))


COMMON = {  # what block lists answer: read from the wire, as dnspython would read them
    "listed": response(answer=[(NAME + ".", "A", 60, "127.0.0.2"),
                               (NAME + ".", "A", 30, "127.0.0.4"),
                               (NAME + ".", "A", 60, "127.0.0.2")]),
    "txt": response("TXT", answer=[(NAME + ".", "TXT", 60, '"Blocked - see" " https://x/"'),
                                   (NAME + ".", "TXT", 60, '"second"')]),
    "nxdomain": response(rcode=dns.rcode.NXDOMAIN, soa=("bl.example.net.", 900, 30)),
    "nxdomain, SOA TTL lower": response(rcode=dns.rcode.NXDOMAIN, soa=("example.net.", 10, 30)),
    "no data": response(soa=("bl.example.net.", 900, 120)),
    "no EDNS": response(rcode=dns.rcode.NXDOMAIN, soa=("bl.example.net.", 900, 30), edns=-1),
}
UNUSUAL = {  # read by dnspython
    "cname chain": response(answer=[(NAME + ".", "CNAME", 60, "other.example.org."),
                                    ("other.example.org.", "A", 20, "127.0.0.3")]),
    "nxdomain without SOA": response(rcode=dns.rcode.NXDOMAIN),
    "SOA of an unrelated zone": response(rcode=dns.rcode.NXDOMAIN,
                                         soa=("unrelated.org.", 900, 5)),
    "an answer of another type": response(answer=[(NAME + ".", "TXT", 60, '"x"')]),
    "MX": response("MX", answer=[(NAME + ".", "MX", 60, "10 mx.example.net.")]),
}


@pytest.mark.parametrize("shape", COMMON)
def test_block_list_answers_are_read_from_the_wire_as_dnspython_reads_them(shape):
    message = COMMON[shape]
    wire = message.to_wire()
    rdtype = dns.rdatatype.to_text(message.question[0].rdtype)
    assert adapter._read_quick(wire, Question.of(NAME, rdtype), message.rcode()) is not None
    assert read(wire, rdtype) == answer_of(dns.message.from_wire(wire))


def test_what_the_wire_reading_gives():
    assert read(COMMON["listed"].to_wire()) == DnsAnswer(
        DnsStatus.OK, ("127.0.0.2", "127.0.0.4"), ttl=30)
    assert read(COMMON["txt"].to_wire(), "TXT").records == ("Blocked - see https://x/", "second")
    assert read(COMMON["nxdomain"].to_wire()) == DnsAnswer(DnsStatus.NXDOMAIN, ttl=30)
    assert read(COMMON["nxdomain, SOA TTL lower"].to_wire()).ttl == 10
    assert read(COMMON["no data"].to_wire()) == DnsAnswer(DnsStatus.NODATA, ttl=120)


@pytest.mark.parametrize("shape", UNUSUAL)
def test_other_shapes_are_left_to_dnspython(shape):
    message = UNUSUAL[shape]
    wire = message.to_wire()
    rdtype = dns.rdatatype.to_text(message.question[0].rdtype)
    assert adapter._read_quick(wire, Question.of(NAME, rdtype), message.rcode()) is None
    assert read(wire, rdtype) == answer_of(dns.message.from_wire(wire))


def test_a_cname_chain_is_followed():
    assert read(UNUSUAL["cname chain"].to_wire()) == DnsAnswer(DnsStatus.OK, ("127.0.0.3",), 20)


@pytest.mark.parametrize(("rcode", "status"), [
    (dns.rcode.SERVFAIL, DnsStatus.SERVFAIL),
    (dns.rcode.REFUSED, DnsStatus.REFUSED),
    (dns.rcode.FORMERR, DnsStatus.ERROR),
    (dns.rcode.BADVERS, DnsStatus.ERROR),  # an extended rcode, carried by the OPT record
])
def test_failure_codes_are_failures(rcode, status):
    assert read(response(rcode=rcode, soa=("bl.example.net.", 60, 60)).to_wire()).status is status


def test_damaged_answers_are_errors_never_exceptions():
    wire = COMMON["nxdomain"].to_wire()
    for damaged in (wire[:-3], wire + b"junk", wire[:20]):
        answer = read(damaged)
        assert answer is not None and answer.status is DnsStatus.ERROR, damaged
    nx_with_answer = response(rcode=dns.rcode.NXDOMAIN, answer=[(NAME + ".", "A", 60, "127.0.0.2")])
    assert read(nx_with_answer.to_wire()).status is DnsStatus.ERROR


def test_a_truncated_answer_asks_for_tcp():
    message = COMMON["listed"]
    message.flags |= dns.flags.TC
    assert read(message.to_wire()) is None


def test_a_name_that_cannot_be_asked_is_an_error_answer():
    resolver = DnsResolver([("127.0.0.1", 9)], timeout=0.2)
    answer = asyncio.run(resolver.query("x" * 64 + ".example", "A"))
    assert answer.status is DnsStatus.ERROR and "cannot ask" in answer.detail


# ---------------------------------------------------------------- the bound on queries in flight


def test_the_bound_holds_serves_in_order_and_survives_cancelled_waiters():
    limit = adapter.Limit(2)
    running: list[int] = []
    order: list[int] = []
    most = 0

    async def job(i: int) -> None:
        nonlocal most
        await limit.acquire()
        try:
            running.append(i)
            most = max(most, len(running))
            order.append(i)
            await asyncio.sleep(0.01)
        finally:
            running.remove(i)
            limit.release()

    async def main() -> None:
        tasks = [asyncio.ensure_future(job(i)) for i in range(10)]
        await asyncio.sleep(0)
        tasks[4].cancel()  # waiting: its place goes
        await asyncio.sleep(0.005)
        tasks[5].cancel()  # still waiting
        await asyncio.gather(*tasks, return_exceptions=True)
        # every slot came back: two more jobs run at once straight away
        await asyncio.wait_for(asyncio.gather(job(10), job(11)), 1.0)

    asyncio.run(main())
    assert most == 2
    assert order == [0, 1, 2, 3, 6, 7, 8, 9, 10, 11]
    assert limit.free == 2 and not limit.waiting


def test_a_slot_handed_to_a_waiter_cancelled_at_that_moment_is_passed_on():
    limit = adapter.Limit(1)

    async def main() -> list[str]:
        done: list[str] = []
        await limit.acquire()  # held here

        async def waiter(name: str) -> None:
            await limit.acquire()
            done.append(name)
            limit.release()

        first = asyncio.ensure_future(waiter("first"))
        second = asyncio.ensure_future(waiter("second"))
        await asyncio.sleep(0)
        limit.release()  # handed to `first`...
        first.cancel()  # ...which is cancelled before it runs
        await asyncio.wait_for(second, 1.0)
        await asyncio.gather(first, return_exceptions=True)
        return done

    assert asyncio.run(main()) == ["second"]
    assert limit.free == 1


# ---------------------------------------------------------------- over the network


class ScriptedServer:
    """A UDP nameserver answering with `script(query) -> [datagrams]`; records the source port
    of every query."""

    def __init__(self, script: Callable[[dns.message.Message], list[bytes]]) -> None:
        self.script = script
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.ports: list[int] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                data, addr = self.sock.recvfrom(4096)
            except OSError:
                return
            self.ports.append(addr[1])
            for datagram in self.script(dns.message.from_wire(data)):
                self.sock.sendto(datagram, addr)

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def scripted() -> Iterator[Callable[..., ScriptedServer]]:
    servers: list[ScriptedServer] = []

    def make(script: Callable[[dns.message.Message], list[bytes]]) -> ScriptedServer:
        servers.append(ScriptedServer(script))
        return servers[-1]

    yield make
    for server in servers:
        server.close()


def nxdomain(query: dns.message.Message) -> bytes:
    reply = dns.message.make_response(query)
    reply.set_rcode(dns.rcode.NXDOMAIN)
    zone = query.question[0].name.parent()
    reply.authority.append(dns.rrset.from_text(zone, 60, "IN", "SOA", SOA.format(minimum=60)))
    return reply.to_wire()


def listed(query: dns.message.Message) -> bytes:
    reply = dns.message.make_response(query)
    reply.answer.append(dns.rrset.from_text(query.question[0].name, 60, "IN", "A", "127.0.0.2"))
    return reply.to_wire()


def test_only_the_answer_to_the_question_asked_is_taken(scripted):
    def script(query: dns.message.Message) -> list[bytes]:
        wrong_id = bytearray(listed(query))
        wrong_id[:2] = struct.pack("!H", (query.id + 1) % 65536)
        other = dns.message.make_query("30.20.10.85.bl.example.net", "A")
        other.id = query.id
        wrong_question = listed(other)  # right id, another name: a forgery or a stray answer
        return [bytes(wrong_id), wrong_question, nxdomain(query)]

    server = scripted(script)
    resolver = DnsResolver([("127.0.0.1", server.port)], timeout=1.0)
    assert asyncio.run(resolver.query(NAME, "A")).status is DnsStatus.NXDOMAIN


def test_a_server_that_never_answers_right_times_out(scripted):
    def script(query: dns.message.Message) -> list[bytes]:
        other = dns.message.make_query("30.20.10.85.bl.example.net", "A")
        other.id = query.id
        return [listed(other)]

    server = scripted(script)
    resolver = DnsResolver([("127.0.0.1", server.port)], timeout=0.3)
    answer = asyncio.run(resolver.query(NAME, "A"))
    assert answer.status is DnsStatus.TIMEOUT and "0.3 s per query" in answer.detail


def test_queries_share_a_socket_which_is_replaced_as_it_ages(scripted):
    server = scripted(lambda q: [nxdomain(q)])
    resolver = DnsResolver([("127.0.0.1", server.port)], timeout=1.0, rotate_after=5)

    async def sweep() -> list[DnsAnswer]:
        return await asyncio.gather(*(resolver.query(f"{i}.bl.example.net", "A")
                                      for i in range(20)))

    answers = asyncio.run(sweep())
    assert {a.status for a in answers} == {DnsStatus.NXDOMAIN}
    assert len(server.ports) == 20 and 2 <= len(set(server.ports)) <= 4


def test_more_queries_in_flight_than_one_socket_can_hold_answers_go_on_more_sockets(
        scripted, monkeypatch):
    server = scripted(lambda q: [nxdomain(q)])
    monkeypatch.setattr(adapter, "_RCVBUF_PER_ANSWER", 1 << 24)  # room for 8 answers a socket
    resolver = DnsResolver([("127.0.0.1", server.port)], timeout=2.0, concurrency=50)

    async def burst() -> list[DnsAnswer]:
        return await asyncio.gather(*(resolver.query(f"{i}.bl.example.net", "A")
                                      for i in range(50)))

    assert {a.status for a in asyncio.run(burst())} == {DnsStatus.NXDOMAIN}
    assert len(set(server.ports)) >= 50 // 8


def test_a_burst_of_a_thousand_queries_loses_no_answer():
    server = DnsTestServer().start()
    try:
        resolver = DnsResolver([("127.0.0.1", server.port)], timeout=3.0, concurrency=1000)

        async def burst() -> list[DnsAnswer]:
            return await asyncio.gather(*(resolver.query(f"{i}.bl.example.net", "A")
                                          for i in range(2000)))

        answers = asyncio.run(burst())
        assert [a for a in answers if a.status is not DnsStatus.NXDOMAIN] == []
    finally:
        server.stop()


def test_sockets_are_closed_when_idle_and_across_event_loops(scripted):
    server = scripted(lambda q: [nxdomain(q)])
    resolver = DnsResolver([("127.0.0.1", server.port)], timeout=1.0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        for i in range(3):  # `diagnose` runs one event loop per message
            assert asyncio.run(resolver.query(f"{i}.bl.example.net", "A")).status \
                is DnsStatus.NXDOMAIN
        gc.collect()
    assert not [w for w in caught if issubclass(w.category, ResourceWarning)]


def test_the_next_nameserver_is_asked_when_one_fails():
    failing, good = DnsTestServer().start(), DnsTestServer().start()
    try:
        failing.behave("bl.example.net", Rcode("SERVFAIL"))
        good.add(NAME, "A", "127.0.0.2")
        dead = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        dead.bind(("127.0.0.1", 0))
        dead_port = dead.getsockname()[1]
        dead.close()  # nothing listens there: the kernel answers "port unreachable"
        servers = [("127.0.0.1", dead_port), ("127.0.0.1", failing.port),
                   ("127.0.0.1", good.port)]
        answer = asyncio.run(DnsResolver(servers, timeout=3.0).query(NAME, "A"))
        assert answer == DnsAnswer(DnsStatus.OK, ("127.0.0.2",), 60)
        answer = asyncio.run(DnsResolver(servers[:2], timeout=3.0).query(NAME, "A"))
        assert answer.status is DnsStatus.SERVFAIL
        assert f"127.0.0.1:{dead_port}" in answer.detail and "SERVFAIL" in answer.detail
    finally:
        failing.stop()
        good.stop()


def test_an_ipv6_nameserver_is_asked_over_ipv6():
    try:
        server = DnsTestServer(host="::1").start()
    except OSError as exc:
        pytest.skip(f"no IPv6 loopback here: {exc}")
    try:
        server.add(NAME, "A", "127.0.0.2")
        answer = asyncio.run(DnsResolver([("::1", server.port)], timeout=1.0).query(NAME, "A"))
        assert answer == DnsAnswer(DnsStatus.OK, ("127.0.0.2",), 60)
    finally:
        server.stop()

"""A small authoritative DNS server on loopback (UDP and TCP) for tests and benchmarks.

It runs an asyncio loop in a daemon thread and speaks real DNS (dnspython's message/wire
functions), so the production resolver talks to it exactly as it would to a real server.
Records are added with `add`; whole zones get a named behaviour with `behave`:

    Delay(seconds)   answer normally, but late (a slow zone)
    Drop()           never answer (a dead zone)
    Rcode("SERVFAIL") / Rcode("REFUSED")   answer with that rcode
    Wildcard("127.255.255.254")            every A query in the zone gets this (Spamhaus-style
                                           error codes through a public resolver)

Unknown names get NXDOMAIN with an SOA (negative TTL 30 s); existing names without the asked
type get NOERROR/no data. UDP answers larger than the client allows are truncated (TC), so the
client retries over TCP.

Plain queries (one question, class IN, no EDNS options, no behaviour on the name) are answered
by `quick_answer` straight from the wire: dnspython's message objects cost about 0.2 ms a query
on both sides, which made the server, not the client measured, the limit of the /24 sweep
benchmark. Everything else takes the dnspython path (`answer`); a test holds the two to the same
answers.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
import struct
import threading
from collections import Counter
from dataclasses import dataclass

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset

NEGATIVE_TTL = 30
_SOA_TEXT = f"ns.test. hostmaster.test. 1 3600 600 86400 {NEGATIVE_TTL}"
_SOA_WIRE = dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.SOA, _SOA_TEXT).to_wire()
_HEADER = struct.Struct("!6H")
_RR = struct.Struct("!HHIH")  # type, class, TTL, rdata length (after the owner name)
_QR, _AA, _RD, _OPCODE = 0x8000, 0x0400, 0x0100, 0x7800
_OPT_PREFIX = b"\x00\x00\x29"  # root owner, type OPT
_OPT_REPLY = _OPT_PREFIX + struct.pack("!HIH", 8192, 0, 0)  # what make_response's use_edns puts
_PLAIN_LABEL = re.compile(rb"^[A-Za-z0-9_-]{1,63}$")


@dataclass(frozen=True)
class Delay:
    seconds: float


@dataclass(frozen=True)
class Drop:
    pass


@dataclass(frozen=True)
class Rcode:
    rcode: str


@dataclass(frozen=True)
class Wildcard:
    address: str
    ttl: int = 60


Behaviour = Delay | Drop | Rcode | Wildcard


class DnsTestServer:
    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = 0
        self.records: dict[tuple[str, int], list[tuple[int, str]]] = {}
        self._wire: dict[tuple[str, int], list[tuple[int, bytes]]] = {}  # rdata, for quick_answer
        self.names: set[str] = set()
        self.behaviours: dict[str, Behaviour] = {}
        self.queries: Counter[tuple[str, str]] = Counter()
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ data

    def add(self, name: str, rdtype: str, *values: str, ttl: int = 60) -> None:
        key = (_norm(name), dns.rdatatype.from_text(rdtype))
        wires = [dns.rdata.from_text(dns.rdataclass.IN, key[1], v).to_wire() for v in values]
        with self._lock:
            self.records.setdefault(key, []).extend((ttl, v) for v in values)
            self._wire.setdefault(key, []).extend((ttl, w) for w in wires)
            self.names.add(key[0])

    def add_txt(self, name: str, text: str, ttl: int = 60) -> None:
        """A TXT record; long text is split into 255-byte character-strings, as publishers do."""
        chunks = [text[i:i + 255] for i in range(0, len(text), 255)] or [""]
        self.add(name, "TXT", " ".join(_quote(c) for c in chunks), ttl=ttl)

    def remove(self, name: str) -> None:
        """Forget every record of `name` (a list drops an IP): it answers NXDOMAIN from now on."""
        name = _norm(name)
        with self._lock:
            for key in [k for k in self.records if k[0] == name]:
                del self.records[key]
                self._wire.pop(key, None)
            self.names.discard(name)

    def behave(self, zone: str, behaviour: Behaviour) -> None:
        with self._lock:
            self.behaviours[_norm(zone)] = behaviour

    def reset(self) -> None:
        with self._lock:
            self.records.clear()
            self._wire.clear()
            self.names.clear()
            self.behaviours.clear()
            self.queries.clear()

    def asked(self, suffix: str) -> int:
        """How many queries arrived for names at or under `suffix`."""
        suffix = _norm(suffix)
        return sum(n for (name, _), n in self.queries.items()
                   if name == suffix or name.endswith("." + suffix))

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> DnsTestServer:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._serve(), self._loop).result(timeout=10)
        return self

    def stop(self) -> None:
        def close() -> None:
            self._udp.close()
            self._tcp.close()
            self._loop.call_soon(self._loop.stop)  # after the transports' own callbacks

        self._loop.call_soon_threadsafe(close)
        self._thread.join(timeout=5)
        if not self._thread.is_alive():
            self._loop.close()

    async def _serve(self) -> None:
        for _ in range(50):  # find a port free for both UDP and TCP
            transport, _ = await self._loop.create_datagram_endpoint(
                lambda: _Udp(self), local_addr=(self.host, 0))
            port = transport.get_extra_info("sockname")[1]
            # a sweep sends hundreds of queries at once: hold them all (real servers do too)
            transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF,
                                                          1 << 22)
            try:
                self._tcp = await asyncio.start_server(self._tcp_client, self.host, port,
                                                       reuse_address=True)
            except OSError:
                transport.close()
                continue
            self._udp, self.port = transport, port
            return
        raise OSError("no free port for the test DNS server")

    async def _tcp_client(self, reader: asyncio.StreamReader,
                          writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                size = struct.unpack("!H", await reader.readexactly(2))[0]
                wire = await reader.readexactly(size)
                reply = self.quick_answer(wire, tcp=True) or await self.answer(wire, tcp=True)
                if reply is not None:
                    writer.write(struct.pack("!H", len(reply)) + reply)
                    await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    # ------------------------------------------------------------------ answers

    async def answer(self, wire: bytes, tcp: bool = False) -> bytes | None:
        try:
            query = dns.message.from_wire(wire)
        except dns.exception.DNSException:
            return None
        question = query.question[0]
        name = _norm(question.name.to_text())
        with self._lock:
            self.queries[(name, dns.rdatatype.to_text(question.rdtype))] += 1
            behaviour = self._behaviour(name)
        if isinstance(behaviour, Drop):
            return None
        if isinstance(behaviour, Delay):
            await asyncio.sleep(behaviour.seconds)
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        if isinstance(behaviour, Rcode):
            response.set_rcode(dns.rcode.from_text(behaviour.rcode))
        else:
            self._fill(response, name, question.rdtype, behaviour)
        limit = 65535 if tcp else max(512, query.payload if query.edns >= 0 else 512)
        try:
            return response.to_wire(max_size=limit)
        except dns.exception.TooBig:
            response.answer.clear()
            response.flags |= dns.flags.TC
            return response.to_wire()

    def _behaviour(self, name: str) -> Behaviour | None:
        labels = name.split(".")
        for i in range(len(labels)):
            found = self.behaviours.get(".".join(labels[i:]))
            if found is not None:
                return found
        return None

    def _fill(self, response: dns.message.Message, name: str, rdtype: int,
              behaviour: Behaviour | None) -> None:
        qname = dns.name.from_text(name)
        if isinstance(behaviour, Wildcard) and rdtype == dns.rdatatype.A:
            response.answer.append(dns.rrset.from_text(qname, behaviour.ttl, "IN", "A",
                                                       behaviour.address))
            return
        with self._lock:
            values = list(self.records.get((name, rdtype), []))
            exists = name in self.names
        if values:
            rrset = dns.rrset.RRset(qname, dns.rdataclass.IN, rdtype)
            for ttl, text in values:
                rrset.add(dns.rdata.from_text(dns.rdataclass.IN, rdtype, text), ttl)
            response.answer.append(rrset)
            return
        if not exists:
            response.set_rcode(dns.rcode.NXDOMAIN)
        response.authority.append(dns.rrset.from_text(
            qname.parent() if len(qname) > 2 else qname, NEGATIVE_TTL, "IN", "SOA", _SOA_TEXT))

    def quick_answer(self, wire: bytes, tcp: bool = False) -> bytes | None:
        """`answer` for a plain query, built from the wire; None when `answer` must decide."""
        question = _plain_question(wire)
        if question is None:
            return None
        name, labels, end, qtype, payload = question
        with self._lock:
            if self._behaviour(name) is not None:
                return None
            values = list(self._wire.get((name, qtype), ()))
            exists = name in self.names
        query_id, query_flags = struct.unpack_from("!HH", wire)
        flags = _QR | _AA | (query_flags & _RD)
        if values:
            ttl = min(t for t, _ in values)  # one RRset has one TTL (dnspython keeps the least)
            rdatas = dict.fromkeys(w for _, w in values)  # an RRset holds each rdata once
            records = b"".join(b"\xc0\x0c" + _RR.pack(qtype, 1, ttl, len(w)) + w for w in rdatas)
            counts = (len(rdatas), 0)
        else:
            if not exists:
                flags |= dns.rcode.NXDOMAIN
            # the SOA's owner: the parent of the name (a pointer to its second label)
            owner = 12 + 1 + len(labels[0]) if len(labels) > 1 else 12
            records = (struct.pack("!H", 0xC000 | owner)
                       + _RR.pack(dns.rdatatype.SOA, 1, NEGATIVE_TTL, len(_SOA_WIRE)) + _SOA_WIRE)
            counts = (0, 1)
        opt = _OPT_REPLY if payload else b""
        reply = (_HEADER.pack(query_id, flags, 1, *counts, 1 if opt else 0)
                 + wire[12:end] + records + opt)
        if len(reply) > (65535 if tcp else max(512, payload)):
            return None  # too big: `answer` truncates it (and counts the query)
        with self._lock:
            self.queries[(name, dns.rdatatype.to_text(qtype))] += 1
        return reply


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, server: DnsTestServer) -> None:
        self.server = server
        self.pending: set[asyncio.Task[None]] = set()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        reply = self.server.quick_answer(data)
        if reply is not None:
            self.transport.sendto(reply, addr)  # type: ignore[attr-defined]
            return
        task = asyncio.ensure_future(self._reply(data, addr))
        self.pending.add(task)  # keep a reference until done (asyncio holds only weak ones)
        task.add_done_callback(self.pending.discard)

    async def _reply(self, data: bytes, addr: tuple[str, int]) -> None:
        reply = await self.server.answer(data)
        if reply is not None:
            self.transport.sendto(reply, addr)  # type: ignore[attr-defined]


def _plain_question(wire: bytes) -> tuple[str, list[bytes], int, int, int] | None:
    """(name, labels, end of question, type, EDNS payload or 0) of a plain query, else None."""
    if len(wire) < 17:
        return None
    _, flags, qdcount, ancount, nscount, arcount = _HEADER.unpack_from(wire)
    if flags & (_QR | _OPCODE) or qdcount != 1 or ancount or nscount or arcount > 1:
        return None
    labels, pos = [], 12
    while pos < len(wire) and wire[pos]:
        label = wire[pos + 1:pos + 1 + wire[pos]]
        if not _PLAIN_LABEL.match(label):  # a compression pointer, an escape, a short read
            return None
        labels.append(label)
        pos += 1 + len(label)
    if not labels or pos + 5 > len(wire):
        return None
    qtype, qclass = struct.unpack_from("!HH", wire, pos + 1)
    end = pos + 5
    if qclass != dns.rdataclass.IN:
        return None
    payload = 0
    if arcount:  # only a bare OPT: version 0, no options (anything else: the dnspython path)
        opt = wire[end:]  # name, type, payload (2), extended rcode, version, flags (2), length (2)
        if len(opt) != 11 or opt[:3] != _OPT_PREFIX or opt[6] or opt[9:] != b"\0\0":
            return None
        payload = max(512, struct.unpack_from("!H", opt, 3)[0])
    elif len(wire) != end:
        return None
    return b".".join(labels).decode("ascii").lower(), labels, end, qtype, payload


def _norm(name: str) -> str:
    return name.rstrip(".").lower()


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'




# ---------------------------------------------------------------------- the tests' world

LISTED_IP = "85.10.20.30"  # on SpamCop (with a TXT reason) and on Spamhaus XBL
CLEAN_IP = "85.10.20.31"  # on nothing; its PTR is generic and not forward-confirmed
LISTED_IP6 = "2a01:4f8:10:20::30"  # on Spamhaus CSS, via IPv6 nibbles
DQS_KEY = "abcdefghijklmnopqrstuvwxyz"
SPAMCOP_TXT = f"Blocked - see https://www.spamcop.net/bl.shtml?{LISTED_IP}"


def reverse(ip: str, zone: str) -> str:
    """The RFC 5782 query name of `ip` in `zone` ("in-addr.arpa" gives the PTR name)."""
    return ipaddress.ip_address(ip).reverse_pointer.rsplit(".", 2)[0] + "." + zone


def seed(server: DnsTestServer, zones: list[tuple[str, bool]]) -> None:
    """A healthy world: every zone answers its RFC 5782 test points; the named IPs and the
    sender/recipient domains exist. `zones` is (queried zone name, publishes IPv6)."""
    for zone, ipv6 in zones:
        server.add(reverse("127.0.0.2", zone), "A", "127.0.0.2")
        if ipv6:
            server.add(reverse("::ffff:7f00:2", zone), "A", "127.0.0.2")
    for zen in ("zen.spamhaus.org", f"{DQS_KEY}.zen.dq.spamhaus.net"):
        server.add(reverse(LISTED_IP, zen), "A", "127.0.0.4")
        server.add(reverse(LISTED_IP6, zen), "A", "127.0.0.3")
        server.add_txt(reverse(LISTED_IP6, zen),
                       f"Listed by CSS, see https://check.spamhaus.org/query/ip/{LISTED_IP6}")
    server.add(reverse(LISTED_IP, "bl.spamcop.net"), "A", "127.0.0.2")
    server.add_txt(reverse(LISTED_IP, "bl.spamcop.net"), SPAMCOP_TXT)
    # sender side: FCrDNS for LISTED_IP, a generic PTR for CLEAN_IP, SPF and DMARC
    server.add(reverse(LISTED_IP, "in-addr.arpa"), "PTR", "mail.sender.example.")
    server.add("mail.sender.example", "A", LISTED_IP)
    server.add(reverse(CLEAN_IP, "in-addr.arpa"), "PTR", "85-10-20-31.dyn.isp.example.")
    server.add("85-10-20-31.dyn.isp.example", "A", "85.10.99.99")
    server.add_txt("sender.example", "v=spf1 mx include:_spf.mailer.example -all")
    server.add("sender.example", "MX", "10 mx.sender.example.")
    server.add("mx.sender.example", "A", "85.10.21.1")
    server.add_txt("_spf.mailer.example", "v=spf1 ip4:85.10.20.0/24 ip6:2a01:4f8:10:20::/64 ~all")
    server.add_txt("_dmarc.sender.example", "v=DMARC1; p=reject; rua=mailto:dmarc@sender.example")
    # receiver side
    server.add("recipient.example", "MX", "10 recipient-example.mail.protection.outlook.com.")

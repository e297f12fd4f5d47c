"""dnspython behind the `Resolver` port: asynchronous lookups with a shared TTL cache.

- Nameservers: the (host, port) pairs of the settings; without them, the system resolver's
  (/etc/resolv.conf, read by dnspython). Each gets an equal share of the per-query timeout; a
  timeout, SERVFAIL, REFUSED or socket error from one moves the query to the next.
- Every expected outcome is a `DnsAnswer` value: NXDOMAIN, no data, timeout, SERVFAIL, REFUSED.
- A bound on queries in flight (`Limit`, first come first served); identical lookups in flight
  share one query ("single flight").
- Answers are cached for their TTL (negative answers for the SOA minimum, RFC 2308); failures are
  never cached, so the next check asks again.

The exchange is done here rather than by `dns.asyncresolver`, which opens a socket per query
and builds a full message for every answer: about 0.4 ms a query, most of a /24 sweep's time.
Here each nameserver has one connected UDP socket per event loop (`_Channel`); answers are
matched to their query by id and question, each query has a timeout, and the socket is
replaced after `ROTATE_AFTER` queries and closed when idle, so its source port keeps changing
(RFC 5452). The two shapes a block list answers with (A/TXT records of the asked name, and
NXDOMAIN or no data with the zone's SOA) are read straight from the wire; everything else
(CNAME chains, other types, anything unusual or malformed) goes through `dns.message.from_wire`
and `resolve_chaining`. A truncated answer is asked again over TCP (`dns.asyncquery.tcp`).
"""

from __future__ import annotations

import asyncio
import collections
import functools
import math
import re
import secrets
import socket
import struct
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import dns.asyncquery
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.resolver

from bot.core.errors import ConfigError
from bot.core.ports import DnsAnswer, DnsStatus

Server = tuple[str, int]

EDNS_PAYLOAD = 1232  # DNS Flag Day 2020: fits any path MTU, so no fragments
ROTATE_AFTER = 1000  # queries per socket before a new one (a new source port)
TIMER_STEP = 0.002  # seconds; a per-query timeout ends on a multiple of it (rounded down)
# Buffer space one small answer takes in a socket's receive queue (the kernel counts its own
# overhead: a 100-byte answer over loopback takes about 830 bytes of the default 208 KiB).
_RCVBUF_PER_ANSWER = 2048
_HEADER = struct.Struct("!6H")
_RR = struct.Struct("!HHIH")  # type, class, TTL, rdata length (after the owner name)
_OPT = b"\x00\x00\x29" + struct.pack("!HIH", EDNS_PAYLOAD, 0, 0)  # root, OPT, version 0
_RD, _TC, _QR = 0x0100, 0x0200, 0x8000
_IN = struct.pack("!H", dns.rdataclass.IN)
_PLAIN_NAME = re.compile(r"^(?=.{1,253}$)([a-z0-9_-]{1,63}\.)*[a-z0-9_-]{1,63}$")
_QUICK_TYPES = frozenset({dns.rdatatype.A, dns.rdatatype.TXT})


class DnsResolver:
    """The network resolver used by `check`, `diagnose` and the bot (one per process)."""

    def __init__(self, nameservers: Sequence[Server] = (), timeout: float = 2.0,
                 concurrency: int = 64, cache_size: int = 50_000,
                 clock: Callable[[], float] = time.monotonic,
                 rotate_after: int = ROTATE_AFTER) -> None:
        self.nameservers: tuple[Server, ...] = tuple(nameservers) or system_nameservers()
        self.timeout = timeout
        self._concurrency = max(1, concurrency)
        self._rotate_after = max(1, rotate_after)
        self._loops: dict[asyncio.AbstractEventLoop, _LoopState] = {}
        self._cache: OrderedDict[tuple[str, str], tuple[float, DnsAnswer]] = OrderedDict()
        self._cache_size = cache_size
        self._inflight: dict[tuple[str, str], list[asyncio.Future[DnsAnswer]]] = {}
        self._clock = clock
        self.sent = 0  # lookups that reached the network (for benchmarks and tests)

    async def query(self, name: str, rdtype: str) -> DnsAnswer:
        key = (name.rstrip(".").lower(), rdtype.upper())
        cached = self._cached(key)
        if cached is not None:
            return cached
        waiters = self._inflight.get(key)
        if waiters is not None:
            return await self._join(waiters, name, rdtype)
        self._inflight[key] = waiters = []
        try:
            answer = await self._lookup(*key)
        except BaseException:
            for waiter in waiters:  # the owner was cancelled (deadline): waiters ask again
                waiter.cancel()
            raise
        finally:
            del self._inflight[key]
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(answer)
        self._store(key, answer)
        return answer

    async def _join(self, waiters: list[asyncio.Future[DnsAnswer]], name: str,
                    rdtype: str) -> DnsAnswer:
        """Wait for the identical lookup already in flight (another check started it)."""
        waiter: asyncio.Future[DnsAnswer] = asyncio.get_running_loop().create_future()
        waiters.append(waiter)
        try:
            return await waiter
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and not task.cancelling():  # the owner's lookup was cancelled
                return await self.query(name, rdtype)
            raise

    def _state(self) -> _LoopState:
        """The semaphore and sockets of the running loop: `diagnose` runs one loop per message,
        and neither may cross loops (the cache, plain data, does)."""
        loop = asyncio.get_running_loop()
        state = self._loops.get(loop)
        if state is None:
            state = _LoopState(Limit(self._concurrency), self._rotate_after)
            self._loops = {loop: state}
        return state

    def _cached(self, key: tuple[str, str]) -> DnsAnswer | None:
        entry = self._cache.get(key)
        if entry is None:
            return None
        expires, answer = entry
        if expires <= self._clock():
            del self._cache[key]
            return None
        self._cache.move_to_end(key)
        return answer

    def _store(self, key: tuple[str, str], answer: DnsAnswer) -> None:
        if answer.failed or answer.ttl <= 0:
            return
        self._cache[key] = (self._clock() + answer.ttl, answer)
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)

    # ------------------------------------------------------------------ the exchange

    async def _lookup(self, name: str, rdtype: str) -> DnsAnswer:
        try:
            question = Question.of(name, rdtype)
        except (dns.exception.DNSException, ValueError) as exc:
            return DnsAnswer(DnsStatus.ERROR, detail=f"cannot ask for {name!r} {rdtype}: {exc}")
        state = self._state()
        await state.limit.acquire()
        try:
            self.sent += 1
            share = self.timeout / len(self.nameservers)
            failures: list[tuple[Server, DnsAnswer]] = []
            for server in self.nameservers:
                answer = await self._exchange(state, server, question, share)
                if not answer.failed:
                    return answer
                failures.append((server, answer))
        finally:
            state.limit.release()
        return self._failure(failures)

    async def _exchange(self, state: _LoopState, server: Server, question: Question,
                        share: float) -> DnsAnswer:
        loop = asyncio.get_running_loop()
        ends = loop.time() + share
        try:
            channel = state.channel(server)
            query_id, future = channel.ask(question, share)
            try:
                wire = await future
            finally:
                channel.forget(query_id, future)  # when cancelled (the overall deadline)
        except OSError as exc:
            return DnsAnswer(DnsStatus.ERROR, detail=f"failed: {exc.strerror or exc}")
        if wire is None:
            return DnsAnswer(DnsStatus.TIMEOUT)
        answer = read_answer(wire, question)
        if answer is None:  # truncated: the whole answer over TCP, in what is left of the share
            answer = await self._over_tcp(server, question, ends - loop.time())
        return answer

    async def _over_tcp(self, server: Server, question: Question, left: float) -> DnsAnswer:
        query = dns.message.make_query(question.name, question.rdtype, use_edns=0,
                                       payload=EDNS_PAYLOAD)
        try:
            response = await dns.asyncquery.tcp(query, server[0], timeout=max(0.0, left),
                                                port=server[1])
        except dns.exception.Timeout:
            return DnsAnswer(DnsStatus.TIMEOUT)
        except (OSError, EOFError, dns.exception.DNSException) as exc:
            return DnsAnswer(DnsStatus.ERROR, detail=f"over TCP: {exc}")
        return answer_of(response)

    def _failure(self, failures: list[tuple[Server, DnsAnswer]]) -> DnsAnswer:
        """One answer for a query every nameserver failed: the most telling failure wins."""
        statuses = {answer.status for _, answer in failures}
        if statuses == {DnsStatus.TIMEOUT}:
            return DnsAnswer(DnsStatus.TIMEOUT, detail=f"{self.timeout:g} s per query")
        detail = "; ".join(f"{_where(server)} {_said(answer)}" for server, answer in failures)
        for status in (DnsStatus.REFUSED, DnsStatus.SERVFAIL):
            if status in statuses:
                return DnsAnswer(status, detail=detail)
        return DnsAnswer(DnsStatus.ERROR, detail=detail)


@dataclass(frozen=True)
class Question:
    """One query's question: the name (lower case), its type, and its wire form."""

    name: str
    rdtype: dns.rdatatype.RdataType
    name_wire: bytes
    type_class: bytes

    @classmethod
    def of(cls, name: str, rdtype: str) -> Question:
        """`name` in lower case, as the cache keys it (answers are compared with it)."""
        qtype = _rdtype(rdtype)
        if _PLAIN_NAME.match(name):  # the usual: letters, digits, hyphens; quicker by hand
            labels = name.encode("ascii").split(b".")
            wire = b"".join(bytes((len(x),)) + x for x in labels) + b"\0"
        else:
            wire = dns.name.from_text(name).canonicalize().to_wire() or b""
        return cls(name, qtype, wire, struct.pack("!H", qtype) + _IN)

    def wire(self, query_id: int) -> bytes:
        """The query: recursion desired, EDNS0 with a 1232-byte payload, no options."""
        return _HEADER.pack(query_id, _RD, 1, 0, 0, 1) + self.name_wire + self.type_class + _OPT

    def answers(self, wire: bytes) -> bool:
        """Whether a response carries this question (the name in any case, RFC 4343)."""
        end = 12 + len(self.name_wire)
        return (wire[12:end].lower() == self.name_wire
                and wire[end:end + 4] == self.type_class
                and wire[4:6] == b"\x00\x01")


class Limit:
    """A bound on queries in flight, first come first served. A freed slot is handed straight to
    the next waiter: asyncio.Semaphore (3.11) rescans the woken waiters on every release, which
    grows with the square of a sweep's backlog (thousands of lookups waiting)."""

    def __init__(self, slots: int) -> None:
        self.slots = slots
        self.free = slots
        self.waiting: collections.deque[asyncio.Future[None]] = collections.deque()

    async def acquire(self) -> None:
        if self.free > 0 and not self.waiting:
            self.free -= 1
            return
        slot: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.waiting.append(slot)
        try:
            await slot
        except asyncio.CancelledError:
            if slot.done() and not slot.cancelled():
                self.release()  # the slot was handed over as the waiter was cancelled: pass it on
            elif slot in self.waiting:  # (a release may have dropped it already)
                self.waiting.remove(slot)
            raise

    def release(self) -> None:
        while self.waiting:
            slot = self.waiting.popleft()
            if not slot.done():
                slot.set_result(None)
                return
        self.free += 1


@dataclass
class _LoopState:
    limit: Limit
    rotate_after: int
    channels: dict[Server, list[_Channel]] = field(default_factory=dict)

    def channel(self, server: Server) -> _Channel:
        """A socket to `server` with room for one more answer, opened if none has."""
        channels = self.channels.setdefault(server, [])
        for channel in channels:
            if not channel.retired and len(channel.pending) < channel.room:
                return channel
        channels[:] = [c for c in channels if not c.retired]
        channel = _Channel(server, self.rotate_after, self.limit.slots)
        channels.append(channel)
        return channel


class _Channel:
    """One connected, non-blocking UDP socket to one nameserver, shared by every query in flight
    to it. Read with `add_reader` until the socket is empty, as c-ares does: an asyncio datagram
    transport reads one datagram per turn of the loop, which made the loop the bottleneck."""

    def __init__(self, server: Server, rotate_after: int, in_flight: int) -> None:
        self.loop = asyncio.get_running_loop()
        self.rotate_after = rotate_after
        self.pending: dict[int, tuple[asyncio.Future[bytes | None], Question]] = {}
        # Timers by deadline, rounded down to TIMER_STEP: the queries sent in one turn of the loop
        # share one timer (a timer each was about 6% of a sweep's CPU time).
        self.timers: dict[float, list[tuple[int, asyncio.Future[bytes | None]]]] = {}
        self.retired = False  # no new queries: it closes when the last one is answered
        self.used = 0
        family = socket.AF_INET6 if ":" in server[0] else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            self.sock.setblocking(False)
            # The answers to every query in flight may arrive before the loop reads any: the
            # receive buffer must hold them all, or the kernel drops the rest (timeouts). The
            # kernel may grant less (net.core.rmem_max): then fewer queries go on this socket,
            # and another socket takes the rest.
            want = max(_RCVBUF_PER_ANSWER * in_flight, 1 << 16)
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, want)
            granted = self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
            self.room = max(8, granted // _RCVBUF_PER_ANSWER)
            self.sock.connect(server)  # UDP: no packet sent; only this peer's datagrams arrive
            self.loop.add_reader(self.sock.fileno(), self._readable)
        except BaseException:
            self.sock.close()
            raise

    def ask(self, question: Question, timeout: float
            ) -> tuple[int, asyncio.Future[bytes | None]]:
        """Send the query; the future gets the answer's wire, or None after `timeout`."""
        query_id = secrets.randbits(16)
        while query_id in self.pending:
            query_id = secrets.randbits(16)
        future: asyncio.Future[bytes | None] = self.loop.create_future()
        self.pending[query_id] = (future, question)
        deadline = math.floor((self.loop.time() + timeout) / TIMER_STEP) * TIMER_STEP
        expiring = self.timers.get(deadline)
        if expiring is None:
            expiring = self.timers[deadline] = []
            self.loop.call_at(deadline, self._expire, deadline)
        expiring.append((query_id, future))
        self.used += 1
        if self.used >= self.rotate_after:
            self.retired = True
        try:
            self.sock.send(question.wire(query_id))
        except OSError as exc:  # unreachable network, a full buffer: this server fails it
            self.forget(query_id, future)
            future.set_exception(exc)
        return query_id, future

    def forget(self, query_id: int, future: asyncio.Future[bytes | None]) -> None:
        """The query is no longer awaited (answered, timed out, or its asker was cancelled)."""
        entry = self.pending.get(query_id)
        if entry is not None and entry[0] is future:
            del self.pending[query_id]
            if not self.pending:
                self.loop.call_soon(self._close_if_idle)

    def _readable(self) -> None:
        for _ in range(1024):  # bounded, so one busy socket cannot starve the loop
            try:
                data = self.sock.recv(65535)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # ICMP port unreachable: the nameserver fails them all
                self._fail_all(exc)
                return
            if len(data) < 12 or not data[2] & (_QR >> 8):
                continue
            query_id = int.from_bytes(data[:2], "big")
            entry = self.pending.get(query_id)
            if entry is not None and entry[1].answers(data):  # else: late, stray or forged
                self.forget(query_id, entry[0])
                if not entry[0].done():
                    entry[0].set_result(data)

    def _expire(self, deadline: float) -> None:
        for query_id, future in self.timers.pop(deadline, ()):
            if not future.done():
                self.forget(query_id, future)
                future.set_result(None)

    def _close_if_idle(self) -> None:
        if not self.pending and self.sock.fileno() >= 0:
            self.retired = True
            self.loop.remove_reader(self.sock.fileno())
            self.sock.close()

    def _fail_all(self, exc: OSError) -> None:
        for query_id, (future, _) in list(self.pending.items()):
            self.forget(query_id, future)
            if not future.done():
                future.set_exception(exc)


# ---------------------------------------------------------------------- reading answers


def read_answer(wire: bytes, question: Question) -> DnsAnswer | None:
    """The answer in a response to `question`; None when it is truncated (ask over TCP)."""
    flags = int.from_bytes(wire[2:4], "big")
    if flags & _TC:
        return None
    if flags & 0xF in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN):
        quick = _read_quick(wire, question, flags & 0xF)
        if quick is not None:
            return quick
    try:
        return answer_of(dns.message.from_wire(wire))
    except dns.exception.DNSException as exc:
        return DnsAnswer(DnsStatus.ERROR, detail=f"malformed answer: {exc}")


def answer_of(response: dns.message.Message) -> DnsAnswer:
    """dnspython's reading of a response: CNAME chains followed, negative TTL per RFC 2308."""
    rcode = response.rcode()
    if rcode == dns.rcode.SERVFAIL:
        return DnsAnswer(DnsStatus.SERVFAIL, detail="answered SERVFAIL")
    if rcode == dns.rcode.REFUSED:
        return DnsAnswer(DnsStatus.REFUSED, detail="answered REFUSED")
    if rcode not in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN):
        return DnsAnswer(DnsStatus.ERROR, detail=f"answered {dns.rcode.to_text(rcode)}")
    try:
        chain = response.resolve_chaining()  # type: ignore[attr-defined]  # QueryMessage
    except dns.exception.DNSException as exc:
        return DnsAnswer(DnsStatus.ERROR, detail=f"unusable answer: {exc}")
    if chain.answer is not None:
        records = tuple(dict.fromkeys(_text(rdata) for rdata in chain.answer))
        return DnsAnswer(DnsStatus.OK, records, ttl=chain.minimum_ttl)
    status = DnsStatus.NXDOMAIN if rcode == dns.rcode.NXDOMAIN else DnsStatus.NODATA
    return DnsAnswer(status, ttl=chain.minimum_ttl)


def _read_quick(wire: bytes, question: Question, rcode: int) -> DnsAnswer | None:
    """A/TXT records owned by the question's name, or a negative answer with the SOA of a zone
    above it; None for any other shape (`answer_of` reads those)."""
    try:
        _, _, _, ancount, nscount, arcount = _HEADER.unpack_from(wire)
        pos = 12 + len(question.name_wire) + 4
        records: list[str] = []
        ttl = 0x7FFFFFFF
        for _ in range(ancount):  # each must be b"\xc0\x0c": a pointer to the question's name
            if rcode or question.rdtype not in _QUICK_TYPES or wire[pos:pos + 2] != b"\xc0\x0c":
                return None
            rtype, rclass, rttl, size = _RR.unpack_from(wire, pos + 2)
            pos += 12
            if rtype != question.rdtype or rclass != dns.rdataclass.IN or pos + size > len(wire):
                return None
            records.append(_rdata_text(rtype, wire[pos:pos + size]))
            ttl = min(ttl, rttl)
            pos += size
        negative = None
        for _ in range(nscount):
            owner, pos = pos, _skip_name(wire, pos)
            rtype, rclass, rttl, size = _RR.unpack_from(wire, pos)
            pos += 10 + size
            if rtype == dns.rdatatype.SOA:
                if negative is not None or not _is_zone_of(wire[owner:pos - 10 - size], question):
                    return None
                minimum = int.from_bytes(wire[pos - 4:pos], "big")
                negative = min(rttl, minimum)
        for _ in range(arcount):  # an extended rcode (BADVERS, ...) lives in the OPT record
            pos = _skip_name(wire, pos)
            rtype, _, rttl, size = _RR.unpack_from(wire, pos)
            if rtype == dns.rdatatype.OPT and rttl >> 24:
                return None
            pos += 10 + size
        if pos != len(wire):  # short, or trailing junk: dnspython says what is wrong
            return None
    except (struct.error, IndexError, UnicodeDecodeError):
        return None
    if records:
        return DnsAnswer(DnsStatus.OK, tuple(dict.fromkeys(records)), ttl=ttl)
    if negative is None:
        return None
    status = DnsStatus.NXDOMAIN if rcode == dns.rcode.NXDOMAIN else DnsStatus.NODATA
    return DnsAnswer(status, ttl=negative)


def _skip_name(wire: bytes, pos: int) -> int:
    """The position after a (possibly compressed) name."""
    while True:
        length = wire[pos]
        if length == 0:
            return pos + 1
        if length >= 0xC0:
            return pos + 2
        if length > 63:
            raise IndexError("bad label")
        pos += 1 + length


def _is_zone_of(owner: bytes, question: Question) -> bool:
    """Whether an SOA owner (as written: a pointer into the question, which is how servers
    compress it) names the question's name or a zone above it."""
    if len(owner) != 2 or owner[0] < 0xC0:
        return False
    target = ((owner[0] & 0x3F) << 8 | owner[1]) - 12
    pos = 0
    name = question.name_wire
    while pos < len(name) - 1:
        if pos == target:
            return True
        pos += 1 + name[pos]
    return False


def _rdata_text(rtype: int, rdata: bytes) -> str:
    if rtype == dns.rdatatype.A:
        if len(rdata) != 4:
            raise IndexError("an A record is 4 bytes")
        return socket.inet_ntoa(rdata)
    strings, pos = [], 0
    if not rdata:
        raise IndexError("a TXT record has at least one string")
    while pos < len(rdata):
        end = pos + 1 + rdata[pos]
        if end > len(rdata):
            raise IndexError("TXT string past its record")
        strings.append(rdata[pos + 1:end])
        pos = end
    return b"".join(strings).decode("utf-8", "replace")


def _text(rdata: object) -> str:
    """Presentation form the core expects (TXT: the character-strings joined, unquoted)."""
    strings = getattr(rdata, "strings", None)
    if strings is not None:
        return b"".join(strings).decode("utf-8", "replace")
    address = getattr(rdata, "address", None)
    if address is not None:
        return str(address)
    return str(rdata.to_text())  # type: ignore[attr-defined]  # every Rdata has to_text


@functools.lru_cache(maxsize=64)
def _rdtype(text: str) -> dns.rdatatype.RdataType:
    return dns.rdatatype.RdataType.make(text)


def _said(answer: DnsAnswer) -> str:
    if answer.status is DnsStatus.TIMEOUT:
        return "did not answer in time"
    return answer.detail or str(answer.status)


def _where(server: Server) -> str:
    host, port = server
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def system_nameservers() -> tuple[Server, ...]:
    """The nameservers of /etc/resolv.conf (plain DNS over port 53)."""
    try:
        resolver = dns.resolver.Resolver()
    except dns.exception.DNSException as exc:
        raise ConfigError(f"DELISTBOT_NAMESERVERS is not set and the system resolver "
                          f"cannot be read: {exc}") from exc
    servers = tuple((str(ns), resolver.port) for ns in resolver.nameservers)
    if not servers:
        raise ConfigError("DELISTBOT_NAMESERVERS is not set and the system resolver names no "
                          "nameserver")
    return servers

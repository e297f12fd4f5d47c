"""dnspython behind the `Resolver` port: asynchronous lookups with a shared TTL cache.

- `Resolver(configure=False)` with explicit nameservers (host, port) when settings name them;
  otherwise the system resolver (/etc/resolv.conf).
- Every expected outcome is a `DnsAnswer` value: NXDOMAIN, no data, timeout, SERVFAIL, REFUSED.
- A semaphore bounds the queries in flight; identical lookups in flight share one query
  ("single flight"), so 256 checks of one /24 ask each zone's test points once.
- Answers are cached for their TTL (negative answers for the SOA minimum, RFC 2308); failures are
  never cached, so the next check asks again.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence

import dns.asyncresolver
import dns.exception
import dns.message
import dns.name
import dns.nameserver
import dns.rcode
import dns.rdatatype
import dns.resolver

from bot.core.ports import DnsAnswer, DnsStatus

_NEGATIVE_TTL_DEFAULT = 60  # when an NXDOMAIN carries no SOA to say how long it may be cached


class DnsResolver:
    """The network resolver used by `check`, `diagnose` and the bot (one per process)."""

    def __init__(self, nameservers: Sequence[tuple[str, int]] = (), timeout: float = 2.0,
                 concurrency: int = 64, cache_size: int = 50_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if nameservers:
            self._resolver = dns.asyncresolver.Resolver(configure=False)
            self._resolver.nameservers = [dns.nameserver.Do53Nameserver(host, port)
                                          for host, port in nameservers]
        else:
            self._resolver = dns.asyncresolver.Resolver()
        # `timeout` is the budget of one lookup (dnspython's lifetime); each server gets its share
        # so a dead first server still leaves time for the next one.
        self._resolver.lifetime = timeout
        self._resolver.timeout = timeout / max(1, len(self._resolver.nameservers))
        self._resolver.cache = None  # ours below: it also caches failures' absence and NXDOMAIN
        self.timeout = timeout
        self._concurrency = max(1, concurrency)
        self._limits: dict[asyncio.AbstractEventLoop, asyncio.Semaphore] = {}
        self._cache: OrderedDict[tuple[str, str], tuple[float, DnsAnswer]] = OrderedDict()
        self._cache_size = cache_size
        self._inflight: dict[tuple[str, str], asyncio.Future[DnsAnswer]] = {}
        self._clock = clock
        self.sent = 0  # queries that reached the network (for benchmarks and tests)

    async def query(self, name: str, rdtype: str) -> DnsAnswer:
        key = (name.rstrip(".").lower(), rdtype.upper())
        cached = self._cached(key)
        if cached is not None:
            return cached
        pending = self._inflight.get(key)
        if pending is not None:
            return await self._join(pending, name, rdtype)
        future: asyncio.Future[DnsAnswer] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            answer = await self._lookup(*key)
        except BaseException:
            future.cancel()  # the owner was cancelled (deadline): waiters ask again themselves
            raise
        finally:
            del self._inflight[key]
        future.set_result(answer)
        self._store(key, answer)
        return answer

    async def _join(self, pending: asyncio.Future[DnsAnswer], name: str,
                    rdtype: str) -> DnsAnswer:
        """Wait for the identical lookup already in flight (another check started it)."""
        try:
            return await asyncio.shield(pending)
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if pending.cancelled() and task is not None and not task.cancelling():
                return await self.query(name, rdtype)
            raise

    def _limit(self) -> asyncio.Semaphore:
        """The semaphore of the running loop: `diagnose` runs one loop per message, and an
        asyncio primitive must not cross loops (the cache, plain data, does)."""
        loop = asyncio.get_running_loop()
        if loop not in self._limits:
            self._limits = {loop: asyncio.Semaphore(self._concurrency)}
        return self._limits[loop]

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

    async def _lookup(self, name: str, rdtype: str) -> DnsAnswer:
        async with self._limit():
            self.sent += 1
            try:
                # asyncio.timeout: dnspython sleeps a retry backoff (0.1 s and up) before it
                # notices the lifetime is spent; the budget is the budget.
                async with asyncio.timeout(self.timeout):
                    result = await self._resolver.resolve(name, rdtype, search=False,
                                                          raise_on_no_answer=False)
            except TimeoutError:
                return DnsAnswer(DnsStatus.TIMEOUT, detail=f"{self.timeout:g} s per query")
            except dns.resolver.NXDOMAIN as exc:
                return DnsAnswer(DnsStatus.NXDOMAIN, ttl=_negative_ttl(exc))
            except dns.resolver.LifetimeTimeout:
                return DnsAnswer(DnsStatus.TIMEOUT, detail=f"{self.timeout:g} s per query")
            except dns.resolver.NoNameservers as exc:
                return _no_nameservers(exc)
            except dns.exception.DNSException as exc:
                return DnsAnswer(DnsStatus.ERROR, detail=str(exc))
        if result.rrset is None:
            ttl = max(0, int(result.expiration - time.time()))
            return DnsAnswer(DnsStatus.NODATA, ttl=ttl)
        records = tuple(_text(rdata) for rdata in result.rrset)
        return DnsAnswer(DnsStatus.OK, records, ttl=result.rrset.ttl)


def _text(rdata: object) -> str:
    """Presentation form the core expects (TXT: the character-strings joined, unquoted)."""
    strings = getattr(rdata, "strings", None)
    if strings is not None:
        return b"".join(strings).decode("utf-8", "replace")
    address = getattr(rdata, "address", None)
    if address is not None:
        return str(address)
    return str(rdata.to_text())  # type: ignore[attr-defined]  # every Rdata has to_text


def _negative_ttl(exc: dns.resolver.NXDOMAIN) -> int:
    # dnspython leaves NXDOMAIN.responses() unannotated; it returns {Name: Message}.
    responses: dict[dns.name.Name, dns.message.Message] = exc.responses()  # type: ignore[no-untyped-call]
    for response in responses.values():
        for rrset in response.authority:
            if rrset.rdtype == dns.rdatatype.SOA:
                return int(min(rrset.ttl, rrset[0].minimum))
    return _NEGATIVE_TTL_DEFAULT


def _no_nameservers(exc: dns.resolver.NoNameservers) -> DnsAnswer:
    errors = exc.kwargs.get("errors", [])
    rcodes = {err[4].rcode() for err in errors if isinstance(err[4], dns.message.Message)}
    detail = "; ".join(f"{err[0]} answered {err[3]}" for err in errors)
    if dns.rcode.REFUSED in rcodes:
        return DnsAnswer(DnsStatus.REFUSED, detail=detail)
    if dns.rcode.SERVFAIL in rcodes:
        return DnsAnswer(DnsStatus.SERVFAIL, detail=detail)
    return DnsAnswer(DnsStatus.ERROR, detail=detail)

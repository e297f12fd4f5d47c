"""DNS block lists (RFC 5782): which zones to ask, the names to ask for, what the answers mean.

The DNS call itself is a port (`bot.core.ports.Resolver`); everything here is pure. An answer has
three outcomes, never a bool: listed (with the list's meaning of the code), not listed, unknown
(timeout, SERVFAIL, REFUSED, an operator's error code such as Spamhaus 127.255.255.254, a code the
list does not define). A list is only believed when it answers its RFC 5782 test points:
127.0.0.2 (IPv6 ::ffff:7f00:2) listed and 127.0.0.1 (::ffff:7f00:1) not listed.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from bot.core.errors import KnowledgeError
from bot.core.knowledge import DATA_DIR, Provider, _Row, _rows
from bot.core.ports import DnsAnswer, DnsStatus

ACCESS = frozenset({"free", "registered", "key"})
KEY_NAMES = frozenset({"dqs", "abusix"})
_CODE = re.compile(r"^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$")
_HOSTNAME = re.compile(
    r"^(?=.{1,253}\.?$)([a-z0-9_](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}\.?$", re.IGNORECASE)
_LEADING_ZERO = re.compile(r"^(\d{1,3}\.){0,3}0\d")
IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
SWEEP_MAX = 256  # addresses of one network checked at once


class ListingStatus(StrEnum):
    LISTED = "listed"
    NOT_LISTED = "not_listed"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Zone:
    """One queried DNSBL zone (a row of bot/data/dnsbl.toml)."""

    id: str
    provider: str
    name: str
    zone: str | None
    access: str
    key: str | None
    key_zone: str | None
    ipv6: bool
    test_points: bool
    codes: Mapping[str, str]
    errors: Mapping[str, str]
    source: str
    notes: str = ""

    def query_zone(self, keys: Mapping[str, str | None]) -> str | None:
        """The zone to query with the keys at hand; None when the list cannot be asked."""
        key = keys.get(self.key) if self.key else None
        if key and self.key_zone:
            return self.key_zone.replace("{key}", key)
        return self.zone

    def shown_zone(self, keys: Mapping[str, str | None]) -> str:
        """The zone as printed: a key is replaced by <key>, so secrets never reach output."""
        key = keys.get(self.key) if self.key else None
        if key and self.key_zone:
            return self.key_zone.replace("{key}", "<key>")
        return self.zone or (self.key_zone or "").replace("{key}", "<key>")


@dataclass(frozen=True)
class Listing:
    """The answer of one list for one IP."""

    list: str
    zone: str
    provider: str
    status: ListingStatus
    code: str | None = None
    meaning: str | None = None
    detail: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "list": self.list,
            "zone": self.zone,
            "provider": self.provider,
            "status": str(self.status),
            "code": self.code,
            "meaning": self.meaning,
            "detail": self.detail or None,
        }


@dataclass(frozen=True)
class Skipped:
    """A current list that was not asked, and why (no key, no IPv6 data)."""

    list: str
    zone: str
    provider: str
    why: str

    def to_json(self) -> dict[str, Any]:
        return {"list": self.list, "zone": self.zone, "provider": self.provider, "why": self.why}


@dataclass(frozen=True)
class Planned:
    """A lookup to make: the zone, the names for the IP and for the two test points."""

    zone: Zone
    shown: str
    name: str
    test_listed: str | None
    test_clean: str | None


@dataclass(frozen=True)
class Plan:
    queries: tuple[Planned, ...] = ()
    skipped: tuple[Skipped, ...] = field(default=())


# ----------------------------------------------------------------------------- input


@dataclass(frozen=True)
class Target:
    """What the user typed, judged: an IP worth querying, or the reason it is not."""

    text: str
    ip: IpAddress | None = None
    problem: str | None = None  # bad input: not an IP at all
    private: str | None = None  # a valid IP that no public list can contain, and why


def parse_target(text: str) -> Target:
    """Accept a public IPv4/IPv6 address; explain garbage, host names and non-public ranges."""
    cleaned = text.strip().strip("[]")
    try:
        ip = ipaddress.ip_address(cleaned)
    except ValueError:
        return Target(text, problem=_not_an_ip(text, cleaned))
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped  # ::ffff:a.b.c.d is the IPv4 host, and lists are keyed by that
    kind = _non_public_kind(ip)
    if kind:
        return Target(text, ip=ip, private=(
            f"{ip} is not a public address ({kind}): public block lists never list it, "
            "so no list was asked"))
    return Target(text, ip=ip)


def _not_an_ip(text: str, cleaned: str) -> str:
    if _HOSTNAME.match(cleaned):
        return (f"{text!r} is a host name, not an IP address; block lists are keyed by IP: "
                "resolve it first")
    if _LEADING_ZERO.match(cleaned):
        return f"{text!r} is not an IP address (an octet with a leading zero is ambiguous)"
    if "/" in cleaned:
        return f"{text!r} is not an IP address or a network (a.b.c.d/nn, at most {SWEEP_MAX})"
    return f"{text!r} is not an IP address"


_NAMED_RANGES = tuple((ipaddress.ip_network(net), kind) for net, kind in (
    # the most specific first; what is not here falls back to the stdlib's flags below
    ("255.255.255.255/32", "limited broadcast"),
    ("0.0.0.0/8", "\"this network\" range"),
    ("100.64.0.0/10", "shared address space for carrier-grade NAT, RFC 6598"),
    ("192.0.0.0/24", "IETF protocol assignments"),
    ("192.0.2.0/24", "documentation range"), ("198.51.100.0/24", "documentation range"),
    ("203.0.113.0/24", "documentation range"), ("2001:db8::/32", "documentation range"),
    ("198.18.0.0/15", "benchmarking range"),
    ("64:ff9b::/96", "NAT64 translation range: the sender is the NAT64 gateway's IPv4 address"),
    ("fc00::/7", "unique local range"),
))


def _non_public_kind(ip: IpAddress) -> str | None:
    """What kind of non-public address `ip` is, or None for a public one."""
    flags = (("loopback range", ip.is_loopback), ("unspecified address", ip.is_unspecified),
             ("link-local range", ip.is_link_local), ("multicast range", ip.is_multicast))
    kind = next((k for k, flag in flags if flag), None)
    kind = kind or next((k for net, k in _NAMED_RANGES
                         if net.version == ip.version and ip in net), None)
    if kind is None and ip.is_reserved:
        kind = "reserved range"
    if kind is None and not ip.is_global:
        kind = "private range"
    return kind


def parse_sweep(text: str) -> tuple[list[str], str | None]:
    """The addresses of a network written a.b.c.d/nn (host bits ignored), at most SWEEP_MAX of
    them; or a problem. Each address is then judged on its own (`parse_target`)."""
    try:
        network = ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        return [], _not_an_ip(text, text.strip())
    if network.num_addresses > SWEEP_MAX:
        return [], (f"{text!r} has {network.num_addresses:,} addresses; at most {SWEEP_MAX} "
                    f"(an IPv4 /24 or an IPv6 /120) are checked at once")
    return [str(ip) for ip in network], None


# ----------------------------------------------------------------------------- names


def query_name(ip: IpAddress, zone: str) -> str:
    """RFC 5782 §2.1/2.4: reversed octets (IPv4) or 32 reversed nibbles (IPv6), then the zone."""
    return f"{_reversed(ip)}.{zone.rstrip('.')}"


def _reversed(ip: IpAddress) -> str:
    """"4.3.2.1" for 1.2.3.4; the 32 nibbles, last first, for IPv6."""
    return ip.reverse_pointer.rsplit(".", 2)[0]  # "4.3.2.1.in-addr.arpa" / "...ip6.arpa"


_TEST_POINTS = {  # RFC 5782 §5: always listed, never listed
    4: (_reversed(ipaddress.IPv4Address("127.0.0.2")), _reversed(ipaddress.IPv4Address("127.0.0.1"))),
    6: (_reversed(ipaddress.IPv6Address("::ffff:7f00:2")),
        _reversed(ipaddress.IPv6Address("::ffff:7f00:1"))),
}


def plan(zones: Iterable[Zone], ip: IpAddress, keys: Mapping[str, str | None]) -> Plan:
    """Which zones to ask for `ip` and the names to ask, plus the lists left out and why."""
    queries: list[Planned] = []
    skipped: list[Skipped] = []
    reversed_ip = _reversed(ip)
    listed_tp, clean_tp = _TEST_POINTS[ip.version]
    for zone in zones:
        shown = zone.shown_zone(keys)
        target = zone.query_zone(keys)
        if target is None:
            why = f"needs a key ({key_setting(zone.key)} is not set); not asked"
            skipped.append(Skipped(zone.name, shown, zone.provider, why))
        elif ip.version == 6 and not zone.ipv6:
            skipped.append(Skipped(zone.name, shown, zone.provider,
                                   "publishes no IPv6 data; not asked"))
        else:
            target = target.rstrip(".")
            tp = zone.test_points
            queries.append(Planned(zone, shown, f"{reversed_ip}.{target}",
                                   f"{listed_tp}.{target}" if tp else None,
                                   f"{clean_tp}.{target}" if tp else None))
    return Plan(tuple(queries), tuple(skipped))


def key_setting(key: str | None) -> str:
    return f"DELISTBOT_{(key or '').upper()}_KEY"


# ----------------------------------------------------------------------------- answers


def interpret(zone: Zone, a: DnsAnswer, txt: DnsAnswer | None = None,
              shown: str | None = None) -> Listing:
    """Turn the A (and TXT) answers for one name into listed / not listed / unknown."""
    where = shown or zone.zone or ""

    def result(status: ListingStatus, code: str | None = None, meaning: str | None = None,
               detail: str = "") -> Listing:
        return Listing(zone.name, where, zone.provider, status, code, meaning, detail)

    if a.status in {DnsStatus.NXDOMAIN, DnsStatus.NODATA}:
        return result(ListingStatus.NOT_LISTED)
    if a.failed or not a.records:
        return result(ListingStatus.UNKNOWN, detail=_failure(a))
    codes = sorted(set(a.records), key=_code_order)
    code_text = ", ".join(codes)
    errors = [zone.errors[c] for c in codes if c in zone.errors]
    if errors:
        return result(ListingStatus.UNKNOWN, code_text, "; ".join(errors),
                      "the list answered with an error code, not a listing")
    known = [c for c in codes if c in zone.codes]
    if not known:
        return result(ListingStatus.UNKNOWN, code_text, None,
                      f"{code_text} is not a code {zone.name} defines; not treated as a listing")
    detail = _txt_reason(txt)
    undefined = [c for c in codes if c not in zone.codes]
    if undefined:
        detail = f"{detail} (also answered undefined {', '.join(undefined)})".strip()
    return result(ListingStatus.LISTED, code_text, "; ".join(zone.codes[c] for c in known), detail)


def _code_order(code: str) -> tuple[int, ...]:
    try:
        return tuple(int(p) for p in code.split("."))
    except ValueError:
        return (999,)


def _failure(a: DnsAnswer) -> str:
    what = {
        DnsStatus.TIMEOUT: "no answer in time (timeout)",
        DnsStatus.SERVFAIL: "the resolver answered SERVFAIL",
        DnsStatus.REFUSED: "the resolver REFUSED the query",
    }.get(a.status, "lookup failed")
    return f"{what}: {a.detail}" if a.detail else what


def _txt_reason(txt: DnsAnswer | None) -> str:
    if txt is None or txt.status is not DnsStatus.OK:
        return ""
    return " | ".join(txt.records)


@dataclass(frozen=True)
class Health:
    """What a zone's RFC 5782 test points say about it right now."""

    problem: str | None = None  # why the zone cannot be believed; None when it can
    unanswered: bool = False  # a test point got no answer: the zone (or the way to it) is down


def health(zone: Zone, listed: DnsAnswer, clean: DnsAnswer) -> Health:
    """Judge a zone by its test points: 127.0.0.2 must answer listed, 127.0.0.1 not listed."""
    failed = [(what, a) for what, a in (("“always listed”", listed), ("“never listed”", clean))
              if a.failed]
    if failed:
        which = " and ".join(what for what, _ in failed)
        points = "points" if len(failed) > 1 else "point"
        return Health(f"its {which} test {points} failed: {_failure(failed[0][1])}",
                      unanswered=True)
    if interpret(zone, clean).status is not ListingStatus.NOT_LISTED:
        return Health(f"its “never listed” test point answers {_said(zone, clean)}")
    # Any 127/8 answer that is not an error code will do for 127.0.0.2: some lists answer their
    # test point with a code of their own (RFC 5782 only requires that it is listed).
    said_listed = listed.status is DnsStatus.OK and all(
        _CODE.match(r) and r not in zone.errors for r in listed.records)
    if not said_listed:
        return Health(f"its “always listed” test point answers {_said(zone, listed)}")
    return Health()


def _said(zone: Zone, answer: DnsAnswer) -> str:
    if answer.status is DnsStatus.OK:
        return ", ".join(answer.records)
    if answer.status in {DnsStatus.NXDOMAIN, DnsStatus.NODATA}:
        return "not listed"
    return _failure(answer)


def distrust(listing: Listing, health: Health) -> Listing:
    """A listing as its zone's test points let it stand: from a list that failed them, reported
    as unknown, with the reason. When the test points got no answer and the listing is unknown
    anyway, its own reason stands (the zone is simply not answering)."""
    problem = health.problem
    if problem is None or (health.unanswered and listing.status is ListingStatus.UNKNOWN):
        return listing
    said = {ListingStatus.LISTED: f"it said listed ({listing.code})",
            ListingStatus.NOT_LISTED: "it said not listed",
            ListingStatus.UNKNOWN: listing.detail}[listing.status]
    return Listing(listing.list, listing.zone, listing.provider, ListingStatus.UNKNOWN,
                   listing.code, listing.meaning,
                   f"not trustworthy right now: {problem}; {said}")


def not_asked(zone: Zone, shown: str, health: Health) -> Listing:
    """The answer for an address not asked because the zone's test points got no answer (a
    sweep does not send a dead zone one query per address)."""
    return Listing(zone.name, shown, zone.provider, ListingStatus.UNKNOWN,
                   detail=f"the list is not answering: {health.problem}; not asked for this "
                          "address")


# ----------------------------------------------------------------------------- data


def load_zones(providers: Mapping[str, Provider],
               path: Path = DATA_DIR / "dnsbl.toml") -> tuple[Zone, ...]:
    """Load and validate dnsbl.toml; KnowledgeError names the row on any problem."""
    zones = [_zone(row, providers) for row in _rows(path, "zone")]
    for attr in ("id", "zone", "key_zone"):
        seen: set[str] = set()
        for z in zones:
            value = getattr(z, attr)
            if value is not None and value in seen:
                raise KnowledgeError(f"{path.name}: duplicate zone {attr} {value!r}")
            if value is not None:
                seen.add(value)
    return tuple(zones)


def _zone(row: _Row, providers: Mapping[str, Provider]) -> Zone:
    provider_id = row.need("provider", str)
    provider = providers.get(provider_id)
    if provider is None:
        raise row.fail(f"unknown provider {provider_id!r}")
    if provider.status != "active":
        raise row.fail(f"provider {provider_id!r} is {provider.status}: its zones must not be "
                       "queried")
    zone = Zone(
        id=row.need("id", str),
        provider=provider_id,
        name=row.need("name", str),
        zone=_zone_name(row, "zone"),
        access=row.need("access", str),
        key=row.get("key", str),
        key_zone=_zone_name(row, "key_zone"),
        ipv6=row.get("ipv6", bool, False),
        test_points=row.get("test_points", bool, True),
        codes=_codes(row, "codes"),
        errors=_codes(row, "errors"),
        source=row.need("source", str),
        notes=row.get("notes", str, ""),
    )
    row.done()
    _check_zone(row, zone)
    return zone


def _zone_name(row: _Row, key: str) -> str | None:
    value: str | None = row.get(key, str)
    if value is not None and not _HOSTNAME.match(value.replace("{key}", "key")):
        raise row.fail(f"{key} {value!r} is not a DNS name")
    return value


def _codes(row: _Row, key: str) -> dict[str, str]:
    table: dict[str, Any] = row.get(key, dict, {})
    for code, meaning in table.items():
        if not _CODE.match(code):
            raise row.fail(f"{key}: {code!r} is not a 127.x.y.z return code")
        if not isinstance(meaning, str) or not meaning:
            raise row.fail(f"{key}: {code!r} needs a meaning text")
    return dict(table)


def _check_zone(row: _Row, zone: Zone) -> None:
    if zone.access not in ACCESS:
        raise row.fail(f"access must be one of {sorted(ACCESS)}, not {zone.access!r}")
    if zone.key is not None and zone.key not in KEY_NAMES:
        raise row.fail(f"key must be one of {sorted(KEY_NAMES)}, not {zone.key!r}")
    if (zone.key is None) != (zone.key_zone is None):
        raise row.fail("key and key_zone go together")
    if zone.key_zone is not None and "{key}" not in zone.key_zone:
        raise row.fail("key_zone must contain {key}")
    if zone.zone is None and zone.key is None:
        raise row.fail("needs a zone (or a key and key_zone)")
    if zone.access == "key" and zone.zone is not None:
        raise row.fail("access = 'key' means there is no public zone; drop `zone`")
    if not zone.codes:
        raise row.fail("needs at least one [codes] entry")
    overlap = set(zone.codes) & set(zone.errors)
    if overlap:
        raise row.fail(f"{sorted(overlap)} both a listing code and an error code")

"""SPF (RFC 7208) evaluation and DMARC (RFC 7489, DMARCbis tree walk) policy lookup.

Pure logic; every DNS lookup goes through the `Resolver` port, so the same code runs against the
network adapter and against the tests' loopback server. What is implemented of RFC 7208:
record selection (exactly one "v=spf1"), the whole term grammar with syntax errors checked before
evaluation, the mechanisms all/include/a/mx/ptr/ip4/ip6/exists with qualifiers and dual CIDR
lengths, the redirect modifier, macro expansion (§7; "p" expands to "unknown" as §7.3 permits,
"h" to the checked domain since no HELO is known), the 10 DNS-mechanism limit (§4.6.4), the
10-MX/10-PTR name limits, and the two-void-lookups limit. DNS timeouts and SERVFAIL give
"temperror", never a guess.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from bot.core.ports import DnsAnswer, DnsStatus, Resolver

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
LOOKUP_LIMIT = 10  # RFC 7208 §4.6.4: include, a, mx, ptr, exists, redirect
VOID_LIMIT = 2  # §4.6.4: lookups answering NXDOMAIN or no records
NAME_LIMIT = 10  # §4.6.4: MX exchanges / PTR names looked at per mechanism

_VERSION = re.compile(r"^v=spf1(?: |$)", re.IGNORECASE)
_MODIFIER = re.compile(r"^([a-z][a-z0-9_.-]*)=(.*)$", re.IGNORECASE)
_DIRECTIVE = re.compile(r"^([-+~?]?)([a-z0-9]+)(?::(.*?))?((?:/\d+)?(?://\d+)?)$", re.IGNORECASE)
_MACRO = re.compile(r"%(?:\{([slodiphcrtv])(\d*)(r?)([.\-+,/_=]*)\}|(%)|(_)|(-))", re.IGNORECASE)
_MECHANISMS = frozenset({"all", "include", "a", "mx", "ptr", "ip4", "ip6", "exists"})
_QUALIFIERS = {"+": "pass", "-": "fail", "~": "softfail", "?": "neutral", "": "pass"}


class SpfError(Exception):
    """Ends an evaluation with permerror or temperror (internal to this module)."""

    def __init__(self, result: str, detail: str) -> None:
        super().__init__(detail)
        self.result = result
        self.detail = detail


@dataclass(frozen=True)
class Term:
    qualifier: str
    mechanism: str
    argument: str | None
    cidr4: int | None
    cidr6: int | None
    text: str


@dataclass(frozen=True)
class Record:
    terms: tuple[Term, ...]
    redirect: str | None
    text: str


@dataclass(frozen=True)
class SpfResult:
    domain: str
    result: str  # pass | fail | softfail | neutral | none | permerror | temperror
    record: str | None = None
    matched: str | None = None  # the term that decided, e.g. "include:_spf.example.net"
    lookups: int = 0
    detail: str = ""

    @property
    def authorises(self) -> bool | None:
        """Whether the domain authorises the IP: True (pass), False (fail/softfail), or None."""
        return {"pass": True, "fail": False, "softfail": False}.get(self.result)

    def to_json(self) -> dict[str, Any]:
        return {"domain": self.domain, "result": self.result, "authorises": self.authorises,
                "record": self.record, "matched": self.matched, "lookups": self.lookups,
                "detail": self.detail or None}


@dataclass
class _State:
    ip: IpAddress
    sender: str
    dns: Resolver
    lookups: int = 0
    voids: int = 0
    trail: list[str] = field(default_factory=list)

    def count_lookup(self, term: str) -> None:
        self.lookups += 1
        if self.lookups > LOOKUP_LIMIT:
            raise SpfError("permerror", f"more than {LOOKUP_LIMIT} DNS lookups (at {term})")

    def void(self, answer: DnsAnswer, name: str) -> DnsAnswer:
        """Count a void lookup; turn resolver failures into temperror."""
        if answer.failed:
            raise SpfError("temperror", f"DNS lookup of {name} failed ({answer.status})")
        if answer.status is not DnsStatus.OK:
            self.voids += 1
            if self.voids > VOID_LIMIT:
                raise SpfError("permerror", f"more than {VOID_LIMIT} void DNS lookups (at {name})")
        return answer


# ----------------------------------------------------------------------------- parsing


def parse_record(text: str) -> Record:
    """Parse one "v=spf1" record; SpfError(permerror) on any syntax error (§4.6)."""
    terms: list[Term] = []
    redirect: str | None = None
    seen_mods: set[str] = set()
    for token in text.split(" ")[1:]:
        if not token:
            continue
        modifier = _MODIFIER.match(token)
        if modifier and ":" not in modifier.group(1):
            name, value = modifier.group(1).lower(), modifier.group(2)
            if name in {"redirect", "exp"}:
                if name in seen_mods:
                    raise SpfError("permerror", f"{name}= appears twice")
                seen_mods.add(name)
                _check_macros(value, token)
                if name == "redirect":
                    redirect = value
            continue  # unknown modifiers are ignored (§6)
        terms.append(_directive(token))
    return Record(tuple(terms), redirect, text)


def _directive(token: str) -> Term:
    match = _DIRECTIVE.match(token)
    if not match or match.group(2).lower() not in _MECHANISMS:
        raise SpfError("permerror", f"unknown or malformed term {token!r}")
    qualifier, name, arg, cidr = match.groups()
    name = name.lower()
    if name in {"ip4", "ip6"}:  # one "/len" for both (ip6-cidr-length is a single slash)
        return _ip_term(qualifier, name, arg, cidr, token)
    cidr4, cidr6 = _cidrs(cidr or "", token)
    if name in {"include", "exists"} and not arg:
        raise SpfError("permerror", f"{token!r} needs a domain")
    if name in {"all", "include", "exists", "ptr"} and cidr:
        raise SpfError("permerror", f"{token!r} takes no CIDR length")
    if name == "all" and arg is not None:
        raise SpfError("permerror", f"{token!r}: all takes no argument")
    if arg is not None:
        _check_macros(arg, token)
    return Term(_QUALIFIERS[qualifier], name, arg, cidr4, cidr6, token)


def _cidrs(text: str, token: str) -> tuple[int | None, int | None]:
    match = re.fullmatch(r"(?:/(\d+))?(?://(\d+))?", text)
    if not match:
        raise SpfError("permerror", f"bad CIDR length in {token!r}")
    c4 = int(match.group(1)) if match.group(1) else None
    c6 = int(match.group(2)) if match.group(2) else None
    if (c4 is not None and c4 > 32) or (c6 is not None and c6 > 128):
        raise SpfError("permerror", f"CIDR length out of range in {token!r}")
    return c4, c6


def _ip_term(qualifier: str, name: str, arg: str | None, cidr: str, token: str) -> Term:
    try:
        network = ipaddress.ip_network(f"{arg}{cidr}", strict=False)
    except ValueError:
        raise SpfError("permerror", f"bad address in {token!r}") from None
    if (name == "ip4") != (network.version == 4) or (arg and "/" in arg):
        raise SpfError("permerror", f"bad address in {token!r}")
    return Term(_QUALIFIERS[qualifier], name, str(network), None, None, token)


def _check_macros(text: str, token: str) -> None:
    rest = _MACRO.sub("", text)
    if "%" in rest:
        raise SpfError("permerror", f"bad macro in {token!r}")


# ----------------------------------------------------------------------------- macros


def expand(text: str, state: _State, domain: str) -> str:
    """RFC 7208 §7 macro expansion of a domain-spec (truncated to 253 characters)."""

    def one(match: re.Match[str]) -> str:
        letter, digits, reverse, delimiters, pct, under, dash = match.groups()
        if pct:
            return "%"
        if under:
            return " "
        if dash:
            return "%20"
        value = _macro_value(letter.lower(), state, domain)
        parts = re.split("[" + re.escape(delimiters or ".") + "]", value)
        if reverse:
            parts.reverse()
        if digits:
            parts = parts[-int(digits):] if int(digits) else parts
        return ".".join(parts)

    out = _MACRO.sub(one, text)
    while len(out) > 253 and "." in out:
        out = out.split(".", 1)[1]  # §7.3: drop left-hand labels until it fits
    return out


def _macro_value(letter: str, state: _State, domain: str) -> str:
    local, _, sender_domain = state.sender.rpartition("@")
    if letter == "i":
        if state.ip.version == 4:
            return str(state.ip)
        return ".".join(state.ip.exploded.replace(":", ""))
    values = {"s": state.sender, "l": local or "postmaster", "o": sender_domain, "d": domain,
              "p": "unknown", "h": domain, "v": "in-addr" if state.ip.version == 4 else "ip6",
              "c": str(state.ip), "r": "unknown", "t": "0"}
    return values[letter]


# ----------------------------------------------------------------------------- evaluation


async def check_host(dns: Resolver, ip: str, domain: str, sender: str | None = None) -> SpfResult:
    """Does `domain` authorise `ip` to send its mail? RFC 7208 check_host()."""
    address = ipaddress.ip_address(ip)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    domain = domain.rstrip(".").lower()
    if not valid_domain(domain):
        return SpfResult(domain, "none", detail="not a valid domain name: nothing looked up")
    state = _State(address, sender or f"postmaster@{domain}", dns)
    try:
        result, record, matched = await _evaluate(state, ascii_domain(domain) or domain, top=True)
    except SpfError as exc:
        record = state.trail[0] if state.trail else None
        return SpfResult(domain, exc.result, record, None, state.lookups, exc.detail)
    return SpfResult(domain, result, record, matched, state.lookups)


async def _evaluate(state: _State, domain: str, top: bool = False) -> tuple[str, str | None,
                                                                              str | None]:
    if not valid_domain(domain):
        return "none", None, None
    text = await _fetch(state, domain)
    if text is None:
        return "none", None, None
    if top:
        state.trail.append(text)
    record = parse_record(text)
    for term in record.terms:
        if await _matches(state, term, domain):
            return term.qualifier, text, term.text
    if record.redirect is not None:
        state.count_lookup("redirect=" + record.redirect)
        target = expand(record.redirect, state, domain)
        result, _, matched = await _evaluate(state, target)
        if result == "none":
            raise SpfError("permerror", f"redirect={target} has no SPF record")
        return result, text, f"redirect={record.redirect} -> {matched}"
    return "neutral", text, None


def ascii_domain(domain: str) -> str | None:
    """The name as DNS carries it (IDNA A-labels, lower case), or None if it has no such form."""
    try:
        return domain.rstrip(".").encode("idna").decode("ascii").lower()
    except UnicodeError:
        return None


def valid_domain(domain: str) -> bool:
    """Whether `domain` can be looked up at all: two labels or more, each of 1 to 63 octets
    (internationalised names counted in their IDNA form), 253 octets in all."""
    wire = ascii_domain(domain)
    if wire is None:
        return False
    labels = wire.split(".")
    return (len(labels) > 1 and len(wire) <= 253
            and all(0 < len(label) <= 63 for label in labels))



async def _fetch(state: _State, domain: str) -> str | None:
    answer = await state.dns.query(domain, "TXT")
    if answer.failed:
        raise SpfError("temperror", f"TXT lookup of {domain} failed ({answer.status})")
    records = [r for r in answer.records if _VERSION.match(r)]
    if len(records) > 1:
        raise SpfError("permerror", f"{domain} publishes {len(records)} SPF records")
    return records[0] if records else None


async def _matches(state: _State, term: Term, domain: str) -> bool:
    name = term.mechanism
    if name == "all":
        return True
    if name in {"ip4", "ip6"}:
        return _in(state.ip, term.argument or "")
    state.count_lookup(term.text)
    target = expand(term.argument, state, domain) if term.argument else domain
    if name == "include":
        return await _include(state, target)
    if name == "exists":
        answer = state.void(await state.dns.query(target, "A"), target)
        return answer.status is DnsStatus.OK
    if name == "a":
        return await _a_matches(state, target, term)
    if name == "mx":
        return await _mx_matches(state, target, term)
    return await _ptr_matches(state, target)


async def _include(state: _State, target: str) -> bool:
    result, _, _ = await _evaluate(state, target)
    if result in {"temperror", "permerror"}:
        raise SpfError(result, f"include:{target} gave {result}")
    if result == "none":
        raise SpfError("permerror", f"include:{target} has no SPF record")
    return result == "pass"


def _in(ip: IpAddress, network: str) -> bool:
    net = ipaddress.ip_network(network, strict=False)
    return net.version == ip.version and ip in net


def _network(address: str, term: Term, version: int) -> str:
    length = term.cidr4 if version == 4 else term.cidr6
    return f"{address}/{length}" if length is not None else address


async def _addresses(state: _State, name: str, void: bool = True) -> Sequence[str]:
    rdtype = "A" if state.ip.version == 4 else "AAAA"
    answer = await state.dns.query(name, rdtype)
    if void:
        state.void(answer, name)
    elif answer.failed:
        raise SpfError("temperror", f"{rdtype} lookup of {name} failed ({answer.status})")
    return answer.records


async def _a_matches(state: _State, target: str, term: Term) -> bool:
    addresses = await _addresses(state, target)
    return any(_in(state.ip, _network(a, term, state.ip.version)) for a in addresses)


async def _mx_matches(state: _State, target: str, term: Term) -> bool:
    answer = state.void(await state.dns.query(target, "MX"), target)
    exchanges = [r.split()[-1].rstrip(".") for r in answer.records]
    if len(exchanges) > NAME_LIMIT:
        raise SpfError("permerror", f"{target} has more than {NAME_LIMIT} MX records")
    for exchange in exchanges:
        addresses = await _addresses(state, exchange, void=False)
        if any(_in(state.ip, _network(a, term, state.ip.version)) for a in addresses):
            return True
    return False


async def _ptr_matches(state: _State, target: str) -> bool:
    names = await validated_names(state.dns, str(state.ip))
    target = target.lower()
    return any(n == target or n.endswith("." + target) for n in names)


async def validated_names(dns: Resolver, ip: str) -> list[str]:
    """PTR names of `ip` whose forward lookup returns `ip` again (FCrDNS; §5.5)."""
    address = ipaddress.ip_address(ip)
    answer = await dns.query(address.reverse_pointer, "PTR")
    out = []
    for ptr in answer.records[:NAME_LIMIT]:
        name = ptr.rstrip(".").lower()
        forward = await dns.query(name, "A" if address.version == 4 else "AAAA")
        if any(ipaddress.ip_address(a) == address for a in forward.records):
            out.append(name)
    return out


# ----------------------------------------------------------------------------- DMARC


@dataclass(frozen=True)
class DmarcResult:
    domain: str
    status: str  # found | none | temperror | invalid
    found_at: str | None = None
    record: str | None = None
    policy: str | None = None  # the policy that applies to `domain`: none | quarantine | reject
    tags: dict[str, str] = field(default_factory=dict)
    detail: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"domain": self.domain, "status": self.status, "found_at": self.found_at,
                "record": self.record, "policy": self.policy,
                "pct": self.tags.get("pct"), "rua": self.tags.get("rua"),
                "adkim": self.tags.get("adkim", "r") if self.record else None,
                "aspf": self.tags.get("aspf", "r") if self.record else None,
                "detail": self.detail or None}


def parse_dmarc(text: str) -> dict[str, str] | None:
    """Tag-value list of a DMARC record, or None when it is not one (v=DMARC1 must come first)."""
    parts = [p.strip() for p in text.split(";")]
    tags: dict[str, str] = {}
    for part in filter(None, parts):
        name, sep, value = part.partition("=")
        if not sep:
            return None
        tags.setdefault(name.strip().lower(), value.strip())
    first = parts[0].replace(" ", "") if parts else ""
    return tags if first == "v=DMARC1" else None


def dmarc_targets(domain: str) -> list[str]:
    """DMARCbis DNS tree walk: the domain, then parents (at most 8 queries), never a bare TLD."""
    labels = domain.rstrip(".").lower().split(".")
    out = [".".join(labels)]
    if len(labels) > 8:
        labels = labels[-7:]
        out.append(".".join(labels))
    while len(labels) > 2:
        labels = labels[1:]
        out.append(".".join(labels))
    return out


async def dmarc_policy(dns: Resolver, domain: str) -> DmarcResult:
    """The DMARC policy that applies to mail from `domain`."""
    domain = domain.rstrip(".").lower()
    if not valid_domain(domain):
        return DmarcResult(domain, "invalid", detail="not a valid domain name: nothing looked up")
    domain = ascii_domain(domain) or domain  # the policy's own domain, as DNS spells it
    for target in dmarc_targets(domain):
        answer = await dns.query(f"_dmarc.{target}", "TXT")
        if answer.failed:
            return DmarcResult(domain, "temperror", detail=f"_dmarc.{target}: {answer.status}")
        records = [(r, t) for r in answer.records if (t := parse_dmarc(r)) is not None]
        if len(records) > 1:
            return DmarcResult(domain, "invalid", target,
                               detail=f"_dmarc.{target} has {len(records)} DMARC records")
        if records:
            return _dmarc_found(domain, target, *records[0])
    return DmarcResult(domain, "none", detail="no DMARC record at the domain or its parents")


def _dmarc_found(domain: str, found_at: str, record: str, tags: dict[str, str]) -> DmarcResult:
    policy = tags.get("p", "").lower()
    if found_at != domain and tags.get("sp"):
        policy = tags["sp"].lower()
    if policy not in {"none", "quarantine", "reject"}:
        return DmarcResult(domain, "invalid", found_at, record, None, tags,
                           f"policy {policy or '(missing)'!r} is not none/quarantine/reject")
    return DmarcResult(domain, "found", found_at, record, policy, tags)

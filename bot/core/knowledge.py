"""Provider and blocklist knowledge: TOML rows validated into frozen dataclasses.

The data lives in `bot/data/*.toml` (one row schema per file, each row citing its source). Loading
is strict: an unknown key, a duplicate id, a bad regex or a reference to an id that does not exist
is a KnowledgeError naming the file and the row, so a typo fails at start-up, not in production.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from bot.core.errors import KnowledgeError
from bot.core.model import DelistMethod, DelistRoute, Reason
from bot.core.prefilter import Candidates, Grouped, Needles, Scanner, Screen

DATA_DIR = Path(__file__).resolve().parent.parent / "data"

PROVIDER_KINDS = frozenset({"receiver", "dnsbl", "gateway", "reputation"})
WAIT_BASES = frozenset({"published", "reported", "unconfirmed"})
_T = TypeVar("_T")
REPLY_KINDS = ("ack", "ticket_id", "resolved", "refused", "escalated", "verification")


@dataclass(frozen=True)
class ReplyMarkers:
    """How the provider's own mails look: acknowledgement, ticket ids, resolution, refusal."""

    ack: tuple[re.Pattern[str], ...] = ()
    ticket_id: tuple[re.Pattern[str], ...] = ()  # group 1 (or the whole match) is the id
    resolved: tuple[re.Pattern[str], ...] = ()
    refused: tuple[re.Pattern[str], ...] = ()
    escalated: tuple[re.Pattern[str], ...] = ()
    verification: tuple[re.Pattern[str], ...] = ()


@dataclass(frozen=True)
class Provider:
    """A receiver (mailbox provider, gateway) or a list operator."""

    id: str
    name: str
    kind: str
    list_name: str
    status: str = "active"
    defunct_since: str | None = None
    hosts: tuple[re.Pattern[str], ...] = ()
    domains: tuple[str, ...] = ()
    text: tuple[re.Pattern[str], ...] = ()
    routes: Mapping[str, DelistRoute] = field(default_factory=dict)
    wait_hours: float | None = None
    wait_basis: str = "unconfirmed"
    reminder_hours: float | None = None
    overdue_hours: float | None = None
    propagation_hours: float | None = None
    replies: ReplyMarkers = ReplyMarkers()
    source: str = ""
    notes: str = ""

    @property
    def route(self) -> DelistRoute:
        return self.routes["default"]

    def matches_domain(self, domain: str) -> bool:
        domain = domain.lower()
        return any(domain == d or domain.endswith("." + d) for d in self.domains)


@dataclass(frozen=True)
class Rule:
    """One ordered rejection rule: a pattern over the unwrapped diagnostic and what it means."""

    id: str
    pattern: re.Pattern[str]
    reason: Reason
    what: str
    source: str
    example: str
    receiver: str | None = None
    blocklist: str | None = None  # a provider id, or "?" to find the list named in the text
    route: str | None = None  # a route name of the acting provider (the list, else the receiver)
    status: re.Pattern[str] | None = None  # optional condition on the enhanced status code
    example_status: str | None = None  # the status code the example came with, when `status` is set
    temporary: bool = False
    warning: str | None = None
    next_step: str | None = None
    wait_hours: float | None = None
    overdue_hours: float | None = None
    screen: Screen = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "screen", Screen((self.pattern,), split=True))

    @property
    def needles(self) -> Needles:
        return self.screen.needles

    def matches(self, text: str, low: str | None, status: str | None) -> bool:
        """The rule's pattern is in `text` (`low` from prefilter.lowered) and its status condition holds."""
        return (self.screen.search(text, low)
                and (self.status is None or self.status.search(status or "") is not None))


@dataclass(frozen=True)
class ReasonRule:
    """A generic (provider-independent) phrase rule for one reason."""

    id: str
    reason: Reason
    pattern: re.Pattern[str]
    source: str = ""
    example: str = ""
    screen: Screen = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "screen", Screen((self.pattern,), split=True))

    @property
    def needles(self) -> Needles:
        return self.screen.needles

    def matches(self, text: str, low: str | None) -> bool:
        return self.screen.search(text, low)


class _Markers:
    """The `text` (or `hosts`) patterns of some providers, one flat list in the data's order.

    The first provider with a pattern that matches is the owner of the first matching pattern
    in this order, so the patterns are screened one by one (each with its own needles, in one
    sweep of the text) rather than provider by provider: a provider one of whose patterns has
    no needles does not make its other patterns run on every text.
    """

    __slots__ = ("_candidates", "_owners", "_screens")

    def __init__(self, providers: tuple[Provider, ...], what: str, scanner: Scanner | None) -> None:
        pairs = [(p, pattern) for p in providers for pattern in (p.text if what == "text" else p.hosts)]
        self._owners = tuple(p for p, _ in pairs)
        # As for the rules: each pattern its own Screen, which runs it only where a match can
        # start once its needles and starts are derived (on its second use).
        self._screens = tuple(Screen((pattern,)) for _, pattern in pairs)
        self._candidates = Candidates(self._screens, scanner)

    def build(self) -> None:
        self._candidates._build()

    def first(self, text: str, low: str | None) -> Provider | None:
        """The owner of the first pattern that matches `text` (`low`: prefilter.lowered(text))."""
        screens = self._screens
        for i in self._candidates.of(low):  # each holds one of its needles, or has none
            if screens[i].search(text, low):
                return self._owners[i]
        return None


@dataclass(frozen=True)
class Knowledge:
    providers: Mapping[str, Provider]
    rules: tuple[Rule, ...]
    phrases: tuple[ReasonRule, ...]
    statuses: Mapping[str, Reason]  # enhanced status code (or class.subject prefix) -> reason
    _scanner: Scanner = field(init=False, compare=False, repr=False)
    rule_candidates: Candidates = field(init=False, compare=False, repr=False)
    phrase_groups: Grouped = field(init=False, compare=False, repr=False)
    _kinds_cache: dict[tuple[str, ...], tuple[Provider, ...]] = field(
        default_factory=dict, init=False, compare=False, repr=False)
    # domain -> (the provider's position in the data's order, the first provider holding it)
    _domains_cache: dict[tuple[str, ...], dict[str, tuple[int, Provider]]] = field(
        default_factory=dict, init=False, compare=False, repr=False)
    _markers_cache: dict[tuple[str, tuple[str, ...]], _Markers] = field(
        default_factory=dict, init=False, compare=False, repr=False)
    by_reason: Mapping[Reason, tuple[ReasonRule, ...]] = field(default_factory=dict)

    def says(self, reason: Reason, text: str, low: str | None = None) -> bool:
        """Does any generic phrase of `reason` occur in the text? (`low`: prefilter.lowered(text))"""
        return self.phrase_groups.says(reason, text, low)

    def may_say(self, low: str | None) -> frozenset[Reason]:
        """The reasons whose generic phrases may occur in the text `low` (prefilter.lowered) was
        lowered from: one of their needles is in it, or a phrase has none. No other reason's
        phrases can match, so `says` is False for every reason outside this set. The phrase
        index `says` asks answers it, from the scan `says` uses too."""
        possible = self.phrase_groups.groups(low)
        return frozenset(self.by_reason) if possible is None else possible

    def __post_init__(self) -> None:
        # The rules, the phrases and the providers' markers ask about the same diagnostics: one
        # scanner finds all their needles in one pass, compiled once for all of them.
        scanner = Scanner(self._prepare)
        object.__setattr__(self, "_scanner", scanner)
        object.__setattr__(self, "rule_candidates", Candidates(tuple(r.screen for r in self.rules), scanner))
        object.__setattr__(self, "phrase_groups", Grouped(
            {reason: tuple(p.screen for p in rows) for reason, rows in self.by_reason.items()}, scanner))

    def _prepare(self) -> None:
        """Build every needle index that shares the scanner, so its trie is compiled once."""
        self.rule_candidates._build()
        self.phrase_groups._build()
        for kinds in (("receiver", "gateway"), ("dnsbl", "reputation", "gateway"), ("dnsbl", "reputation")):
            self._markers("text", kinds).build()

    def provider(self, provider_id: str) -> Provider:
        return self.providers[provider_id]

    def of_kinds(self, kinds: tuple[str, ...]) -> tuple[Provider, ...]:
        """The providers of these kinds, in the data's order (computed once per kinds)."""
        found = self._kinds_cache.get(kinds)
        if found is None:
            found = tuple(p for p in self.providers.values() if p.kind in kinds)
            self._kinds_cache[kinds] = found
        return found

    def named_in(self, text: str, low: str | None, kinds: tuple[str, ...]) -> Provider | None:
        """The first provider of these kinds (in the data's order) whose `text` markers are in `text`."""
        return self._markers("text", kinds).first(text, low)

    def by_host(self, host: str, low: str | None, kinds: tuple[str, ...]) -> Provider | None:
        """The first provider of these kinds (in the data's order) whose host patterns match `host`."""
        return self._markers("hosts", kinds).first(host, low)

    def _markers(self, what: str, kinds: tuple[str, ...]) -> _Markers:
        found = self._markers_cache.get((what, kinds))
        if found is None:
            found = _Markers(self.of_kinds(kinds), what, self._scanner if what == "text" else None)
            self._markers_cache[(what, kinds)] = found
        return found

    def by_domain(self, domain: str, kinds: tuple[str, ...]) -> Provider | None:
        """The first provider (in the data's order) of these kinds whose domains hold `domain`."""
        index = self._domains_cache.get(kinds)
        if index is None:
            index = {}
            for position, provider in enumerate(self.of_kinds(kinds)):
                for d in provider.domains:
                    index.setdefault(d, (position, provider))
            self._domains_cache[kinds] = index
        # The domain and each suffix after one of its dots ("a.b.c", "b.c", "c"), the earliest
        # provider in the data's order winning.
        suffix = domain.lower()
        best: tuple[int, Provider] | None = None
        while True:
            hit = index.get(suffix)
            if hit is not None and (best is None or hit[0] < best[0]):
                best = hit
            dot = suffix.find(".")
            if dot == -1:
                return best[1] if best else None
            suffix = suffix[dot + 1:]

    def by_kind(self, *kinds: str) -> Iterable[Provider]:
        return (p for p in self.providers.values() if p.kind in kinds)


class _Row:
    """Reads one TOML row, remembering which keys were used so unknown ones are reported."""

    def __init__(self, where: str, data: Mapping[str, Any]) -> None:
        self.where = where
        self.data = data
        self.used: set[str] = set()

    def fail(self, message: str) -> KnowledgeError:
        return KnowledgeError(f"{self.where}: {message}")

    def get(self, key: str, kind: type | tuple[type, ...], default: Any = None) -> Any:
        self.used.add(key)
        if key not in self.data:
            return default
        value = self.data[key]
        if not isinstance(value, kind) or (isinstance(value, bool) and bool not in _as_tuple(kind)):
            raise self.fail(f"{key!r} must be {_kind_name(kind)}, not {value!r}")
        return value

    def need(self, key: str, kind: type | tuple[type, ...]) -> Any:
        value = self.get(key, kind)
        if value is None or value == "":
            raise self.fail(f"missing {key!r}")
        return value

    def number(self, key: str) -> float | None:
        value = self.get(key, (int, float))
        return None if value is None else float(value)

    def regex(self, key: str, value: str) -> re.Pattern[str]:
        try:
            return re.compile(value, re.IGNORECASE)
        except re.error as exc:
            raise self.fail(f"bad regex in {key!r}: {exc}") from None

    def regexes(self, key: str) -> tuple[re.Pattern[str], ...]:
        values = self.get(key, list, [])
        return tuple(self.regex(key, _str(self, key, v)) for v in values)

    def done(self) -> None:
        unknown = sorted(set(self.data) - self.used)
        if unknown:
            raise self.fail(f"unknown key(s) {', '.join(unknown)}")


def _as_tuple(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def _kind_name(kind: type | tuple[type, ...]) -> str:
    return " or ".join(k.__name__ for k in _as_tuple(kind))


def _str(row: _Row, key: str, value: Any) -> str:
    if not isinstance(value, str):
        raise row.fail(f"{key!r} items must be strings, not {value!r}")
    return value


def _route(row: _Row, name: str, data: Any) -> DelistRoute:
    if not isinstance(data, dict):
        raise row.fail(f"route {name!r} must be a table")
    r = _Row(f"{row.where} route {name!r}", data)
    method_text = r.need("method", str)
    try:
        method = DelistMethod(method_text)
    except ValueError:
        raise r.fail(f"unknown method {method_text!r}") from None
    route = DelistRoute(
        method=method,
        url=r.get("url", str),
        address=r.get("address", str),
        template=r.need("template", str),
        include=tuple(_str(r, "include", v) for v in r.get("include", list, [])),
        note=r.get("note", str),
        domains=tuple(_str(r, "domains", d).lower() for d in r.get("domains", list, [])),
    )
    r.done()
    if route.domains and name == "default":
        raise r.fail("the default route serves every domain; `domains` belongs on another route")
    if method is DelistMethod.WEB and not route.url:
        raise r.fail("a web route needs a url")
    if method is DelistMethod.EMAIL and not route.address:
        raise r.fail("an email route needs an address")
    return route


def _replies(row: _Row) -> ReplyMarkers:
    data = row.get("replies", dict, {})
    r = _Row(f"{row.where} replies", data)
    markers = ReplyMarkers(**{kind: r.regexes(kind) for kind in REPLY_KINDS})
    r.done()
    return markers


def _provider(row: _Row) -> Provider:
    kind = row.need("kind", str)
    if kind not in PROVIDER_KINDS:
        raise row.fail(f"kind must be one of {sorted(PROVIDER_KINDS)}, not {kind!r}")
    basis = row.get("wait_basis", str, "unconfirmed")
    if basis not in WAIT_BASES:
        raise row.fail(f"wait_basis must be one of {sorted(WAIT_BASES)}")
    routes_data = row.need("route", dict)
    routes = {name: _route(row, name, value) for name, value in routes_data.items()}
    if "default" not in routes:
        raise row.fail("needs a [route.default]")
    provider = Provider(
        id=row.need("id", str),
        name=row.need("name", str),
        kind=kind,
        list_name=row.get("list_name", str) or f"{row.need('name', str)}'s block list",
        status=row.get("status", str, "active"),
        defunct_since=row.get("defunct_since", str),
        hosts=row.regexes("hosts"),
        domains=tuple(_str(row, "domains", d).lower() for d in row.get("domains", list, [])),
        text=row.regexes("text"),
        routes=routes,
        wait_hours=row.number("wait_hours"),
        wait_basis=basis,
        reminder_hours=row.number("reminder_hours"),
        overdue_hours=row.number("overdue_hours"),
        propagation_hours=row.number("propagation_hours"),
        replies=_replies(row),
        source=row.need("source", str),
        notes=row.get("notes", str, ""),
    )
    row.done()
    return provider


def _reason(row: _Row, key: str = "reason") -> Reason:
    text = row.need(key, str)
    try:
        return Reason(text)
    except ValueError:
        raise row.fail(f"unknown reason {text!r}") from None


def _rule(row: _Row) -> Rule:
    status = row.get("status", str)
    rule = Rule(
        id=row.need("id", str),
        pattern=row.regex("match", row.need("match", str)),
        reason=_reason(row),
        what=row.need("what", str),
        source=row.need("source", str),
        example=row.need("example", str),
        receiver=row.get("receiver", str),
        blocklist=row.get("blocklist", str),
        route=row.get("route", str),
        status=row.regex("status", status) if status else None,
        example_status=row.get("example_status", str),
        temporary=row.get("temporary", bool, False),
        warning=row.get("warning", str),
        next_step=row.get("next", str),
        wait_hours=row.number("wait_hours"),
        overdue_hours=row.number("overdue_hours"),
    )
    row.done()
    return rule


def _phrase(row: _Row) -> ReasonRule:
    rule = ReasonRule(
        id=row.need("id", str),
        reason=_reason(row),
        pattern=row.regex("match", row.need("match", str)),
        source=row.get("source", str, ""),
        example=row.get("example", str, ""),
    )
    row.done()
    return rule


def _rows(path: Path, table: str) -> list[_Row]:
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise KnowledgeError(f"{path.name}: {exc}") from None
    rows = data.pop(table, [])
    if data:
        raise KnowledgeError(f"{path.name}: unknown top-level key(s) {', '.join(sorted(data))}")
    return [_Row(f"{path.name} [[{table}]] #{i + 1} ({r.get('id', '?')})", r) for i, r in enumerate(rows)]


def _unique(items: list[_T], key: Callable[[_T], str], what: str) -> dict[str, _T]:
    seen: dict[str, _T] = {}
    for item in items:
        k = key(item)
        if k in seen:
            raise KnowledgeError(f"duplicate {what} id {k!r}")
        seen[k] = item
    return seen


def _check_references(providers: Mapping[str, Provider], rules: Iterable[Rule]) -> None:
    for rule in rules:
        for ref in (rule.receiver, rule.blocklist):
            if ref not in (None, "?") and ref not in providers:
                raise KnowledgeError(f"rules.toml rule {rule.id!r}: unknown provider {ref!r}")
        acting = rule.blocklist if rule.blocklist not in (None, "?") else rule.receiver
        if rule.route and acting and rule.route not in providers[acting].routes:
            raise KnowledgeError(
                f"rules.toml rule {rule.id!r}: provider {acting!r} has no route {rule.route!r}"
            )


def _statuses(path: Path) -> dict[str, Reason]:
    with path.open("rb") as fh:
        data = tomllib.load(fh).get("status", {})
    out: dict[str, Reason] = {}
    for code, reason in data.items():
        if not re.fullmatch(r"[245](\.\d{1,3}){1,2}", code):
            raise KnowledgeError(f"statuses.toml: bad status code {code!r}")
        try:
            out[code] = Reason(reason)
        except ValueError:
            raise KnowledgeError(f"statuses.toml: {code}: unknown reason {reason!r}") from None
    return out


def load(data_dir: Path = DATA_DIR) -> Knowledge:
    """Load and validate every knowledge file; raises KnowledgeError naming the bad row."""
    providers = _unique([_provider(r) for r in _rows(data_dir / "providers.toml", "provider")],
                        lambda p: p.id, "provider")
    rules = [_rule(r) for r in _rows(data_dir / "rules.toml", "rule")]
    _unique(rules, lambda r: r.id, "rule")
    _check_references(providers, rules)
    phrases = [_phrase(r) for r in _rows(data_dir / "reasons.toml", "phrase")]
    _unique(phrases, lambda r: r.id, "phrase")
    by_reason: dict[Reason, list[ReasonRule]] = {}
    for phrase in phrases:
        by_reason.setdefault(phrase.reason, []).append(phrase)
    return Knowledge(
        providers=providers,
        rules=tuple(rules),
        phrases=tuple(phrases),
        statuses=_statuses(data_dir / "statuses.toml"),
        by_reason={reason: tuple(rows) for reason, rows in by_reason.items()},
    )

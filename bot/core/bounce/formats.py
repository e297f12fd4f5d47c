"""Which software wrote a bounce: the ordered table in bot/data/formats.toml, applied."""

from __future__ import annotations

import re
import tomllib
from bisect import bisect_left
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from itertools import compress
from pathlib import Path

from bot.core.bounce.text import lowered_once
from bot.core.errors import KnowledgeError
from bot.core.model import Reason
from bot.core.prefilter import (
    Needles,
    Screen,
    at_line_start,
    first_match,
    line_starts,
    lowered,
    may_match,
    needles,
    starts,
)

FORMATS_FILE = Path(__file__).resolve().parent.parent.parent / "data" / "formats.toml"
_KEYS = {"id", "markers", "from", "subject", "end", "source", "reason", "headings"}
_FLAGS = re.IGNORECASE | re.MULTILINE

# Where the returned message starts in formats that do not say so themselves.
GENERIC_END = (
    re.compile(r"^-{2,}\s*(?:Below this line is a copy of the message|Enclosed is a copy of the message|"
               r"This is a copy of the message|Original message follows|Returned message|"
               r"Original message|Undelivered message follows|The header of the original message)", _FLAGS),
    re.compile(r"^\|?-{3,}\s*Message text follows", _FLAGS),
    re.compile(r"^(?:Original message headers|Below is a copy of the original message|"
               r"Content-Type: message/rfc822|------ This is a copy of the message)", _FLAGS),
)


_GENERIC_END_NEEDLES = tuple(needles(p) for p in GENERIC_END)
# Most of those needles hold "copy of the", which most bodies lack: a body without it holds none
# of them, so for it they are left out (one look for the words rather than one per needle).
_COPY = "copy of the"
_GENERIC_END_UNCOPIED = tuple(None if found is None else tuple(n for n in found if _COPY not in n)
                              for found in _GENERIC_END_NEEDLES)
_GENERIC_END_STARTS = tuple(starts(p) for p in GENERIC_END)
_GENERIC_END_LINES = tuple(line_starts(p) for p in GENERIC_END)


@dataclass(frozen=True)
class Format:
    id: str
    markers: tuple[re.Pattern[str], ...]
    from_: tuple[re.Pattern[str], ...]
    subject: tuple[re.Pattern[str], ...]
    end: tuple[re.Pattern[str], ...]
    source: str
    reason: str | None = None  # what the format means when its text names no reason
    headings: tuple[tuple[re.Pattern[str], str], ...] = ()  # headings that state the reason

    def stated_reason(self, body: str) -> str | None:
        """The reason the bounce's own heading states ("** Address not found **"), if any."""
        for pattern, reason in self.headings:
            if pattern.search(body):
                return reason
        return self.reason
    marker_screen: Screen = field(init=False, compare=False, repr=False)
    from_screen: Screen = field(init=False, compare=False, repr=False)
    subject_screen: Screen = field(init=False, compare=False, repr=False)
    end_needles: tuple[Needles, ...] = field(init=False, compare=False, repr=False)
    end_starts: tuple[Needles, ...] = field(init=False, compare=False, repr=False)
    end_lines: tuple[Needles, ...] = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "marker_screen", Screen(self.markers))
        object.__setattr__(self, "from_screen", Screen(self.from_))
        object.__setattr__(self, "subject_screen", Screen(self.subject))
        object.__setattr__(self, "end_needles", tuple(needles(p) for p in self.end))
        object.__setattr__(self, "end_starts", tuple(starts(p) for p in self.end))
        object.__setattr__(self, "end_lines", tuple(line_starts(p) for p in self.end))


def _compile(row: dict[str, object], key: str) -> tuple[re.Pattern[str], ...]:
    values = row.get(key, [])
    if not isinstance(values, list):
        raise KnowledgeError(f"formats.toml {row.get('id')!r}: {key!r} must be a list")
    try:
        return tuple(re.compile(str(v), _FLAGS) for v in values)
    except re.error as exc:
        raise KnowledgeError(f"formats.toml {row.get('id')!r}: bad regex in {key!r}: {exc}") from None


def _headings(row: dict[str, object]) -> tuple[tuple[re.Pattern[str], str], ...]:
    """`headings = [{match = "regex", reason = "..."}]`: what a format's heading lines state."""
    values = row.get("headings", [])
    if not isinstance(values, list) or not all(isinstance(v, dict) and set(v) == {"match", "reason"}
                                               for v in values):
        raise KnowledgeError(f"formats.toml {row.get('id')!r}: 'headings' must list {{match, reason}}")
    for value in values:
        if value["reason"] not in Reason.__members__.values():
            raise KnowledgeError(f"formats.toml {row.get('id')!r}: unknown reason {value['reason']!r}")
    try:
        return tuple((re.compile(str(v["match"]), _FLAGS), str(v["reason"])) for v in values)
    except re.error as exc:
        raise KnowledgeError(f"formats.toml {row.get('id')!r}: bad regex in 'headings': {exc}") from None


@cache
def load_formats(path: Path = FORMATS_FILE) -> tuple[Format, ...]:
    with path.open("rb") as fh:
        rows = tomllib.load(fh).get("format", [])
    formats = []
    seen: set[str] = set()
    for row in rows:
        unknown = set(row) - _KEYS
        if unknown:
            raise KnowledgeError(f"formats.toml {row.get('id')!r}: unknown key(s) {sorted(unknown)}")
        if not row.get("id") or row["id"] in seen:
            raise KnowledgeError(f"formats.toml: missing or duplicate id {row.get('id')!r}")
        seen.add(row["id"])
        formats.append(Format(row["id"], _compile(row, "markers"), _compile(row, "from"),
                              _compile(row, "subject"), _compile(row, "end"), str(row.get("source", "")),
                              str(row["reason"]) if row.get("reason") else None, _headings(row)))
    return tuple(formats)


def identify(body: str, from_header: str = "", subject: str = "") -> Format | None:
    """The first format (in the table's order) whose markers are in the body or whose From or
    Subject patterns match."""
    table = load_formats()
    first = _first_by_markers(body)
    low_from, low_subject = lowered(from_header), lowered(subject)
    headers = _HEADER_SWEEP
    if headers is not None and low_from is not None and low_subject is not None:
        # As for the markers: a format whose From or Subject patterns match has one of their
        # needles in the header, so only those formats are asked, in the table's order. Only the
        # formats before the markers' one can answer instead of it: the owners are in table order,
        # so the needles of the others (after the cut bisect finds) are not looked for.
        from_owners, from_literals, subject_owners, subject_literals = headers
        from_owners = from_owners[:bisect_left(from_owners, first)]
        subject_owners = subject_owners[:bisect_left(subject_owners, first)]
        named = {*compress(from_owners, map(low_from.__contains__, from_literals)),
                 *compress(subject_owners, map(low_subject.__contains__, subject_literals))}
        for i in sorted(named):
            fmt = table[i]
            if (fmt.from_screen.search(from_header, low_from)
                    or fmt.subject_screen.search(subject, low_subject)):
                return fmt
        return table[first] if first < len(table) else None
    for i in _with_header_patterns():
        if i >= first:
            break
        fmt = table[i]
        if fmt.from_screen.search(from_header, low_from) or fmt.subject_screen.search(subject, low_subject):
            return fmt
    return table[first] if first < len(table) else None


@cache
def _with_header_patterns() -> tuple[int, ...]:
    """Indices of the formats that have From or Subject patterns at all."""
    return tuple(i for i, fmt in enumerate(load_formats()) if fmt.from_ or fmt.subject)


_LAST_BODY: tuple[str, int] | None = None  # the marker answer for the last body (readers ask twice)
_CACHE_LIMIT = 256 * 1024
# An MTA's markers stand in its notice, at the top of the bounce; the head is enough to name it,
# and screening megabytes of a runaway paste with every format's markers took seconds.
_MARKER_HEAD = 256 * 1024


# A marker pattern: its format's index, the pattern, and starts(pattern) for first_match.
_Marker = tuple[int, re.Pattern[str], Needles]
# The needles a head is swept for, in order, each with its pattern's number.
_Plan = tuple[tuple[int, ...], tuple[str, ...]]
# The marker patterns, every needle of the sweep (a _Plan), and the plans made of it so far.
_Sweep = tuple[tuple[_Marker, ...], _Plan, dict[tuple[bool, ...], _Plan]]
_SWEEP: _Sweep | None = None
_SWEEP_USES = 0
# Words that several marker needles hold (vendors' names, the phrases of Microsoft's and Google's
# notices). A head without one of them holds none of the needles that hold it: the sweep leaves
# those out, testing the word once rather than each needle. A word pays when the needles it stands
# for are many or the heads it is missing from are; which needles each stands for is found from
# the needles themselves, so the choice of words changes the sweep's speed, never its answer.
_GATES = ("microsoft", "administ", "google", "amazon", "office", "outlook", "recipient(s)", "your message",
          "details", "james", "to the")


def _plan(sweep: _Sweep, key: tuple[bool, ...]) -> _Plan:
    """The needles of the sweep for a head that holds the _GATES words flagged in `key`: all,
    in order, but those holding a word the head does not."""
    _, (owners, literals), plans = sweep
    absent = [gate for gate, held in zip(_GATES, key, strict=True) if not held]
    kept = [i for i, literal in enumerate(literals) if not any(gate in literal for gate in absent)]
    plan = plans[key] = (tuple(owners[i] for i in kept), tuple(literals[i] for i in kept))
    return plan


def _sweep() -> _Sweep | None:
    """Every marker pattern in table order, and their needles, each with its pattern's number.

    A pattern that matches has one of its needles in the lowered head, so only the patterns
    whose needles `compress` yields need to run, in the same order: the format of the first of
    them that matches is the first format one of whose markers does (what asking each format's
    marker Screen in turn answers, without the Screen scanning the head for the needles again).
    A pattern without needles gets the empty needle, which every text holds. The needles are
    those _plan() keeps for the head's _GATES words. Built on the second body, like the screens.
    """
    global _SWEEP, _SWEEP_USES, _HEADER_SWEEP
    if _SWEEP is None:
        _SWEEP_USES += 1
        if _SWEEP_USES < 2:
            return None
        table = load_formats()
        # A format without markers (or From, or Subject patterns) is left out: none can match.
        _HEADER_SWEEP = (
            *_literals((i, fmt.from_screen.needles) for i, fmt in enumerate(table) if fmt.from_),
            *_literals((i, fmt.subject_screen.needles) for i, fmt in enumerate(table) if fmt.subject))
        branches = [(i, pattern, found) for i, fmt in enumerate(table)
                    for pattern, found in fmt.marker_screen.branches()]
        markers = tuple((i, pattern, starts(pattern)) for i, pattern, _ in branches)
        _SWEEP = (markers, _literals((n, found) for n, (_, _, found) in enumerate(branches)), {})
    return _SWEEP


# The same for the From and Subject patterns: (From owners, literals, Subject owners, literals).
_HEADER_SWEEP: tuple[tuple[int, ...], tuple[str, ...], tuple[int, ...], tuple[str, ...]] | None = None


def _literals(numbered: Iterable[tuple[int, Needles]]) -> tuple[tuple[int, ...], tuple[str, ...]]:
    """Numbered needles (a screen's, or a pattern's) in order, each with its number; where
    there are none known, the empty needle, which every text holds."""
    owners: list[int] = []
    literals: list[str] = []
    for i, found in numbered:
        for literal in found if found is not None else ("",):
            owners.append(i)
            literals.append(literal)
    return tuple(owners), tuple(literals)


def _first_by_markers(body: str) -> int:
    """Index of the first format whose markers are in the body (len(table) if none)."""
    global _LAST_BODY
    last = _LAST_BODY
    if last is not None and last[0] == body:
        return last[1]
    table = load_formats()
    head = body[:_MARKER_HEAD]
    low = lowered_once(head)
    sweep = _sweep() if low is not None else None
    if sweep is None or low is None:
        first = next((i for i, fmt in enumerate(table) if fmt.marker_screen.search(head, low)), len(table))
    else:
        markers, _, plans = sweep
        key = tuple(map(low.__contains__, _GATES))
        owners, literals = plans.get(key) or _plan(sweep, key)
        first = len(table)
        tried = -1
        # Marker patterns in table order, each as often as the head holds one of its needles.
        for n in compress(owners, map(low.__contains__, literals)):
            if n != tried:
                tried = n
                i, pattern, start = markers[n]
                if first_match(pattern, head, low, start):
                    first = i
                    break
    if len(body) <= _CACHE_LIMIT:
        _LAST_BODY = (body, first)
    return first


_LAST_CUT: tuple[str, Format | None, int] | None = None  # readers cut the same body twice


def cut_returned_message(body: str, fmt: Format | None) -> str:
    """The report part of a body, without the copy of the returned message that follows it."""
    global _LAST_CUT
    last = _LAST_CUT
    if last is not None and last[1] is fmt and last[0] == body:
        return body[:last[2]]
    cut = _cut(body, fmt)
    if len(body) <= _CACHE_LIMIT:
        _LAST_CUT = (body, fmt, cut)
    return body[:cut]


def _cut(body: str, fmt: Format | None) -> int:
    cut = len(body)
    low = lowered_once(body)
    generic = _GENERIC_END_UNCOPIED if low is not None and _COPY not in low else _GENERIC_END_NEEDLES
    ends = zip((*(fmt.end if fmt else ()), *GENERIC_END),
               (*(fmt.end_needles if fmt else ()), *generic),
               (*(fmt.end_starts if fmt else ()), *_GENERIC_END_STARTS),
               (*(fmt.end_lines if fmt else ()), *_GENERIC_END_LINES), strict=True)
    for pattern, found, start, line in ends:
        if not may_match(found, low):
            continue
        if line is not None and low is not None:
            match = at_line_start(pattern, body, low, line, cut)
        else:
            match = first_match(pattern, body, low, start)
        if match and match.start() < cut:
            cut = match.start()
    return cut

"""Cheap "can this regex match here?" checks from the literal text every match must contain.

The knowledge is a few hundred case-insensitive regexes run over every diagnostic and body;
most of them name a provider's own words ("AS16012607", "TSS04", "Amazon SES") that are absent
from almost every text. `needles(pattern)` derives from the regex itself a set of lower-case
literals at least one of which any match must contain; substring tests on the lowered text then
say which regexes need to run at all. The answer is never wrong in the "no" direction: a pattern
whose literals cannot be derived gets no needles and always runs. `Screen` and `Candidates` do
this for one pattern (split into its alternatives) and for an ordered list of them; both derive
their needles on their second use, so a process that reads one bounce pays nothing for them.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable
from typing import Any

try:  # the parser behind re.compile; private, so any surprise just disables the prefilter
    from re import _constants as _c  # type: ignore[attr-defined]
    from re import _parser as _p  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - other Python implementations
    _p = _c = None

# Non-ASCII characters that re.IGNORECASE matches to an ASCII letter although str.lower() maps
# them elsewhere (U+0130 İ, U+0131 ı, U+017F ſ, U+212A Kelvin sign). A text holding one of them is
# not prefiltered. tests/test_prefilter.py recomputes this set over all of Unicode.
CASE_TRAPS = frozenset("\u0130\u0131\u017f\u212a")
_MIN_NEEDLE = 3  # shorter literals ("no", "ip") are in nearly every text: not worth testing

Needles = tuple[str, ...] | None


def needles(pattern: re.Pattern[str], shortest: int = _MIN_NEEDLE) -> Needles:
    """Lower-case literals of which every match contains one, or None when unknown (or when
    one of them would be shorter than `shortest`)."""
    if _p is None or not pattern.flags & re.IGNORECASE:
        return None  # only case-insensitive patterns are prefiltered: their texts are lowered
    try:
        parsed = _p.parse(pattern.pattern, pattern.flags)
        found = _required(list(parsed))
    except (AttributeError, TypeError, ValueError, IndexError, re.error):
        return None
    if not found or min(len(n) for n in found) < shortest:
        return None
    # A needle's leading spaces go (when enough is left): what follows them is in every match
    # too, and space, the commonest character of mail text, would otherwise be a position the
    # needle sweep (Scanner) tries at almost every word.
    found = [n.lstrip(" ") if len(n.lstrip(" ")) >= shortest else n for n in found]
    unique = sorted(set(found), key=len)
    # A needle holding a shorter one adds nothing: "banned" already covers "banned sending ip".
    kept: list[str] = []
    for needle in unique:
        if not any(k in needle for k in kept):
            kept.append(needle)
    return tuple(kept)


def ascii_needles(pattern: re.Pattern[str], shortest: int = _MIN_NEEDLE) -> Needles:
    r"""Lower-case literals one of which every match holds when the text is ASCII, or None.

    For a case-insensitive pattern whose own literals are too short but are followed by a small
    class: `\b(?:BL|ES|RL)\d{6}\b` gives "bl0" ... "rl9" (needles() gives none). They are the
    match's first `shortest` characters: in an ASCII text \d matches only 0-9 and a letter only
    its two ASCII cases, which lower() makes one, so the lowered text holds one of them where
    the match starts. In any other text they prove nothing: the caller runs the pattern there.
    """
    if _p is None or not pattern.flags & re.IGNORECASE:
        return None
    try:
        heads = _heads(list(_p.parse(pattern.pattern, pattern.flags)), shortest)
    except (AttributeError, TypeError, ValueError, IndexError, re.error):
        return None
    if not heads or min(len(h) for h in heads) < shortest:
        return None  # some match (in an ASCII text) is shorter, or its start is not known
    return tuple(sorted(heads))


_MAX_HEADS = 64  # more possible starts than this are not worth their needles
_DIGITS = frozenset("0123456789")


def _heads(items: list[tuple[Any, Any]], size: int) -> set[str] | None:
    """For a sequence of parsed items: every match's first `size` characters (the whole match
    if shorter), lowered, in an ASCII text; None when unknown or too many. The first characters
    of a sequence are those of its first item's match followed by those of the rest's."""
    found = {""}
    for op, av in items:
        if all(len(h) >= size for h in found):
            break
        need = size - min(len(h) for h in found)
        part = _item_heads(op, av, need)
        if part is None:
            return None
        found = {h if len(h) >= size else (h + p)[:size] for h in found for p in part}
        if len(found) > _MAX_HEADS:
            return None
    return found


def _item_heads(op: Any, av: Any, size: int) -> set[str] | None:
    """_heads for one item: a literal, a class of few ASCII characters, a zero-width item, a
    group, a choice of alternatives or a repeat of one of these; None for any other."""
    if op is _c.AT or op is _c.ASSERT or op is _c.ASSERT_NOT:
        return {""}  # zero-width: the match's characters are those of the items around it
    if op is _c.LITERAL:
        return {chr(av).lower()} if av < 128 else None
    if op is _c.IN:
        chars: set[str] = set()
        for kind, value in av:
            if kind is _c.LITERAL and value < 128:
                chars.add(chr(value).lower())
            elif kind is _c.LITERAL and chr(value) not in CASE_TRAPS:
                continue  # a non-ASCII character that matches no ASCII one: never in the text
            elif kind is _c.RANGE and value[1] < 128 and value[1] - value[0] < 16:
                chars.update(chr(c).lower() for c in range(value[0], value[1] + 1))
            elif kind is _c.CATEGORY and value is _c.CATEGORY_DIGIT:
                chars.update(_DIGITS)  # \d: only 0-9 in an ASCII text
            else:  # a wide range, a trap, a negation, another category: too many characters
                return None
        return chars or None
    if op is _c.SUBPATTERN:
        _group, add_flags, del_flags, sub = av
        return None if (add_flags | del_flags) & re.IGNORECASE else _heads(list(sub), size)
    if op is _c.BRANCH:
        union: set[str] = set()
        for branch in av[1]:
            part = _heads(list(branch), size)
            if part is None:
                return None
            union |= part
        return union if len(union) <= _MAX_HEADS else None
    if op in (_c.MAX_REPEAT, _c.MIN_REPEAT, getattr(_c, "POSSESSIVE_REPEAT", None)):
        low, high, sub = av
        if low == 0:
            if high != 1:
                return None
            once = _heads(list(sub), size)  # optional: nothing, or the item once
            return None if once is None else once | {""}
        # Repeated `low` times at least: the first characters of that many bodies (of `size` of
        # them at most: each adds one character or more), every match's when they fill `size`.
        copies = min(low, size)
        found = _heads(list(sub) * copies, size)
        if found is None or (any(len(h) < size for h in found) and (high != low or low > copies)):
            return None  # more bodies could follow those counted: their characters are unknown
        return found
    return None


def starts(pattern: re.Pattern[str]) -> Needles:
    """Lower-case literals one of which every match starts with (at the match's first
    character), or None when unknown.

    `first_match` uses them to run the regex only where a match can begin: the regex engine
    cannot skip ahead to a case-insensitive literal itself and tries every position in turn.
    """
    if _p is None or not pattern.flags & re.IGNORECASE:
        return None
    try:
        found = _leading(list(_p.parse(pattern.pattern, pattern.flags)))
    except (AttributeError, TypeError, ValueError, IndexError, re.error):
        return None
    return tuple(dict.fromkeys(found)) if found else None


def _leading(items: list[tuple[Any, Any]]) -> list[str] | None:
    """For a sequence of parsed items: literals one of which every match of it starts with."""
    run: list[str] = []
    for op, av in items:
        if op is _c.AT or op is _c.ASSERT or op is _c.ASSERT_NOT:
            continue  # zero-width (^, \b, look-arounds): the match's characters stay as they are
        if op is _c.LITERAL and _uncased_or_ascii(av):
            run.append(chr(av).lower())
            continue
        if run:
            break
        return _inside(op, av, _leading)
    return ["".join(run)] if run else None


def _uncased_or_ascii(code: int) -> bool:
    """An ASCII character (lowered() keeps the texts that could fool its case-insensitive
    match out) or one without case, which a case-insensitive regex matches only as itself."""
    char = chr(code)
    return code < 128 or char.lower() == char == char.upper()


_MAX_TRIES = 4  # start positions tried one by one; past them the regex searches on by itself


def first_match(pattern: re.Pattern[str], text: str, low: str | None, found: Needles,
                start: int = 0) -> re.Match[str] | None:
    """pattern.search(text, start), with `found` = starts(pattern) and `low` = lowered(text).

    The match search() finds is the one at the first position (from `start` on) where the regex
    matches; every match starts where `low` holds one of the literals, and `low` has the text's
    offsets (lowered() gives None for the one character lower() lengthens). So matching at those
    positions in order finds the same match; look-behinds and ^ still see the text before each
    position.
    """
    if found is None or low is None:
        return pattern.search(text, start)
    find = low.find
    at = start - 1
    for tries in range(_MAX_TRIES + 1):
        pos = -1
        for literal in found:
            # Once a start is known, only one before it matters.
            hit = find(literal, at + 1) if pos == -1 else find(literal, at + 1, pos + len(literal) - 1)
            if hit != -1:
                pos = hit
        if pos == -1:
            return None
        if tries == _MAX_TRIES:
            return pattern.search(text, pos)
        match = pattern.match(text, pos)
        if match is not None:
            return match
        at = pos
    return None  # pragma: no cover - the loop returns on its last round


def line_starts(pattern: re.Pattern[str]) -> Needles:
    """starts(pattern) when every match of it also starts at a line start (a MULTILINE pattern
    whose top level opens with ^); None otherwise."""
    if _p is None or not pattern.flags & re.MULTILINE:
        return None
    try:
        items = list(_p.parse(pattern.pattern, pattern.flags))
    except (AttributeError, TypeError, ValueError, IndexError, re.error):
        return None
    if not items or items[0] != (_c.AT, _c.AT_BEGINNING):
        return None
    return starts(pattern)


def at_line_start(pattern: re.Pattern[str], text: str, low: str, found: tuple[str, ...],
                   before: int) -> re.Match[str] | None:
    """pattern.search(text), or None in place of a match that starts after `before`; `found`
    is line_starts(pattern) and `low` is lowered(text).

    Every match starts at a line start (position 0 or after a newline) where `low`, which has
    the text's offsets, holds one of the literals: matching at those positions in order finds
    the match search() finds, as ^ sees the same newline there. Only they are tried, not every
    position of the text from the first literal on.
    """
    positions = set()
    for literal in found:
        if low.startswith(literal):
            positions.add(0)
        needle = "\n" + literal
        at = low.find(needle, 0, before + len(literal))
        while at != -1:
            positions.add(at + 1)
            at = low.find(needle, at + 1, before + len(literal))
    for pos in sorted(positions):
        match = pattern.match(text, pos)
        if match is not None:
            return match
    return None


class Screen:
    """Whether any of some regexes matches a text, running only those that can.

    Each pattern (with `split`, each top-level alternative of it: `A|B|C` matches exactly when
    one of A, B, C does) gets its own needles, so a text runs only the few whose literals it
    holds. The needles are derived on the second use, not at load: a one-shot `diagnose` of a
    single file runs the plain regexes and pays nothing for the prefilter.
    """

    __slots__ = ("_ascii", "_each", "_needles", "_runs", "_sources", "_split", "_uses")

    def __init__(self, patterns: tuple[re.Pattern[str], ...], split: bool = False) -> None:
        self._sources = patterns
        self._split = split
        self._uses = 0
        self._needles: Needles = None
        self._ascii: Needles = None
        self._each: tuple[tuple[re.Pattern[str], Needles], ...] | None = None
        self._runs: tuple[tuple[re.Pattern[str], Needles, Needles], ...] = ()  # and their starts

    def _build(self) -> tuple[tuple[re.Pattern[str], Needles], ...]:
        patterns: list[re.Pattern[str]] = []
        for pattern in self._sources:
            patterns += _branches(pattern) if self._split else [pattern]
        each = tuple((p, needles(p)) for p in patterns)
        self._needles = union(tuple(n for _, n in each))
        self._ascii = union(tuple(n if n is not None else ascii_needles(p) for p, n in each))
        self._runs = tuple((p, found, starts(p)) for p, found in each)
        self._each = each  # last: a reader that sees _each also sees _needles and _runs
        return each

    def branches(self) -> tuple[tuple[re.Pattern[str], Needles], ...]:
        """The patterns (or their alternatives) this screen runs, each with its needles."""
        return self._each if self._each is not None else self._build()

    @property
    def needles(self) -> Needles:
        """Literals of which any match of any pattern holds one (None: no such set)."""
        if self._each is None:
            self._build()
        return self._needles

    @property
    def ascii_needles(self) -> Needles:
        """The same, for an ASCII text: each pattern's needles, or its ascii_needles where it has
        none (None: no such set)."""
        if self._each is None:
            self._build()
        return self._ascii

    def search(self, text: str, low: str | None) -> bool:
        """A pattern matches `text`; `low` is prefilter.lowered(text)."""
        each = self._each
        if each is None:
            self._uses += 1
            if self._uses < 2:
                return any(p.search(text) is not None for p in self._sources)
            each = self._build()
        if low is None:
            return any(p.search(text) is not None for p, _ in each)
        found = self._needles
        if found is not None and not any(map(low.__contains__, found)):
            return False
        for pattern, found, start in self._runs:
            if found is not None and not any(map(low.__contains__, found)):
                continue
            if first_match(pattern, text, low, start):
                return True
        return False


class Candidates:
    """Which of an ordered list of screens may match a text, found in one sweep of its needles.

    Rather than asking each rule in turn, the text is swept once for every rule's needles (in
    C, with `filter`), and only the rules one of whose needles it holds, or that have none, are
    returned, in their order. A screen with needles for ASCII texts only (Screen.ascii_needles)
    is found by those in an ASCII text and returned for every other text. Built on the second
    use, like Screen.
    """

    __slots__ = ("_always", "_ascii_only", "_finder", "_index", "_keys", "_scanner", "_screens", "_uses")

    def __init__(self, screens: tuple[Screen, ...], scanner: Scanner | None = None) -> None:
        self._screens = screens
        self._scanner = scanner
        self._uses = 0
        self._always: tuple[int, ...] = ()
        self._ascii_only: tuple[int, ...] = ()
        self._keys: tuple[str, ...] = ()
        self._finder: Finder | None = None
        self._index: dict[str, tuple[int, ...]] | None = None

    def _build(self) -> dict[str, tuple[int, ...]]:
        if self._index is not None:
            return self._index
        always: list[int] = []
        ascii_only: list[int] = []
        index: dict[str, list[int]] = {}
        for i, screen in enumerate(self._screens):
            found = screen.needles
            if found is None:
                found = screen.ascii_needles
                (always if found is None else ascii_only).append(i)
            for needle in found or ():
                index.setdefault(needle, []).append(i)
        self._always = tuple(always)
        self._ascii_only = tuple(ascii_only)
        self._keys = tuple(index)
        self._finder = Finder(index, self._scanner)
        frozen = {k: tuple(v) for k, v in index.items()}
        self._index = frozen  # last: a reader that sees _index also sees _always and _keys
        return frozen

    def of(self, low: str | None) -> list[int] | range:
        """Indices, in order, of the screens that may match the text `low` was lowered from."""
        index = self._index
        if index is None:
            self._uses += 1
            if self._uses < 2:
                return range(len(self._screens))
            index = self._build()
        if low is None:
            return range(len(self._screens))
        finder = self._finder
        assert finder is not None
        hits = finder.find(low)  # a new set, the caller's own
        if self._always:
            hits.update(self._always)
        if self._ascii_only and not low.isascii():  # (lowered() keeps the case traps out)
            hits.update(self._ascii_only)
        return sorted(hits)


class Finder:
    """Which of many literals a text holds, in one scan of the text rather than one per literal.

    The literals become one regex shaped like their trie (`block(?:ed(?: using)?|list)?`), so
    at each position the engine follows one path and stops at the first letter no literal
    continues with. A match is the longest literal starting there; every other literal starting
    there is a prefix of it, so each match stands for a precomputed set of literals. Searching
    again from the next position (not the match's end) finds literals that overlap. Finders
    that ask about the same texts can share a Scanner: one scan then serves them all.
    """

    __slots__ = ("_scanner", "_values")

    def __init__(self, values: dict[str, list[int]], scanner: Scanner | None = None) -> None:
        self._values = {key: frozenset(found) for key, found in values.items()}
        self._scanner = scanner if scanner is not None else Scanner()
        self._scanner.add(self._values)

    def find(self, low: str) -> set[int]:
        """The values of every literal in `low` (a lower-cased text)."""
        found: set[int] = set()
        values = self._values
        for literal in self._scanner.literals(low):
            hit = values.get(literal)
            if hit is not None:
                found |= hit
        return found


class Scanner:
    """The literals of one or more Finders, found in a text with one scan of its trie regex.

    The trie is compiled when first needed after literals were added; `prepare`, if given, is
    called once before that first compilation so the owner can add every Finder it will have
    at once (one compilation, not one per Finder). The last few texts' answers are kept: the
    rules, the phrases and the providers' markers all ask about one diagnostic in a row.

    The literals make two tries, split by their first character: those starting with one of the
    most common characters of mail text (`_COMMON_FIRST`) and the others. At each position the
    regex engine tries a trie's top-level alternatives one after another, so a position now
    tries only the alternatives of its own character's trie (about 10 or 30, not 40). Every
    literal starting at a position starts with that position's character, so they are all in
    one trie and that trie's longest match there stands for them as before.
    """

    def __init__(self, prepare: Callable[[], None] | None = None) -> None:
        self._prepare = prepare
        # Replaced by a new set whenever literals are added, never changed in place.
        self._keys: frozenset[str] = frozenset()
        self._adding = threading.Lock()
        # (the literals it was built for, each trie's search, the literals each longest match
        # stands for).
        # A state built for other literals than the current ones (another thread added some
        # meanwhile) is out of date and built again, so no Finder misses its own literals.
        self._state: tuple[frozenset[str], tuple[Any, ...], dict[str, tuple[str, ...]]] | None = None
        self._recent: dict[str, tuple[str, ...]] = {}

    def add(self, literals: Iterable[str]) -> None:
        with self._adding:  # two Finders added at once must not drop each other's literals
            new = set(literals) - self._keys
            if new:
                self._keys = self._keys | new

    def _build(self) -> tuple[frozenset[str], tuple[Any, ...], dict[str, tuple[str, ...]]]:
        prepare, self._prepare = self._prepare, None
        if prepare is not None:
            prepare()
        keys = self._keys
        prefixes = {key: tuple(key[:end] for end in range(1, len(key) + 1) if key[:end] in keys)
                    for key in keys}
        common = {key for key in keys if key[:1] in _COMMON_FIRST}
        searches = tuple(re.compile(_trie_pattern(part)).search for part in (common, keys - common) if part)
        state = (keys, searches, prefixes)
        self._recent = {}
        self._state = state
        return state

    def literals(self, low: str) -> tuple[str, ...]:
        """Every literal added that `low` (a lower-cased text) holds, each once."""
        state = self._state
        if state is None or state[0] is not self._keys:
            state = self._build()
        recent = self._recent
        known = recent.get(low)
        if known is not None:
            return known
        _, searches, prefixes = state
        found: set[str] = set()
        for search in searches:
            pos = 0
            while True:
                match = search(low, pos)
                if match is None:
                    break
                found.update(prefixes[match.group()])
                pos = match.start() + 1
        answer = tuple(found)
        if self._state is state and len(low) < 4096:
            if len(recent) >= 8:
                recent.clear()
            recent[low] = answer
        return answer


# The characters that most often start a position of a diagnostic (space, then English text's
# most frequent letters): literals starting with one get a trie of their own (see Scanner).
_COMMON_FIRST = frozenset(" etoainsrl")


def _trie_pattern(words: Iterable[str]) -> str:
    trie: dict[str, Any] = {}
    for word in words:
        node = trie
        for char in word:
            node = node.setdefault(char, {})
        node[""] = {}  # a literal ends here

    def pattern(node: dict[str, Any]) -> str:
        branches = [re.escape(char) + pattern(child) for char, child in sorted(node.items()) if char]
        if not branches:
            return ""
        body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
        return f"(?:{body})?" if "" in node else body

    return pattern(trie)


def _branches(pattern: re.Pattern[str]) -> list[re.Pattern[str]]:
    parts = _top_level_alternatives(pattern.pattern)
    if len(parts) < 2:
        return [pattern]
    try:
        return [re.compile(part, pattern.flags) for part in parts]
    except re.error:
        return [pattern]


def _top_level_alternatives(source: str) -> list[str]:
    """`a|b(c|d)|[|]` -> ["a", "b(c|d)", "[|]"]; one item when splitting could change the meaning."""
    if re.search(r"\\[1-9]|\(\?P=|\(\?[aiLmsux]+\)", source):
        return [source]  # back-references or global inline flags tie the alternatives together
    parts: list[str] = []
    depth = 0
    in_class = False
    start = 0
    i = 0
    while i < len(source):
        c = source[i]
        if c == "\\":
            i += 2
            continue
        if in_class:
            if c == "]" and source[i - 1] != "[" and source[i - 2 : i] != "[^":
                in_class = False
        elif c == "[":
            in_class = True
        elif c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
        elif c == "|" and depth == 0:
            parts.append(source[start:i])
            start = i + 1
        i += 1
    parts.append(source[start:])
    return parts


def union(found: tuple[Needles, ...]) -> Needles:
    """Needles for "one of these patterns matches": None if any of them has none."""
    if not found or any(n is None for n in found):
        return None
    return tuple(dict.fromkeys(n for group in found for n in group or ()))


def lowered(text: str) -> str | None:
    """The text to give `may_match`: lower-cased, or None when it must not be prefiltered."""
    if not text.isascii() and any(map(text.__contains__, CASE_TRAPS)):  # 4 scans in C, not a set walk
        return None
    return text.lower()


def may_match(found: Needles, low: str | None) -> bool:
    """False only when the pattern cannot match the text `low` was lowered from."""
    if found is None or low is None:
        return True
    return any(map(low.__contains__, found))  # map over a C method: no generator frame per needle


def _required(items: list[tuple[Any, Any]]) -> list[str] | None:
    """For a sequence of parsed items: the most selective required literal set, or None."""
    candidates: list[list[str]] = []
    run: list[str] = []

    def close_run() -> None:
        if run:
            candidates.append(["".join(run)])
            run.clear()

    for at, (op, av) in enumerate(items):
        if op is _c.LITERAL and av < 128:
            run.append(chr(av).lower())
        elif op is _c.AT:
            continue  # zero-width (^, $, \b): the literals around it stay adjacent in a match
        else:
            if 0 < len(run) < _MIN_NEEDLE:
                # Too short alone, the run is followed at once by the match of the items from
                # here on, which starts with one of their leading literals: "[" before
                # (?:TSS\d\d|PH\d\d) gives "[tss" and "[ph", where "[" or "ph" are too short.
                lead = _leading(items[at:])
                if lead:
                    candidates.append(["".join(run) + literal for literal in lead])
            close_run()
            inner = _node(op, av)
            if inner:
                candidates.append(inner)
    close_run()
    if not candidates:
        return None
    return max(candidates, key=lambda alts: (min(len(a) for a in alts), -len(alts)))


def _node(op: Any, av: Any) -> list[str] | None:
    return _inside(op, av, _required)


def _inside(op: Any, av: Any, walk: Callable[[list[tuple[Any, Any]]], list[str] | None]) -> list[str] | None:
    """`walk`'s literals for a group, a choice of alternatives or a repeat, None for any other
    item: a group's are its content's; a choice's, all its alternatives' (None if one has none);
    a repeat's, its body's when the body occurs at least once."""
    if op is _c.SUBPATTERN:
        _group, add_flags, del_flags, sub = av
        return None if (add_flags | del_flags) & re.IGNORECASE else walk(list(sub))
    if op is _c.BRANCH:
        alternatives: list[str] = []
        for branch in av[1]:
            found = walk(list(branch))
            if not found:
                return None
            alternatives += found
        return alternatives
    if op in (_c.MAX_REPEAT, _c.MIN_REPEAT, getattr(_c, "POSSESSIVE_REPEAT", None)):
        low, _high, sub = av
        return walk(list(sub)) if low >= 1 else None
    return None


_Started = tuple[re.Pattern[str], Needles]  # a pattern and its starts


class Grouped:
    """Whether a text matches any screen of a group, for many groups asked about one text.

    Asked group after group about the same text (the generic phrases of each reason, about one
    diagnostic), it finds once which alternatives of all the groups' screens the text may match
    (one Finder scan) and then runs only those, remembering each group's answer for that text.
    `groups` tells which groups may match at all, from the same scan. Built on the second text,
    like Screen.
    """

    __slots__ = ("_always", "_answers", "_finder", "_groups", "_last", "_owners", "_scanner", "_seen",
                 "_texts")

    def __init__(self, groups: dict[Any, tuple[Screen, ...]], scanner: Scanner | None = None) -> None:
        self._groups = groups
        self._scanner = scanner
        self._texts = [0, 0]
        self._seen: list[str | None] = [None, None]
        self._finder: Finder | None = None
        # alternative number -> (group, pattern, its starts)
        self._owners: list[tuple[Any, re.Pattern[str], Needles]] = []
        self._always: frozenset[int] = frozenset()
        # (lowered text, the alternatives it may match by group with their starts, those groups):
        # replaced whole when the text changes, so concurrent callers at worst work it out twice.
        # What may match depends on the lowered text alone; the answers, on the text itself.
        self._last: tuple[str, dict[Any, list[_Started]], frozenset[Any]] | None = None
        self._answers: tuple[str, dict[Any, bool]] | None = None  # (text, answers so far)

    def _build(self) -> Finder:
        if self._finder is not None:
            return self._finder
        index: dict[str, list[int]] = {}
        always: set[int] = set()
        owners: list[tuple[Any, re.Pattern[str], Needles]] = []
        for group, screens in self._groups.items():
            for screen in screens:
                for pattern, found in screen.branches():
                    number = len(owners)
                    owners.append((group, pattern, starts(pattern)))
                    if found is None:
                        always.add(number)
                    else:
                        for needle in found:
                            index.setdefault(needle, []).append(number)
        self._owners = owners
        self._always = frozenset(always)
        finder = Finder(index, self._scanner)
        self._finder = finder  # last: a reader that sees _finder also sees the rest
        return finder

    def _second(self, text: str | None, slot: int) -> Finder | None:
        """The index, built once a second text is asked about; else None. Texts (slot 0, `says`)
        and lowered texts (slot 1, `groups`) are counted apart: one diagnostic is asked about
        as both, and a process that reads one bounce should not build the index."""
        if self._seen[slot] is not text:
            self._seen[slot] = text
            self._texts[slot] += 1
        return self._build() if self._texts[slot] >= 2 else None

    def _possible(self, finder: Finder, low: str) -> tuple[str, dict[Any, list[_Started]], frozenset[Any]]:
        """The alternatives `low` may match, by group in the screens' order, and those groups."""
        last = self._last
        if last is None or last[0] is not low:
            possible: dict[Any, list[_Started]] = {}
            owners = self._owners
            for number in sorted(finder.find(low) | self._always):
                owner, pattern, start = owners[number]
                possible.setdefault(owner, []).append((pattern, start))
            last = (low, possible, frozenset(possible))
            self._last = last
        return last

    def groups(self, low: str | None) -> frozenset[Any] | None:
        """The groups a screen of which may match the text `low` (prefilter.lowered) was lowered
        from: one of an alternative's needles is in it, or an alternative has none. `says` is
        False for every other group. None when any group may (not built yet, or `low` is None)."""
        finder = self._finder if self._finder is not None else self._second(low, 1)
        if finder is None or low is None:
            return None
        return self._possible(finder, low)[2]

    def says(self, group: Any, text: str, low: str | None) -> bool:
        """A screen of `group` matches `text`; `low` is prefilter.lowered(text)."""
        finder = self._finder if self._finder is not None else self._second(text, 0)
        if finder is None or low is None:
            return any(screen.search(text, low) for screen in self._groups.get(group, ()))
        kept = self._answers
        if kept is None or kept[0] is not text:
            kept = (text, {})
            self._answers = kept
        answers = kept[1]
        answer = answers.get(group)
        if answer is None:
            # any(...) over the group's alternatives, as a loop: no generator made per question
            answer = False
            for pattern, start in self._possible(finder, low)[1].get(group, ()):
                if first_match(pattern, text, low, start) is not None:
                    answer = True
                    break
            answers[group] = answer
        return answer

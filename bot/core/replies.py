"""Provider replies: what a pasted or forwarded answer to a delist request says. Pure.

Recognises an acknowledgement (and captures the provider's ticket id: SRX…ID, "Microsoft Request
ID", SBL…, case numbers), a resolution, a refusal, an escalation, or a verification mail (a link
the operator must click). Each provider's own markers come from `bot/data/providers.toml`
([provider.replies]); the generic markers below (providers.md PART C) only speak when no
provider marker decided. Text that fits no kind, or fits two outcomes at once, is UNKNOWN: the
caller keeps it as a note and never guesses a state from it.

Traps the seed's own auto-reply sets: "the IP address that you have requested to be removed from
our blocklist" (a resolution phrase, hedged) and "If for any reason we are not able to remove your
IP address…" (a refusal phrase inside a conditional); a forwarded reply also quotes our own
request. Outcome phrases that are hedged, conditional or quoted are not counted.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from bot.core.knowledge import ReplyMarkers


class ReplyKind(StrEnum):
    ACK = "acknowledged"
    RESOLVED = "delisted"
    REFUSED = "refused"
    ESCALATED = "escalated"
    VERIFICATION = "verification"
    UNKNOWN = "unknown"


OUTCOMES = (ReplyKind.RESOLVED, ReplyKind.REFUSED, ReplyKind.ESCALATED)
# A provider's answer is a page or two; a forwarded thread a few dozen. Past this many characters
# a paste is a mistake (a mailbox export, a log): only its head is read and kept.
REPLY_LIMIT = 100_000


def _compile(*patterns: str) -> tuple[re.Pattern[str], ...]:
    return tuple(re.compile(p, re.IGNORECASE) for p in patterns)


# providers.md PART C, "general ticket-id regexes to try"; group 1 (or the match) is the id.
GENERIC_TICKET_IDS = _compile(
    r"\b(SRX\d{8,12}ID)\b",
    r"Microsoft Request ID:\s*(\d{8,12})",
    r"\b(SBL\d{4,7})\b",
    r"\bCase\s*(?:number|no\.?|id)?\s*[#:]?\s*(\d{6,10})\b",
    r"(\[ref:[^\]\s]+\])",
    r"(?<![\w#&])(#\d{6,})\b",
)

# PART C's keyword row for providers without documented templates, tightened to phrases so
# that "unable" or "review" in small talk does not decide anything.
GENERIC = ReplyMarkers(
    ack=_compile(
        r"\b(?:have |has )?received your (?:request|ticket|message|e-?mail|submission)\b",
        r"\bticket (?:has been |was )?(?:created|opened|logged)\b",
        r"\bwill be (?:reviewed|investigated|responded to)\b",
        r"\bwe will (?:review|investigate|look into)\b",
        r"\b(?:is|are) (?:now )?under review\b",
        r"\bour team will investigate\b",
        r"\b(?:case|ticket|request)\b[^.]{0,30}\b(?:has been|was) "
        r"(?:created|opened|logged|received|submitted)\b",
        r"\b(?:an? |our )?(?:engineer|analyst|agent|representative|specialist|support team|team member)s? "
        r"will (?:investigate|review|look into|contact you|respond|reply|get back)",
        r"\b(?:aim|expect|try) to (?:respond|reply|get back to you)\b",
        r"\bwill (?:respond|reply|get back to you)(?: to you)? within\b",
    ),
    resolved=_compile(
        r"\b(?:has|have|had) been (?:removed|delisted|unblocked|lifted|mitigated)\b",
        r"\bremoved from (?:our|the) (?:block ?lists?|lists?|database)\b",
        r"\b(?:listing|block) (?:has been |was )?(?:removed|lifted)\b",
        r"\bno longer (?:listed|blocked)\b",
    ),
    refused=_compile(
        r"\b(?:unable|not able) to (?:remove|delist|unblock|mitigate|lift)\b",
        r"\bnot qualif(?:y|ied) for\b",
        r"\b(?:declined|denied|rejected) (?:your|the|this) (?:request|removal|delisting)\b",
        r"\bcannot (?:be )?(?:remove|delist|unblock)(?:ed)?\b",
        r"\bwill not be (?:removed|delisted|unblocked)\b",
    ),
    escalated=_compile(
        r"\bescalated (?:your|the|this) (?:ticket|case|request)\b",
        r"\b(?:has|have) been escalated\b",
    ),
    verification=_compile(
        r"\bclick (?:on )?the (?:link|button)\b[^.]*\b(?:confirm|verify|complete|delist)",
        r"\bconfirm your (?:e-?mail|request|address|delist)",
        r"\bverification (?:link|code)\b",
    ),
)

_CONDITIONAL = re.compile(
    r"\b(?:if|unless|should (?:we|you|the)|in case|in the event|whether|as long as)\b",
    re.IGNORECASE,
)
# "…requested to be removed from our blocklist", "will be delisted": not done yet.
_HEDGED = re.compile(
    r"\b(?:to|will|would|may|might|can|could|shall|must)(?:\s+not)?(?:\s+be)?\s+$", re.IGNORECASE
)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n\s*\n")
_QUOTE_START = re.compile(
    r"^(?:-{2,}\s*(?:Original Message|Forwarded message)\s*-{2,}|On .{4,120} wrote:)\s*$",
    re.IGNORECASE | re.MULTILINE,
)
_IPV4 = re.compile(r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d.]*\d)")
_IPV6 = re.compile(r"(?<![\w:])(?:[0-9a-f]{0,4}:){2,7}[0-9a-f]{0,4}(?![\w:])", re.IGNORECASE)


@dataclass(frozen=True)
class Reply:
    """What a reply says. `providers` lists whose markers matched (empty: generic or none)."""

    kind: ReplyKind
    ticket_ids: tuple[str, ...] = ()
    ips: tuple[str, ...] = ()
    providers: tuple[str, ...] = ()
    matched: tuple[str, ...] = ()  # the phrases that decided, for the log and the user
    why: str = ""  # for UNKNOWN: why nothing was decided

    @property
    def recognised(self) -> bool:
        return self.kind is not ReplyKind.UNKNOWN


def clip(text: str, limit: int = REPLY_LIMIT) -> tuple[str, int]:
    """The first `limit` characters of a pasted reply, and how many characters were left out."""
    return (text, 0) if len(text) <= limit else (text[:limit], len(text) - limit)


def own_text(text: str) -> str:
    """The reply without what it quotes: lines starting with '>' and everything after an
    'Original Message' / 'On … wrote:' separator, unless nothing would be left."""
    head = _QUOTE_START.split(text, maxsplit=1)[0]
    kept = "\n".join(line for line in head.splitlines() if not line.lstrip().startswith(">"))
    return kept if kept.strip() else text


def sentences(text: str) -> list[str]:
    """Sentences with their line wraps undone (mail bodies wrap mid-phrase)."""
    return [" ".join(s.split()) for s in _SENTENCE_END.split(text) if s.strip()]


def _asserted(pattern: re.Pattern[str], parts: Iterable[str]) -> str | None:
    """The first match of `pattern` that is asserted: not in a conditional clause, not hedged."""
    for sentence in parts:
        for match in pattern.finditer(sentence):
            before = sentence[: match.start()]
            if not _CONDITIONAL.search(before) and not _HEDGED.search(before):
                return match.group(0)
    return None


def _first(pattern: re.Pattern[str], parts: Iterable[str]) -> str | None:
    for sentence in parts:
        match = pattern.search(sentence)
        if match:
            return match.group(0)
    return None


def id_key(ticket_id: str) -> str:
    """One provider ticket, however it is written: Microsoft writes SRX1234567890ID in a subject
    and [1234567890] in a body."""
    upper = ticket_id.upper()
    if upper.startswith("SRX") and upper.endswith("ID") and upper[3:-2].isdigit():
        return upper[3:-2]
    return upper


def ticket_ids(text: str, patterns: Iterable[re.Pattern[str]]) -> tuple[str, ...]:
    """Every ticket id the patterns find, in order of appearance, once each (one ticket written
    two ways, as SRX…ID and its bare number, counts once, as first written); where two patterns
    overlap ("Case #4455667" is also a Zendesk-style "#4455667") the longer match wins."""
    found: list[tuple[int, int, str]] = []
    for pattern in patterns:
        for match in pattern.finditer(text):
            value = match.group(1) if match.groups() else match.group(0)
            found.append((match.start(), -match.end(), value.strip()))
    out: list[str] = []
    keys: set[str] = set()
    taken_until = -1
    for start, neg_end, value in sorted(found):
        if start < taken_until:
            continue
        taken_until = -neg_end
        if id_key(value) not in keys:
            keys.add(id_key(value))
            out.append(value)
    return tuple(out)


def ips(text: str) -> tuple[str, ...]:
    """IP addresses mentioned in the text, valid ones only, in order, once each."""
    out: list[str] = []
    for match in [*_IPV4.finditer(text), *_IPV6.finditer(text)]:
        try:
            value = str(ipaddress.ip_address(match.group(0)))
        except ValueError:
            continue
        if value not in out:
            out.append(value)
    return tuple(out)


def _kinds(markers: ReplyMarkers) -> dict[ReplyKind, tuple[re.Pattern[str], ...]]:
    return {
        ReplyKind.RESOLVED: markers.resolved,
        ReplyKind.REFUSED: markers.refused,
        ReplyKind.ESCALATED: markers.escalated,
        ReplyKind.VERIFICATION: markers.verification,
        ReplyKind.ACK: markers.ack,
    }


def _scan(
    sets: Mapping[str, ReplyMarkers], parts: list[str]
) -> dict[ReplyKind, list[tuple[str, str]]]:
    """kind -> [(provider id, matched phrase)] over the given marker sets."""
    hits: dict[ReplyKind, list[tuple[str, str]]] = {}
    for provider_id, markers in sets.items():
        for kind, patterns in _kinds(markers).items():
            finder = _asserted if kind in OUTCOMES else _first
            for pattern in patterns:
                phrase = finder(pattern, parts)
                if phrase:
                    hits.setdefault(kind, []).append((provider_id, phrase))
    return hits


def _decide(
    specific: dict[ReplyKind, list[tuple[str, str]]],
    generic: dict[ReplyKind, list[tuple[str, str]]],
) -> tuple[ReplyKind, list[tuple[str, str]], str]:
    """Outcome beats verification beats acknowledgement, the provider's own markers before the
    generic ones at each level; two different outcomes at once decide nothing."""
    for hits in (specific, generic):
        outcomes = [k for k in OUTCOMES if k in hits]
        if len(outcomes) > 1:
            return ReplyKind.UNKNOWN, [], "it reads as " + " and ".join(map(str, outcomes))
        if outcomes:
            return outcomes[0], hits[outcomes[0]], ""
    for kind in (ReplyKind.VERIFICATION, ReplyKind.ACK):
        for hits in (specific, generic):
            if kind in hits:
                return kind, hits[kind], ""
    return ReplyKind.UNKNOWN, [], "no acknowledgement, delisting or refusal marker"


def classify(text: str, markers: Mapping[str, ReplyMarkers]) -> Reply:
    """Classify a provider reply with the given providers' markers, then the generic ones."""
    body = own_text(text)
    parts = sentences(body)
    id_patterns = [p for m in markers.values() for p in m.ticket_id] + list(GENERIC_TICKET_IDS)
    kind, chosen, why = _decide(_scan(markers, parts), _scan({"": GENERIC}, parts))
    return Reply(
        kind,
        ticket_ids(text, id_patterns),
        ips(body),
        providers=tuple(dict.fromkeys(p for p, _ in chosen if p)),
        matched=tuple(dict.fromkeys(phrase for _, phrase in chosen)),
        why=why,
    )

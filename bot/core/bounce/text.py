"""Plain-text helpers shared by every format: pasted text clean-up, SMTP reply parsing.

What a user pastes from a mail client or Slack is a bounce with damage: "> " quoting, the
client's forwarded-header block ("From: … Sent: … Subject:"), lines wrapped mid-sentence, and
multi-line SMTP replies whose `550-` prefixes repeat on every line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.core.prefilter import lowered, may_match, needles

# SMTP reply code (RFC 5321 §4.2) optionally followed by an enhanced status code (RFC 3463).
# The look-behinds stand after the first digit, not before it ("[245](?<!x.)" is "(?<!x)[245]"):
# a pattern that starts with a character set lets the regex engine skip in C to the next 2, 4
# or 5 instead of trying every position.
REPLY = re.compile(
    r"([245](?<![\w.#-].)[0-5]\d)(?:[ -]|$)(?:\s*#?\s*([245]\.\d{1,3}\.\d{1,3})(?![\d.]*\d))?"
)
STATUS = re.compile(r"([245](?<![\w.].)\.\d{1,3}\.\d{1,3})(?![\w]|\.\d)")
# "#5.1.1" (Exchange) and "[5.1.1]" are the same code with decoration.
STATUS_LOOSE = re.compile(r"(?<![\w.])#?\[?([245]\.\d{1,3}\.\d{1,3})\]?(?![\w]|\.\d)")
# What every match of STATUS_LOOSE holds. STATUS_LOOSE starts with a look-behind, so the regex
# engine tries it at every position; this starts with a character set and is skipped to in C.
_LOOSE_DIGITS = re.compile(r"[245]\.\d")
ADDRESS = re.compile(r"[\w.!#$%&'*+/=?^`{|}~-]+@[\w-]+(?:\.[\w-]+)+", re.UNICODE)
IPV4 = re.compile(r"(?<![\d.])(?:25[0-5]|2[0-4]\d|1?\d?\d)(?:\.(?:25[0-5]|2[0-4]\d|1?\d?\d)){3}(?![\d.]*\d)")
IPV6 = re.compile(r"(?<![\w:])(?:[0-9a-f]{0,4}:){2,7}[0-9a-f]{0,4}(?![\w:])", re.IGNORECASE)

# The texts lowered last, by identity: one diagnosis lowers its body in several readers (the
# formats' markers and cut, the look for a pasted report, the answered command's words).
_LOWERED: dict[int, tuple[str, str | None]] = {}
_LOWERED_MIN = 512  # a shorter text costs less to lower again than to keep
_LOWERED_MAX = 256 * 1024


def lowered_once(text: str) -> str | None:
    """prefilter.lowered(text), kept for the last few long texts: the same text object
    lowers to the same answer, so it is worked out once for all the readers that ask."""
    if len(text) < _LOWERED_MIN:
        return lowered(text)
    kept = _LOWERED.get(id(text))
    if kept is not None and kept[0] is text:  # a kept text is alive, so its id is its own
        return kept[1]
    low = lowered(text)
    if len(text) <= _LOWERED_MAX:
        if len(_LOWERED) >= 8:
            _LOWERED.clear()
        _LOWERED[id(text)] = (text, low)
    return low


_QUOTE = re.compile(r"^[ \t]*(?:>[ \t]?)+", re.MULTILINE)
# A mail client's forwarded/replied header block, in the languages clients commonly use.
_FWD_MARKERS = re.compile(
    r"^(?:-{2,}\s*(?:Original Message|Forwarded message|Weitergeleitete Nachricht|Message transféré"
    r"|Mensaje original|Ursprüngliche Nachricht|転送メッセージ|元のメッセージ)\s*-{2,}"
    r"|Begin forwarded message:)\s*$",
    re.IGNORECASE | re.MULTILINE,
)
_FWD_FIELD = re.compile(
    r"^(?:From|Sent|Date|To|Cc|Subject|Von|Gesendet|An|Betreff|De|Envoyé|À|Objet|Asunto|Enviado"
    r"|Para|差出人|送信日時|宛先|件名)\s*:", re.IGNORECASE
)
_MULTILINE_PREFIX = re.compile(r"^([245]\d\d)-(?:([245]\.\d{1,3}\.\d{1,3})[ ]?)?")
# The last line of a multi-line reply: its code (the reply's own, checked by the caller) and a space.
_FINAL_PREFIX = re.compile(r"([245]\d\d) (?:([245]\.\d{1,3}\.\d{1,3}) ?)?")
_CODE = re.compile(r"([245](?<!\d.)\d\d)[- ]")  # a reply code not part of a longer number
_CODE_AND_STATUS = re.compile(r"([245](?<!\d.)\d\d)[ -]([245]\.\d{1,3}\.\d{1,3})\b")


def has_forward_marker(text: str) -> bool:
    """A mail client's "-----Original Message-----" (or translated) separator is in the text."""
    return bool(_FWD_MARKERS.search(text))


def unquote(text: str) -> str:
    """Remove "> " quoting at any depth."""
    return _QUOTE.sub("", text) if ">" in text else text


def strip_forward_headers(text: str) -> str:
    """Drop a mail client's forwarded-header lines so the bounce's own text comes first.

    Only the header block a client writes (From/Sent/To/Subject lines, possibly wrapped) is
    removed; everything after it is kept untouched.
    """
    text = _FWD_MARKERS.sub("", text)
    lines = text.split("\n")
    out: list[str] = []
    in_block = False
    for line in lines:
        if _FWD_FIELD.match(line) and (in_block or not out or not out[-1].strip() or len(out) < 3):
            in_block = True
            continue
        if in_block and line[:1] in (" ", "\t", "<") and line.strip():
            continue  # a wrapped forwarded-header value, e.g. "<x7f3a9@host>"
        in_block = False
        out.append(line)
    return "\n".join(out)


def clean_paste(text: str) -> str:
    """A paste from a mail client or Slack -> bounce text a detector can read."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = unquote(text)
    text = strip_forward_headers(text)
    return text.strip("\n")


def squash(text: str) -> str:
    """Collapse all whitespace, including wrapped lines, into single spaces.

    str.split() splits at every Unicode space (no-break U+00A0 and ideographic U+3000 too) and
    drops them at both ends: no run of spaces is left to collapse, nothing to strip."""
    return " ".join(text.split())


def join_reply_lines(lines: list[str]) -> str:
    """Join a diagnostic spread over several lines into one line.

    Multi-line SMTP replies repeat `550-5.7.1 ` on every line; keep the first prefix only, so
    `550-5.7.1 a` / `550 5.7.1 b` becomes `550 5.7.1 a b`.
    """
    out: list[str] = []
    first_prefix = ""
    continued = False  # the reply was a multi-line one ("550-…")
    for raw in lines:
        line = raw.strip()
        if not line:
            continue
        match = _MULTILINE_PREFIX.match(line) or _final_prefix(line, first_prefix)
        if match and not first_prefix and out and match.group(1) in out[0].split()[-3:] + _codes(out[0]):
            # "host x said: 550-5.7.1 a" / "550-5.7.1 b": the first line's prefix came after words.
            first_prefix = match.group(1) + (" " + match.group(2) if match.group(2) else "")
            line = line[match.end():].strip()
            match = None
        if match:
            continued = continued or line[3:4] == "-"
            if not first_prefix:
                first_prefix = match.group(1) + (" " + match.group(2) if match.group(2) else "")
                out.append(first_prefix)
            line = line[match.end():].strip()
        out.append(line)
    joined = squash(" ".join(out))
    if not first_prefix and out:  # "host x said: 550-5.7.1 ...": the prefix came after words
        said = _CODE_AND_STATUS.search(out[0])
        first_prefix = f"{said.group(1)} {said.group(2)}" if said else ""
    if first_prefix and " " in first_prefix:
        # Rewrapped replies (Postfix refolds them) carry "550 5.7.1" continuation prefixes mid-line.
        code, status = first_prefix.split()
        head = joined.find(status) + len(status)
        tail = joined[head:]
        if f" {code} {status}" in tail or f" {code}-{status}" in tail:  # what any match holds
            repeat = re.compile(rf"(?<=\S) {code}[ -]{re.escape(status)}(?= )")
            joined = joined[:head] + repeat.sub("", tail)
    if first_prefix and continued and joined.startswith(first_prefix):
        joined = _inner_prefixes(joined, first_prefix)
    return joined


def _codes(line: str) -> list[str]:
    return [m.group(1) for m in _CODE.finditer(line)]


def _inner_prefixes(text: str, first_prefix: str) -> str:
    """Drop the `550-5.7.1 ` prefixes a re-wrapping MTA left inside the lines of a multi-line reply.

    Postfix and Exim re-wrap the remote reply at their own width, so the `NNN-` of each original
    line can land mid-line ("…from your 421-4.7.28 IP address…"); the reply's last line repeats
    the prefix with a space ("… 421 4.7.28 Bulk Email Senders Guidelines").
    """
    code, _, status = first_prefix.partition(" ")
    status_part = rf"(?:{re.escape(status)}\s?)?" if status else ""
    head = len(first_prefix)
    rest = text[head:]
    if f"{code}-" not in rest:  # what any match of `inner` holds
        return text
    inner = re.compile(rf"(?<=\s){code}-{status_part}")
    found = list(inner.finditer(rest))
    if not found:
        return text
    last_end = found[-1].end()
    rest = rest[:last_end] + re.sub(rf"(?<=\s){code} {status_part}", "", rest[last_end:], count=1)
    return squash(text[:head] + inner.sub("", rest))


def _final_prefix(line: str, first_prefix: str) -> re.Match[str] | None:
    """The last line of a multi-line reply ("550 5.7.1 end") repeats the prefix with a space."""
    if not first_prefix or not line.startswith(first_prefix.split()[0]):
        return None
    return _FINAL_PREFIX.match(line)  # its code is the one the line starts with


_HASHED_REPLY = re.compile(r"#(?<![\w.]#)([245][0-5]\d) ([245]\.\d{1,3}\.\d{1,3})(?![\d.]*\d)")


@dataclass(frozen=True)
class Reply:
    """The SMTP reply code and enhanced status found in a diagnostic."""

    reply_code: str | None
    status: str | None


def find_reply(diagnostic: str) -> Reply:
    """The first SMTP reply code and the most specific enhanced status code in a text."""
    code = None
    status = None
    # The first failure reply (4xx/5xx); a 2xx/3xx before it is a greeting or an earlier step.
    first = None
    for match in REPLY.finditer(diagnostic):
        first = first or match
        if match.group(1)[0] in "45":
            first = match
            break
    if first is not None:
        code = first.group(1)
        status = first.group(2)
    if code is None:  # Exchange decorates both: "#550 5.1.1 RESOLVER.ADR.RecipNotFound ##"
        hashed = _HASHED_REPLY.search(diagnostic)
        if hashed:
            code, status = hashed.group(1), hashed.group(2)
    if status is None:
        loose = STATUS_LOOSE.search(diagnostic) if _LOOSE_DIGITS.search(diagnostic) else None
        status = loose.group(1) if loose else None
    return Reply(code, status)


# The SMTP command a reply answered, as MTAs word it (RFC 5321 §4.1.1 command names):
# Postfix "(in reply to RCPT TO command)", Exim "SMTP error from remote mail server after RCPT TO:",
# qmail "does not like recipient" / "failed on DATA command", Sendmail transcripts ">>> RCPT To:".
_COMMAND_WORDS = (
    (re.compile(r"\(in\s+reply\s+to\s+(end\s+of\s+DATA|RCPT\s+TO|MAIL\s+FROM|DATA|RCPT|MAIL|EHLO|HELO|"
                r"STARTTLS|AUTH|BDAT|QUIT|RSET)(?:\s+command)?\)", re.I), None),
    (re.compile(r"SMTP error from remote (?:mail server|server|mailer) after (?:pipelined )?"
                r"(end of data|RCPT TO|MAIL FROM|DATA|initial connection|EHLO|HELO|STARTTLS|AUTH)", re.I),
     None),
    (re.compile(r"most progress was (RCPT TO|MAIL FROM|DATA|EHLO|HELO) response", re.I), None),
    (re.compile(r"does not like recipient", re.I), "RCPT"),
    (re.compile(r"(?:does not like sender|but sender was rejected)", re.I), "MAIL"),
    (re.compile(r"failed on DATA command|failed after I sent the message", re.I), "DATA"),
    (re.compile(r"but (?:greeting failed|my name was rejected)", re.I), "CONN"),
)
_TRANSCRIPT = re.compile(
    r"^>>>\s*(RCPT|MAIL|DATA|EHLO|HELO|STARTTLS|AUTH)\b[^\n]*\n(?:(?!>>>)[^\n]*\n)*?<<<\s*[45]\d\d",
    re.I | re.M,
)
_COMMAND_NAMES = {"END": "DATA", "INITIAL": "CONN", "RCPT": "RCPT", "MAIL": "MAIL", "DATA": "DATA"}
_COMMAND_NEEDLES = tuple(needles(pattern) for pattern, _ in _COMMAND_WORDS)


def may_name_command(text: str) -> bool:
    """False only when command_of() finds nothing in the text or in any run of its lines, and
    the text is no SMTP session transcript (one names RCPT)."""
    low = lowered_once(text)
    if low is None:
        return True
    return ">>>" in text or "rcpt" in low or any(may_match(found, low) for found in _COMMAND_NEEDLES)


def command_of(text: str) -> str | None:
    """The SMTP command a rejection answered, when the bounce's text says which."""
    low = lowered_once(text)
    for (pattern, fixed), found in zip(_COMMAND_WORDS, _COMMAND_NEEDLES, strict=True):
        if not may_match(found, low):
            continue
        match = pattern.search(text)
        if match:
            word = fixed or match.group(1).split()[0].upper()
            return _COMMAND_NAMES.get(word, word)
    transcript = _TRANSCRIPT.search(text) if ">>>" in text else None
    return transcript.group(1).upper() if transcript else None


def is_ip_literal(text: str) -> bool:
    return bool(IPV4.fullmatch(text) or IPV6.fullmatch(text))

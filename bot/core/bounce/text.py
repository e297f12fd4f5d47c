"""Plain-text helpers shared by every format: pasted text clean-up, SMTP reply parsing.

What a user pastes from a mail client or Slack is a bounce with damage: "> " quoting, the
client's forwarded-header block ("From: … Sent: … Subject:"), lines wrapped mid-sentence, and
multi-line SMTP replies whose `550-` prefixes repeat on every line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# SMTP reply code (RFC 5321 §4.2) optionally followed by an enhanced status code (RFC 3463).
REPLY = re.compile(
    r"(?<![\w.#-])([245][0-5]\d)(?:[ -]|$)(?:\s*#?\s*([245]\.\d{1,3}\.\d{1,3})(?![\d.]*\d))?"
)
STATUS = re.compile(r"(?<![\w.])([245]\.\d{1,3}\.\d{1,3})(?![\w]|\.\d)")
# "#5.1.1" (Exchange) and "[5.1.1]" are the same code with decoration.
STATUS_LOOSE = re.compile(r"(?<![\w.])#?\[?([245]\.\d{1,3}\.\d{1,3})\]?(?![\w]|\.\d)")
ADDRESS = re.compile(r"[\w.!#$%&'*+/=?^`{|}~-]+@[\w-]+(?:\.[\w-]+)+", re.UNICODE)
IPV4 = re.compile(r"(?<![\d.])(?:25[0-5]|2[0-4]\d|1?\d?\d)(?:\.(?:25[0-5]|2[0-4]\d|1?\d?\d)){3}(?![\d.]*\d)")
IPV6 = re.compile(r"(?<![\w:])(?:[0-9a-f]{0,4}:){2,7}[0-9a-f]{0,4}(?![\w:])", re.IGNORECASE)

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
_SPACES = re.compile(r"[ \t\u00a0\u3000]+")


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
    """Collapse all whitespace, including wrapped lines, into single spaces."""
    return _SPACES.sub(" ", " ".join(text.split())).strip()


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
        if match:
            continued = continued or line[3:4] == "-"
            if not first_prefix:
                first_prefix = match.group(1) + (" " + match.group(2) if match.group(2) else "")
                out.append(first_prefix)
            line = line[match.end():].strip()
        out.append(line)
    joined = squash(" ".join(out))
    if first_prefix and continued:
        joined = _inner_prefixes(joined, first_prefix)
    return joined


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
    inner = re.compile(rf"(?<=\s){code}-{status_part}")
    found = list(inner.finditer(rest))
    if not found:
        return text
    last_end = found[-1].end()
    rest = rest[:last_end] + re.sub(rf"(?<=\s){code} {status_part}", "", rest[last_end:], count=1)
    return squash(text[:head] + inner.sub("", rest))


def _final_prefix(line: str, first_prefix: str) -> re.Match[str] | None:
    """The last line of a multi-line reply ("550 5.7.1 end") repeats the prefix with a space."""
    if not first_prefix:
        return None
    code = first_prefix.split()[0]
    return re.match(rf"^({code}) (?:([245]\.\d{{1,3}}\.\d{{1,3}}) ?)?", line)


@dataclass(frozen=True)
class Reply:
    """The SMTP reply code and enhanced status found in a diagnostic."""

    reply_code: str | None
    status: str | None


def find_reply(diagnostic: str) -> Reply:
    """The first SMTP reply code and the most specific enhanced status code in a text."""
    code = None
    status = None
    for match in REPLY.finditer(diagnostic):
        code = match.group(1)
        status = match.group(2)
        break
    if status is None:
        loose = STATUS_LOOSE.search(diagnostic)
        status = loose.group(1) if loose else None
    return Reply(code, status)


def is_ip_literal(text: str) -> bool:
    return bool(IPV4.fullmatch(text) or IPV6.fullmatch(text))

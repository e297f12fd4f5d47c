"""Recipients and diagnostics from the human-readable text of a bounce, whatever wrote it.

Most MTAs print the same shape: a line that starts with the failed address, then the remote
server's words until a blank line (qmail "<a@b>:", Postfix "<a@b>: host x said: ...", Exim's
indented "  a@b" with "SMTP error from remote mail server ...", Sendmail "<a@b>... reason").
Others print the address in one paragraph and the reply in another (Gmail's "The response from
the remote server was:", Exchange's "Remote Server returned '...'"). One reader handles both:
blocks headed by an address, then a document-wide diagnostic for blocks that carry none.
"""

from __future__ import annotations

import re

from bot.core.bounce.text import ADDRESS, REPLY, STATUS, find_reply, join_reply_lines, squash
from bot.core.model import RecipientRecord

_ADDR = r"[\w.!#$%&'*+/=?^`{|}~-]+@[\w-]+(?:\.[\w-]+)+"
_RECIPIENT_LINE = re.compile(
    rf"^\s*(?:RCPT To:\s*|Recipient(?: address)?:\s*|Original-Recipient:\s*(?:rfc822;)?\s*)?"
    rf"[<\"']?({_ADDR})(?![\w.-]*\w)[>\"']?(?:\s*\((?:expanded from|generated from)[^)]*\))?"
    rf"(?:\s*:|\.\.\.|\s*$)\s*(.*)$",
    re.IGNORECASE,
)
_HEADER_FIELD = re.compile(
    r"^\s*(?:From|To|Cc|Reply-To|Return-Path|Sender|Message-ID|Received|X-[\w-]+)\s*:", re.I
)
# Phrases that introduce the remote server's own words; the reply follows them.
_REMOTE_SAID = re.compile(
    r"(?:Remote host said:|\bsaid:|"
    r"SMTP error from remote (?:mail server|server|mailer) after (?:[^:<]*:?<[^>]*>|[^:]*):|"
    r"\(reason:|The (?:response|error that the other server returned) (?:from the remote server )?was:|"
    r"Remote Server returned|Diagnostic-Code:|<<<|Reason:|Failure Reason:)\s*",
    re.IGNORECASE,
)
_IN_REPLY_TO = re.compile(r"\(in reply to ([A-Z ]+?)(?: command)?\)", re.IGNORECASE)
_BOILERPLATE = re.compile(
    r"^(?:Giving up on \S+|\S+ does not like recipient\.?|This is a permanent error.*|"
    r"I'm not going to try again.*|Please contact your system administrator.*)$",
    re.IGNORECASE,
)
_REMOTE_HOST = re.compile(
    r"(?:host|server)\s+([a-z0-9][\w.-]*\.[a-z]{2,})\s*\[[0-9a-f.:]+\]|"
    r"Remote-MTA:\s*dns;\s*([\w.-]+)|while talking to ([\w.-]+?)\.?:|Generating server:\s*([\w.-]+)|"
    r"Error transferring to ([a-z0-9][\w-]*(?:\.[\w-]+)+)",
    re.IGNORECASE,
)
# Most specific first: the remote server's own words beat the MTA's summary of them.
_GLOBAL_MARKERS = tuple(re.compile(p, re.IGNORECASE) for p in (
    r"The error that the other server returned was:",
    r"The response (?:from the remote server )?was:",
    r"Remote Server returned",
    r"Diagnostic information for administrators:",
    r"Failure Reason:",
    r"Technical details of (?:permanent|temporary) failure:",
))


def _blocks(report: str) -> list[tuple[str, list[str]]]:
    """(address, lines after it) for every line that starts with a recipient address."""
    blocks: list[tuple[str, list[str]]] = []
    current: list[str] | None = None
    for line in report.split("\n"):
        # A recipient line holds an address, so a line without "@" needs no regex.
        match = None if "@" not in line or _HEADER_FIELD.match(line) else _RECIPIENT_LINE.match(line)
        if match and len(match.group(2)) < 400:
            current = [match.group(2)] if match.group(2) else []
            blocks.append((match.group(1), current))
        elif current is not None:
            if not line.strip():
                if current:  # the block ends at the first blank line after some text
                    current = None
                continue
            current.append(line)
    return blocks


def remote_text(lines: list[str]) -> tuple[str, str | None]:
    """The remote server's words in a block, unwrapped, and the SMTP command they answered."""
    text = "\n".join(line for line in lines if not _BOILERPLATE.match(line.strip()))
    command = None
    in_reply = _IN_REPLY_TO.search(text)
    if in_reply:
        command = in_reply.group(1).upper().split()[0]
        text = text[: in_reply.start()] + text[in_reply.end():]
    said = list(_REMOTE_SAID.finditer(text))
    if said:
        opened = said[0].group(0).startswith("(")
        text = text[said[0].end():]
        if opened and ")" in text:  # Sendmail's "(reason: 550 ...)"
            text = text[: text.rindex(")")]
    else:
        reply = REPLY.search(text)
        if reply and (reply.group(2) or reply.start() == 0 or text[reply.start() - 1] in "\n ("):
            text = text[reply.start():]
    return join_reply_lines(text.strip(" '\n").split("\n")).strip(" '"), command


def global_diagnostic(report: str) -> str:
    """The remote reply printed away from any address (Gmail, Exchange, bare pastes)."""
    marker = next(filter(None, (p.search(report) for p in _GLOBAL_MARKERS)), None)
    if marker:
        rest = report[marker.end():].lstrip(" \n")
        paragraph = re.split(r"\n\s*\n", rest, maxsplit=1)[0]
        return join_reply_lines(paragraph.strip(" '").split("\n")).strip(" '")
    for paragraph in re.split(r"\n\s*\n", report):
        reply = REPLY.search(paragraph)
        if reply and (reply.group(2) or STATUS.search(paragraph)):
            return remote_text(paragraph.split("\n"))[0]
    return ""


def remote_host(text: str) -> str | None:
    match = _REMOTE_HOST.search(text)
    if not match:
        return None
    return next(g for g in match.groups() if g).rstrip(".").lower()


def extract(report: str) -> list[RecipientRecord]:
    """Failed recipients, in order, from the report text (returned message already cut off)."""
    records: list[RecipientRecord] = []
    seen: set[str] = set()
    fallback = None
    report_host: list[str | None] = []  # remote_host(report), worked out at most once
    for address, lines in _blocks(report):
        key = address.lower()
        if key in seen:
            continue
        seen.add(key)
        diagnostic, command = remote_text(lines)
        if not diagnostic or not _informative(diagnostic):
            if fallback is None:
                fallback = global_diagnostic(report)
            diagnostic = fallback or diagnostic
        reply = find_reply(diagnostic)
        records.append(
            RecipientRecord(
                address=address,
                diagnostic=diagnostic,
                status=reply.status,
                reply_code=reply.reply_code,
                remote_mta=remote_host("\n".join(lines)) or _once(report_host, report),
                command=command,
            )
        )
    return records


def _once(memo: list[str | None], report: str) -> str | None:
    if not memo:
        memo.append(remote_host(report))
    return memo[0]


def _informative(diagnostic: str) -> bool:
    """A diagnostic says something when it has a reply code or a few words."""
    return bool(REPLY.search(diagnostic)) or len(diagnostic.split()) >= 3


def addresses(text: str) -> list[str]:
    return [m.group(0) for m in ADDRESS.finditer(text)]


def bare_diagnostic(text: str) -> RecipientRecord | None:
    """A paste holding just an SMTP error (no address line): one record without an address."""
    diagnostic = global_diagnostic(text)
    if not diagnostic:
        squashed = squash(text)
        found = REPLY.search(squashed)
        if not found:
            return None
        diagnostic = squashed[found.start():]
    reply = find_reply(diagnostic)
    if not reply.reply_code and not reply.status:
        return None
    return RecipientRecord(address=None, diagnostic=diagnostic, status=reply.status,
                           reply_code=reply.reply_code, remote_mta=remote_host(text))

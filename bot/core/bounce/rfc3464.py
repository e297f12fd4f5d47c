"""RFC 3464 delivery status notifications (message/delivery-status), and RFC 6533's global form.

The per-message block (Reporting-MTA, Arrival-Date, ...) comes first, then one block per
recipient separated by blank lines. Real MTAs bend the format: folded Diagnostic-Code values,
X-Actual-Recipient, missing blank lines between recipients, "smtp;" with no space, and the
whole report pasted into a text/plain part. Fields are read leniently; a recipient needs only
a Final-Recipient or Original-Recipient.
"""

from __future__ import annotations

import re

from bot.core.bounce.text import Reply, find_reply, join_reply_lines, lowered_once
from bot.core.model import RecipientRecord
from bot.core.prefilter import may_match, needles

# A field line, read with its indentation: the name after any spaces, the value up to the line's end
# (whose trailing spaces the reader strips), as the line stripped would give them.
_FIELD = re.compile(r"\s*([A-Za-z][\w-]*)\s*:\s*(.*)")
_RECIPIENT_FIELDS = ("final-recipient", "original-recipient", "x-actual-recipient")
_RECIPIENT_SET = frozenset(_RECIPIENT_FIELDS)
_DSN_IN_TEXT = re.compile(r"^(?:Final|Original)-Recipient\s*:", re.IGNORECASE | re.MULTILINE)
_DSN_NEEDLES = needles(_DSN_IN_TEXT)


def _paragraphs(text: str) -> list[tuple[list[tuple[str, str]], bool]]:
    """Blank-line-separated paragraphs of field lines, in order, with whether each names a recipient.

    Names are lowered; continuation lines (indented, or a non-field line after a Diagnostic-Code) are
    unfolded into the field before them; lines that are neither are skipped. One pass over the
    lines: a paragraph is opened by its first field and closed by the next blank line.
    """
    paragraphs: list[tuple[list[tuple[str, str]], bool]] = []
    current: list[tuple[str, str]] = []  # the paragraph being read; empty after a blank line
    names_recipient = False
    match_field = _FIELD.match
    for line in text.split("\n"):
        if not line or line.isspace():  # blank: nothing is left of it stripped
            if current:
                paragraphs.append((current, names_recipient))
                current = []
                names_recipient = False
        elif current and line[0] in " \t":
            name, value = current[-1]
            current[-1] = (name, value + "\n" + line)
        else:
            match = match_field(line)
            if match:
                name, value = match.groups()
                name = name.lower()
                current.append((name, value.rstrip()))
                if name in _RECIPIENT_SET:
                    names_recipient = True
            elif current and current[-1][0] == "diagnostic-code":  # an unindented continuation
                name, value = current[-1]
                current[-1] = (name, value + "\n" + line)
    if current:
        paragraphs.append((current, names_recipient))
    return paragraphs


_PER_MESSAGE_FIELDS = frozenset({"reporting-mta", "received-from-mta", "arrival-date", "original-envelope-id",
                                 "dsn-gateway", "x-postfix-queue-id", "x-postfix-sender"})


def _blocks(text: str) -> tuple[dict[str, str], list[dict[str, str]]]:
    """Per-message fields and per-recipient field dicts.

    Each blank-line-separated paragraph that names a recipient is one recipient, whatever the
    order of its fields (some MTAs put Diagnostic-Code and Status before Final-Recipient).
    MTAs that omit the blank line between recipients repeat a recipient field instead.
    """
    per_message: dict[str, str] = {}
    recipients: list[dict[str, str]] = []
    for paragraph, names_recipient in _paragraphs(text):
        if not names_recipient:
            target = recipients[-1] if recipients else per_message
            for name, value in paragraph:
                (per_message if name in _PER_MESSAGE_FIELDS else target).setdefault(name, value)
            continue
        current: dict[str, str] = {}
        recipients.append(current)
        for name, value in paragraph:
            if name in _PER_MESSAGE_FIELDS:
                per_message.setdefault(name, value)
                continue
            if name in _RECIPIENT_SET and not _RECIPIENT_SET.isdisjoint(current) and (
                name in current
                or (name == "original-recipient" and "final-recipient" in current and "status" in current)
            ):
                current = {}
                recipients.append(current)
            current.setdefault(name, value)
    return per_message, [r for r in recipients if not _RECIPIENT_SET.isdisjoint(r)]


def _typed(value: str | None) -> str | None:
    """"rfc822; a@b" -> "a@b"; "dns; host" -> "host"."""
    if not value:
        return None
    _, sep, rest = value.partition(";")
    rest = rest if sep else value
    rest = rest.strip().strip("<>").strip()
    return rest or None


def _diagnostic(value: str | None) -> str:
    if not value:
        return ""
    kind, sep, rest = value.partition(";")
    text = rest if sep and len(kind) < 12 and " " not in kind.strip() else value
    return join_reply_lines(text.split("\n"))


_COMMENT = re.compile(r"\((.+)\)\s*$")
_STATUS_CODE = re.compile(r"[245]\.\d{1,3}\.\d{1,3}")


def _status_comment(value: str | None) -> str:
    """"4.0.0 (host name lookup failure)": the comment RFC 3464 allows after the Status code."""
    match = _COMMENT.search(value) if value and ")" in value else None
    return match.group(1).strip() if match else ""


def _diagnostic_type(value: str | None) -> str | None:
    """"X-Unix; 255" -> "x-unix": the kind of system that wrote the diagnostic (RFC 3464 §2.3.6)."""
    if not value:
        return None
    kind, sep, _ = value.partition(";")
    kind = kind.strip().lower()
    return kind if sep and kind and len(kind) < 12 and " " not in kind else None


def parse(report: str) -> tuple[dict[str, str], list[RecipientRecord]]:
    """A delivery-status body -> (per-message fields, recipients in order)."""
    per_message, blocks = _blocks(report.replace("\r\n", "\n"))
    records = []
    for block in blocks:
        address = _typed(block.get("final-recipient")) or _typed(block.get("original-recipient"))
        if block.get("x-actual-recipient") and (not address or "@" not in address):
            address = _typed(block.get("x-actual-recipient"))
        diagnostic = _diagnostic(block.get("diagnostic-code")) or _status_comment(block.get("status"))
        kind = _diagnostic_type(block.get("diagnostic-code"))
        # Only an SMTP diagnostic carries an SMTP reply: "X-Unix; 255" is a program's exit status.
        reply = Reply(None, None) if (kind or "").startswith("x-unix") else find_reply(diagnostic)
        status_field = (block.get("status") or "").strip().split()[0:1]
        status = status_field[0] if status_field else None
        if status and not _STATUS_CODE.fullmatch(status):
            status = None
        records.append(
            RecipientRecord(
                address=address,
                diagnostic=diagnostic,
                status=_most_specific(status, reply.status),
                reply_code=reply.reply_code,
                remote_mta=_typed(block.get("remote-mta")),
                action=(block.get("action") or "").strip().lower() or None,
                diagnostic_type=kind,
            )
        )
    return per_message, records


def _most_specific(field_status: str | None, text_status: str | None) -> str | None:
    """The Status field is often generic (5.0.0); the code inside the diagnostic is better.

    The diagnostic's code wins when it is of the same class and not itself generic.
    """
    if not text_status or not field_status:
        return text_status or field_status
    if text_status[0] != field_status[0] or text_status.endswith(".0.0"):
        return field_status
    return text_status


def embedded_report(text: str) -> str | None:
    """A delivery-status report pasted into a text part (no MIME), if there is one."""
    if not may_match(_DSN_NEEDLES, lowered_once(text)):
        return None
    match = _DSN_IN_TEXT.search(text)
    if not match:
        return None
    start = text.rfind("\n\n", 0, match.start())
    return text[start + 2 if start != -1 else 0 :]

"""RFC 3464 delivery status notifications (message/delivery-status), and RFC 6533's global form.

The per-message block (Reporting-MTA, Arrival-Date, ...) comes first, then one block per
recipient separated by blank lines. Real MTAs bend the format: folded Diagnostic-Code values,
X-Actual-Recipient, missing blank lines between recipients, "smtp;" with no space, and the
whole report pasted into a text/plain part. Fields are read leniently; a recipient needs only
a Final-Recipient or Original-Recipient.
"""

from __future__ import annotations

import re

from bot.core.bounce.text import find_reply, join_reply_lines
from bot.core.model import RecipientRecord

_FIELD = re.compile(r"^([A-Za-z][\w-]*)\s*:\s*(.*)$")
_RECIPIENT_FIELDS = ("final-recipient", "original-recipient", "x-actual-recipient")
_DSN_IN_TEXT = re.compile(r"^(?:Final|Original)-Recipient\s*:", re.IGNORECASE | re.MULTILINE)


def _fields(text: str) -> list[tuple[str, str]]:
    """Field lines with their continuation lines unfolded, in order; blank lines kept as ("", "")."""
    out: list[tuple[str, str]] = []
    for line in text.split("\n"):
        if not line.strip():
            out.append(("", ""))
        elif line[:1] in (" ", "\t") and out and out[-1][0]:
            name, value = out[-1]
            out[-1] = (name, value + "\n" + line)
        else:
            match = _FIELD.match(line.strip())
            if match:
                out.append((match.group(1).lower(), match.group(2)))
            elif out and out[-1][0] == "diagnostic-code":  # an unindented continuation
                name, value = out[-1]
                out[-1] = (name, value + "\n" + line)
    return out


def _blocks(text: str) -> tuple[dict[str, str], list[dict[str, str]]]:
    """Per-message fields and per-recipient field dicts."""
    per_message: dict[str, str] = {}
    recipients: list[dict[str, str]] = []
    current: dict[str, str] | None = None
    for name, value in _fields(text):
        if not name:
            current = None
            continue
        # A recipient field starts a new block unless it belongs to the current one; MTAs that
        # omit the blank line between recipients repeat a field instead.
        starts_recipient = name in _RECIPIENT_FIELDS and (
            current is None
            or name in current
            or (name == "original-recipient" and "final-recipient" in current and "action" in current)
        )
        if starts_recipient:
            current = {}
            recipients.append(current)
        if current is None:
            per_message.setdefault(name, value)
        else:
            current.setdefault(name, value)
    return per_message, [r for r in recipients if any(k in r for k in _RECIPIENT_FIELDS)]


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
        diagnostic = _diagnostic(block.get("diagnostic-code"))
        reply = find_reply(diagnostic)
        status_field = (block.get("status") or "").strip().split()[0:1]
        status = status_field[0] if status_field else None
        if status and not re.fullmatch(r"[245]\.\d{1,3}\.\d{1,3}", status):
            status = None
        records.append(
            RecipientRecord(
                address=address,
                diagnostic=diagnostic,
                status=_most_specific(status, reply.status),
                reply_code=reply.reply_code,
                remote_mta=_typed(block.get("remote-mta")),
                action=(block.get("action") or "").strip().lower() or None,
                diagnostic_type=_diagnostic_type(block.get("diagnostic-code")),
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
    match = _DSN_IN_TEXT.search(text)
    if not match:
        return None
    start = text.rfind("\n\n", 0, match.start())
    return text[start + 2 if start != -1 else 0 :]

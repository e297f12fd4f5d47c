"""Reading bounces: bytes in, one `Bounce` per message out. Never raises on bad input.

The order of readers, most specific first:
  1. ARF feedback reports (RFC 5965) and auto-replies (RFC 3834) — not bounces, but mail the
     bounce address receives and must be told apart;
  2. RFC 3464 delivery-status parts (or such a report pasted into text), topped up from the
     human-readable part where the report leaves a diagnostic out;
  3. the human-readable text of any MTA (bot.core.bounce.plaintext), named by formats.toml;
  4. a bare SMTP error pasted on its own.
Text pasted from a mail client or Slack (no header block) is cleaned first (quoting, forwarded
headers) and then read the same way.
"""

from __future__ import annotations

import re
from dataclasses import fields, replace
from email.utils import getaddresses, parseaddr
from typing import Any

from bot.core.bounce import events, formats, plaintext, rfc3464
from bot.core.bounce.message import (
    Parts,
    decode_bytes,
    looks_like_message,
    normalise_newlines,
    parse_message,
    parts_of,
    split_mbox,
)
from bot.core.bounce.text import (
    clean_paste,
    command_of,
    find_reply,
    has_forward_marker,
    lowered_once,
    may_name_command,
)
from bot.core.model import Bounce, Reason, RecipientRecord

# Reason(value) goes through the enum metaclass's __call__; a dict from value to member is cheaper.
_REASONS = {reason.value: reason for reason in Reason}
MAX_INPUT_BYTES = 8 * 1024 * 1024  # beyond this the tail is not read; bounces are small
# A diagnostic is an SMTP reply (RFC 5321 §4.5.3.1.5: 512 octets a line), a few lines, or an
# NDR's paragraph; thirty full reply lines is past any real one. Text past this is a paste gone
# wrong: every rule would read all of it (a 6 MB one took over a minute) and echo it as evidence.
MAX_DIAGNOSTIC = 16_000
NOT_A_BOUNCE = "no SMTP error or delivery-status part found"
EMPTY = "the input is empty"
BINARY = "the input is binary, not mail text"
NO_FAILED_EVENT = "JSON with no failed delivery in it (no recipient next to an SMTP error)"
NO_FAILED_RECORD = "PowerMTA accounting file with no bounce or transient record in it"
UNREADABLE = frozenset({EMPTY, BINARY})

_AUTO_REPLY_SUBJECT = re.compile(
    r"^(?:auto(?:matic)?[ -]?(?:reply|response|antwort)|out of (?:the )?office|"
    r"abwesenheit|vacation|absence|自動応答|自動返信|réponse automatique|respuesta automática)",
    re.IGNORECASE,
)
_BOUNCE_SENDER = re.compile(r"mailer-daemon|postmaster|mail delivery|mdaemon|bounce", re.IGNORECASE)
_BOUNCE_SUBJECT = re.compile(
    r"undeliver|undelivered|delivery (?:status|failure|notification|has failed|failed)|returned mail|"
    r"failure notice|mail delivery failed|could not be delivered|non[- ]?deliver|nicht zustellbar|"
    r"unzustellbar|non remis|rejected|returned to sender|delivery problem|error|エラー|不達|"
    r"warning: could not send|delayed mail",
    re.IGNORECASE,
)
# Control bytes text never holds (NUL-BS, SO-SUB, FS-US); everything else, deleted by
# bytes.translate, leaves just those to count.
_TEXT_BYTES = bytes(b for b in range(256) if not (b <= 0x08 or 0x0E <= b <= 0x1A or 0x1C <= b <= 0x1F))


def read(data: bytes, source: str = "-") -> list[Bounce]:
    """Every message in `data` (a message, an mbox, or a paste) as a Bounce."""
    data = data[:MAX_INPUT_BYTES]
    if not data.strip():
        return [_not_bounce(source, EMPTY)]
    if len(data[:4096].translate(None, _TEXT_BYTES)) > 40:
        return [_not_bounce(source, BINARY)]
    if events.looks_like_json(data):
        found = events.parse(data)
        if found is not None:
            return [_bounded(b) for b in _from_events(found, source)]
    if events.looks_like_accounting(data):
        return [_bounded(b) for b in _from_events(events.parse_accounting(data), source, NO_FAILED_RECORD)]
    data = normalise_newlines(data)
    chunks = split_mbox(data)
    bounces = []
    for index, chunk in enumerate(chunks, 1):
        name = source if len(chunks) == 1 else f"{source}#{index}"
        bounces.append(_bounded(read_one(chunk, name)))
    return bounces


# Words of a notice sent while the sending server still retries (Postfix, Sendmail and Exim delay
# warnings, Exchange's and Gmail's delay notifications) ...
_DELAY_WORDS = (
    "warning only", "warning message only", "do not need to resend", "still being retried",
    "will be retried", "will keep trying", "will keep on trying", "will continue trying",
    "will continue on trying", "will retry", "will try again", "has not yet been delivered",
    "could not send message for past", "delivery delayed", "delivery is delayed",
    "delivery has been delayed", "(delay)", "delay notification", "delivery incomplete",
)
_DELAYED_FOR = re.compile(r"delayed \d+ (?:minute|hour|day)")  # Exim: "message … delayed 24 hours"
# ... and of one sent when it gave up: the message is returned and has to be sent again.
_RETURNED_WORDS = (
    "permanent error", "retry timeout exceeded", "returning message to sender", "returned to sender",
    "couldn't be delivered", "not be delivered", "not going to try again", "giving up", "gave up",
    "in the queue too long", "delivery failed", "delivery has failed", "failed permanently",
    "undeliverable", "undelivered", "delivery to the following recipient failed",
    "delivery to the following recipients failed", "(failure)",
)
_NOTICE_HEAD = 4000  # the notice stands before the diagnostics and the returned message
# A word (no space in it) of each phrase above, rare in notices: the phrases are looked for in the
# notice squashed to one case and one space, and squashing only joins the text's words with single
# spaces, so a phrase in it has its word in the text merely lowered, and a phrase in the lowered
# text is in the squashed one. A notice without the words is read without squashing it.
_DELAY_KEYS = ("warning", "resend", "retried", "retry", "trying", "again", "yet", "past", "delay",
               "incomplete")  # "delay" also stands for _DELAYED_FOR
_RETURNED_KEYS = ("permanent", "exceeded", "return", "couldn't", "delivered", "going", "giving", "gave",
                  "queue", "failed", "undeliver", "(failure)")


def says_returned(bounce: Bounce) -> bool:
    """Does the notice say the message came back, the sending server having given up (RFC 3464
    Action: failed, or a failure notice's words), rather than warn that it is still retrying?"""
    if not bounce.is_bounce:
        return False
    actions = {(r.action or "").lower() for r in bounce.recipients}
    if "delayed" in actions or "failed" in actions:  # RFC 3464 says it outright
        return "delayed" not in actions
    head = f"{bounce.subject or ''} {bounce.text[:_NOTICE_HEAD]}"
    low = head.lower()
    if not any(map(low.__contains__, _DELAY_KEYS)):  # no delay word in the notice
        if any(map(low.__contains__, _RETURNED_WORDS)):  # unwrapped: in the notice too
            return True
        if not any(map(low.__contains__, _RETURNED_KEYS)):
            return False
        notice = " ".join(head.split()).lower()
        return any(map(notice.__contains__, _RETURNED_WORDS))
    # One case and one space: notices wrap their sentences anywhere.
    notice = " ".join(head.split()).lower()
    if any(map(notice.__contains__, _DELAY_WORDS)):
        return False
    if "delayed " in notice and _DELAYED_FOR.search(notice):
        return False
    return any(map(notice.__contains__, _RETURNED_WORDS))


def _bounded(bounce: Bounce) -> Bounce:
    """Diagnostics cut to MAX_DIAGNOSTIC characters, at a word, marked with an ellipsis."""
    if all(len(r.diagnostic) <= MAX_DIAGNOSTIC for r in bounce.recipients):
        return bounce
    return replace(bounce, recipients=tuple(
        replace(r, diagnostic=_cut(r.diagnostic)) if len(r.diagnostic) > MAX_DIAGNOSTIC else r
        for r in bounce.recipients))


def _cut(text: str) -> str:
    head = text[:MAX_DIAGNOSTIC]
    space = head.rfind(" ", MAX_DIAGNOSTIC // 2)
    return (head[:space] if space > 0 else head).rstrip() + " …"


def _from_events(found: list[events.Event], source: str, why: str = NO_FAILED_EVENT) -> list[Bounce]:
    """ESP webhook events (JSON) or MTA accounting records: one Bounce per failed delivery."""
    if not found:
        return [_not_bounce(source, why)]
    return [
        Bounce(
            source=source if len(found) == 1 else f"{source}#{index}",
            format=event.service,
            recipients=(event.record,),
            reporting_mta=event.reporting_mta,
            text=event.record.diagnostic,
            stated_ip=(event.sending_ip, f"event field ({event.sending_ip_field})")
            if event.sending_ip else None,
        )
        for index, event in enumerate(found, 1)
    ]


def read_one(data: bytes, source: str, depth: int = 0) -> Bounce:
    if looks_like_message(data):
        parts = parse_message(data)
        bounce = _from_message(parts, source)
        if bounce.is_bounce or depth >= _MAX_FORWARD_DEPTH:
            return bounce
        # A bounce forwarded as an attachment ("Forward as attachment", a mail to the channel's
        # address): the covering note is not a bounce, the attached message may be.
        return _attached_bounce(parts, source, depth + 1) or bounce
    text = clean_paste(decode_bytes(data, None))
    encoded = text.encode("utf-8", "surrogateescape")
    if looks_like_message(encoded):  # a raw message source pasted after some quoting
        return _from_message(parse_message(encoded), source)
    return _from_text(text, source, subject="", from_header="")


_MAX_FORWARD_DEPTH = 3  # a forward of a forward of a bounce; deeper nesting is not a bounce


def _attached_bounce(parts: Parts, source: str, depth: int) -> Bounce | None:
    for attached in parts.attached:
        inner_parts = parts_of(attached)
        inner = _from_message(inner_parts, source)
        if not inner.is_bounce and depth < _MAX_FORWARD_DEPTH:
            inner = _attached_bounce(inner_parts, source, depth + 1) or inner
        if inner.is_bounce:
            return inner
    return None


def _not_bounce(source: str, why: str, **kwargs: Any) -> Bounce:
    return Bounce(source=source, format=None, is_bounce=False, not_bounce_reason=why, **kwargs)


_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_PLAIN_ADDRESS = rf"{_ATEXT}(?:\.{_ATEXT})*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*"
# "a@b" or "Plain Name <a@b>": what parseaddr answers is plain there, without its full parser.
_SIMPLE_ADDRESS = re.compile(
    rf"\s*(?:(?:[A-Za-z0-9 ._-]*|\"[^\"\\\\]*\")\s*<({_PLAIN_ADDRESS})>"
    rf"|({_PLAIN_ADDRESS})(?:\s+\([^()\\\\]*\))?)\s*"
)


def _address(value: str) -> str | None:
    if not value.strip():
        return None
    simple = _SIMPLE_ADDRESS.fullmatch(value)
    if simple:
        return simple.group(1) or simple.group(2)
    address = parseaddr(value)[1]
    return address or None


def _original(parts: Parts, body: str) -> str:
    if parts.original:
        return parts.original[0]
    start = len(formats.cut_returned_message(body, formats.identify(body)))
    return body[start:] if start < len(body) else ""


_FIELD_PATTERNS: dict[str, re.Pattern[str]] = {}


def _original_field(original: str, name: str) -> str | None:
    """The value of the first `name:` line (case-insensitive) that has one."""
    pattern = _FIELD_PATTERNS.get(name)
    if pattern is None:
        pattern = _FIELD_PATTERNS[name] = re.compile(rf"^{name}:\s*(.+)$", re.IGNORECASE | re.MULTILINE)
    # An ASCII text lowers with every offset kept (and is never left unlowered): look for the name
    # before running the regex. The returned message is lowered once for the several fields read
    # from it in a row (From, Return-Path, X-HmXmrOriginalRecipient, To ...).
    if original.isascii() and (low := lowered_once(original)) is not None:
        line = "\n" + name.lower() + ":"
        at = 0 if low.startswith(line[1:]) else low.find(line) + 1 or -1
        while at != -1:
            match = pattern.match(original, at)
            if match:
                return match.group(1).strip()
            at = low.find(line, at) + 1 or -1
        return None
    match = pattern.search(original)
    return match.group(1).strip() if match else None


# A person's forward ("FW: Undeliverable: …", "WG:", "TR:", "RV:", "Fwd:"): the bounce sits under
# the client's separator and forwarded-header block ("-----Original Message-----", "From: … Sent:").
_FORWARD_SUBJECT = re.compile(r"^\s*(?:fwd?|wg|tr|rv|enc|doorst|vs|i)\s*:", re.IGNORECASE)


# A ">" with nothing but spaces before it on its line: where a quoted line's quoting starts. The
# look-behind stands after the ">", so the regex engine skips in C from one ">" to the next.
_QUOTE_START = re.compile(r">(?<!\S.)")


def _forwarded(text: str, subject: str = "") -> str:
    """A bounce forwarded inline, its quoting and forwarded-header lines removed; other text as is."""
    if _FORWARD_SUBJECT.match(subject) and has_forward_marker(text):
        return clean_paste(text)
    if not _QUOTE_START.search(text):
        return text  # no line is quoted
    # Counted in C: a line is blank when nothing is left of it stripped on the left, and quoted
    # when what is left starts with ">", i.e. follows a newline in the lines joined again.
    lines = list(map(str.lstrip, text.split("\n")))
    filled = len(lines) - lines.count("")
    quoted = ("\n" + "\n".join(lines)).count("\n>")
    return clean_paste(text) if filled and quoted * 2 > filled else text


def _from_message(parts: Parts, source: str) -> Bounce:
    subject = parts.header("Subject")
    parts.text = [_forwarded(text, subject) for text in parts.text]
    # Parts.body joins the text parts on each use: joined once, the readers that lower it or keep
    # their answer for it (by identity, or by equality) see the same string.
    body = parts.body
    from_header = parts.header("From")
    original = _original(parts, body)
    common: dict[str, Any] = {
        "from_address": _address(from_header),
        "original_headers": original,
        "original_sender": _address(_original_field(original, "From") or "")
        or _address(_original_field(original, "Return-Path") or ""),
    }
    if parts.feedback:
        return _feedback(parts, source, common)
    jmrp = _original_field(original, "X-HmXmrOriginalRecipient")
    if jmrp:  # Microsoft's JMRP complaint: the reported message carries its original recipient
        return _complaint(parts, source, common, [jmrp], "abuse")
    if (parts.header("X-Apple-Unsubscribe") or "").lower() == "true":
        # Apple Mail's "unsubscribe" button mails the List-Unsubscribe address: an opt-out request.
        return _complaint(parts, source, common, [from_header], "opt-out")
    embedded = None if parts.delivery_status else rfc3464.embedded_report(body)
    if parts.delivery_status or embedded:
        report = "\n\n".join(parts.delivery_status) or embedded or rfc3464.embedded_report(body) or ""
        return _from_report(parts, body, report, source, subject, from_header, common)
    if _is_auto_reply(parts, subject, from_header):
        return Bounce(source=source, format="rfc3834", recipients=(RecipientRecord(
            address=_address(from_header), action="delivered", diagnostic=subject),),
            subject=subject, text=body, **common)
    if not body.strip():
        return _not_bounce(source, NOT_A_BOUNCE, subject=subject)
    bounce = _from_text(body, source, subject=subject, from_header=from_header, **common)
    if not bounce.is_bounce and parts.headers.get("X-Failed-Recipients"):
        return _from_failed_header(parts, source, subject, from_header, common)
    if not bounce.is_bounce or _looks_like_bounce(parts, subject, from_header, bounce):
        return bounce
    return _not_bounce(source, NOT_A_BOUNCE, subject=subject)


def _from_failed_header(parts: Parts, source: str, subject: str, from_header: str,
                        common: dict[str, Any]) -> Bounce:
    """Exim and Google name failed recipients in X-Failed-Recipients even when the text is prose."""
    fmt = formats.identify(parts.body, from_header, subject)
    report = formats.cut_returned_message(parts.body, fmt)
    diagnostic = " ".join(report.split())[:600]
    stated = fmt.stated_reason(parts.body) if fmt else None
    hint = _REASONS[stated] if stated else None
    records = tuple(
        RecipientRecord(address=address, diagnostic=diagnostic, hint=hint)
        for _, address in getaddresses([parts.header("X-Failed-Recipients")]) if address
    )
    return Bounce(source=source, format=fmt.id if fmt else None, recipients=records,
                  subject=subject, text=parts.body, **common)


def _sole_recipient(original: str) -> str | None:
    """The returned message's one To address; None if it had several (which of them failed?)."""
    to = [address for _, address in getaddresses([_original_field(original, "To") or ""]) if address]
    return to[0] if len(to) == 1 and not _original_field(original, "Cc") else None


def _looks_like_bounce(parts: Parts, subject: str, from_header: str, bounce: Bounce) -> bool:
    """A headered message with recipient-shaped text is a bounce only if it says it is one."""
    return bool(
        bounce.format
        or _BOUNCE_SENDER.search(from_header)
        or _BOUNCE_SUBJECT.search(subject)
        or parts.headers.get("X-Failed-Recipients")
        or "report" in parts.content_type
    )


def _is_auto_reply(parts: Parts, subject: str, from_header: str) -> bool:
    """RFC 3834 auto-replies; bounces also say "auto-replied" (Postfix), so rule those out."""
    if _BOUNCE_SENDER.search(from_header) or _BOUNCE_SUBJECT.search(subject):
        return False
    auto = (parts.header("Auto-Submitted") or "").lower()
    return auto.startswith("auto-replied") or bool(_AUTO_REPLY_SUBJECT.search(subject))


def _feedback(parts: Parts, source: str, common: dict[str, Any]) -> Bounce:
    """RFC 5965 abuse reports: one record per Original-Rcpt-To (a report may name several)."""
    report = parts.feedback[0]
    feedback_type = _original_field(report, "Feedback-Type")
    rcpts = re.findall(r"^(?:Original-Rcpt-To|Removal-Recipient)\s*:\s*(.+)$", report, re.I | re.M)
    if not rcpts:
        to = getaddresses([_original_field(str(common["original_headers"]), "To") or ""])
        rcpts = [to[0][1]] if to else []
    return _complaint(parts, source, common, rcpts or [""], (feedback_type or "").lower() or None)


def _complaint(parts: Parts, source: str, common: dict[str, Any], rcpts: list[str],
               feedback_type: str | None) -> Bounce:
    diagnostic = parts.body.strip()[:500]
    records = tuple(RecipientRecord(address=_address(rcpt.strip()), diagnostic=diagnostic, action="delivered")
                    for rcpt in dict.fromkeys(rcpts))
    return Bounce(source=source, format="arf", recipients=records, feedback_type=feedback_type,
                  text=parts.body, subject=parts.header("Subject"), **common)


def _from_report(parts: Parts, body: str, report: str, source: str, subject: str, from_header: str,
                 common: dict[str, Any]) -> Bounce:
    """`report`: the delivery-status parts, or the report pasted into the text `body`."""
    per_message, records = rfc3464.parse(report)
    fmt = formats.identify(body, from_header, subject)
    report_text = formats.cut_returned_message(body, fmt)
    # The text part adds what the report leaves out: a diagnostic, or the SMTP command answered;
    # when every record has its diagnostic, only the commands are read from it.
    if records and all(r.diagnostic for r in records):
        text_records = []
        text_commands = plaintext.commands(report_text) if may_name_command(report_text) else {}
    else:
        text_records = plaintext.extract(report_text)
        text_commands = {r.address.lower(): r.command for r in text_records if r.address}
    merged = _merge(records, text_records, text_commands, body)
    if any(not r.delivered for r in merged):
        # A report on several recipients where some were delivered (NOTIFY=SUCCESS, Courier's
        # "DELIVERED RECIPIENTS"): the bounce is about the others.
        merged = [r for r in merged if not r.delivered]
    if not merged:
        bounce = _from_text(body, source, subject=subject, from_header=from_header, **common)
        to = getaddresses([_original_field(str(common["original_headers"]), "To") or ""])
        if bounce.is_bounce or not parts.delivery_status or not to or not to[0][1]:
            return bounce
        # A delivery report that names no recipient ("Delivery report unavailable"): the
        # returned message says whom it was for; the reason stays undecided.
        merged = [RecipientRecord(address=to[0][1], action="failed")]
    stated = fmt.stated_reason(body) if fmt else None
    if stated:
        merged = [_with(r, hint=r.hint or _REASONS[stated]) for r in merged]
    return Bounce(
        source=source,
        format=fmt.id if fmt else "rfc3464",
        recipients=tuple(merged),
        reporting_mta=rfc3464._typed(per_message.get("reporting-mta")),
        text=body,
        subject=subject,
        **common,
    )


def _merge(records: list[RecipientRecord], text_records: list[RecipientRecord],
           text_commands: dict[str, str | None], body: str) -> list[RecipientRecord]:
    """Fill report records that lack a diagnostic from the text part of the same bounce."""
    by_address = {r.address.lower(): r for r in text_records if r.address}
    out = []
    fallback: str | None = None
    for record in records:
        key = (record.address or "").lower()
        match = by_address.get(key)
        if record.delivered and not (match and match.diagnostic):
            out.append(record)  # delivered: another recipient's failure is not its diagnostic
            continue
        if record.diagnostic:
            command = text_commands.get(key) or _command_in(body, len(records))
            # A copy that changes nothing (no command found) is the record itself: it is frozen.
            out.append(_with(record, command=command) if command != record.command else record)
            continue
        if match and match.diagnostic:
            diagnostic = match.diagnostic
        else:
            fallback = plaintext.global_diagnostic(body) if fallback is None else fallback
            diagnostic = fallback
        reply = find_reply(diagnostic)
        out.append(_with(
            record, diagnostic=diagnostic,
            status=rfc3464._most_specific(record.status, reply.status),
            reply_code=record.reply_code or reply.reply_code,
            remote_mta=record.remote_mta or (match.remote_mta if match else None),
            command=(match.command if match else None) or _command_in(body, len(records)),
        ))
    return out


_RECORD_FIELDS = frozenset(f.name for f in fields(RecipientRecord))


def _with(record: RecipientRecord, **changes: Any) -> RecipientRecord:
    """dataclasses.replace(record, **changes), cheaper, for the records the readers fill in.
    replace() walks the fields in Python, gathers them into keyword arguments and calls
    __init__; a RecipientRecord's fields are all plain init fields and it has no __post_init__
    (tests/test_format_reading.py checks both), so the copy replace() builds is the record's
    instance dict with the changes."""
    unknown = changes.keys() - _RECORD_FIELDS
    if unknown:
        raise TypeError(f"RecipientRecord has no field(s) {sorted(unknown)}")
    copy = object.__new__(RecipientRecord)
    state = copy.__dict__
    state.update(record.__dict__)
    state.update(changes)
    return copy


def _command_in(body: str, recipients: int) -> str | None:
    """The SMTP command a lone recipient's rejection answered, when only the text says so."""
    if recipients != 1:
        return None
    return command_of(body)


def _from_text(text: str, source: str, *, subject: str, from_header: str, **common: Any) -> Bounce:
    fmt = formats.identify(text, from_header, subject)
    report = formats.cut_returned_message(text, fmt)
    records = plaintext.extract(report)
    if not records:
        bare = plaintext.bare_diagnostic(report)
        records = [bare] if bare else []
    if not records:
        return _not_bounce(source, NOT_A_BOUNCE, subject=subject or None)
    stated = fmt.stated_reason(report) if fmt else None
    if stated:
        records = [_with(r, hint=r.hint or _REASONS[stated]) for r in records]
    if "original_headers" not in common:
        common["original_headers"] = text[len(report):]
    if len(records) == 1 and not records[0].address:
        # The notice names only the domain (MailEnable: "Your message addressed to the target
        # domain (b) could not be delivered"): the returned message says whom it was for.
        records = [_with(records[0], address=_sole_recipient(str(common["original_headers"])))]
    return Bounce(source=source, format=fmt.id if fmt else None, recipients=tuple(records),
                  subject=subject or None, text=text, **common)

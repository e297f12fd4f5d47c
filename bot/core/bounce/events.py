"""Bounce events as sending services deliver them to webhooks, in JSON.

ESPs and their customers meet bounces as events more often than as mails: Amazon SES (SNS
notifications, with or without the SNS envelope), SendGrid, Mailgun, Postmark and SparkPost each
post their own JSON, and bulk MTAs log one record per attempt (KumoMTA's JSON log records).
Rather than one reader per service, this walks the document for objects that
hold a recipient address next to the remote server's words, under the names those services use,
and keeps what else the event says: the service's sending IP, the remote host, the SMTP code.

A paste of one event, a JSON array of events (SendGrid posts batches) or JSON Lines are read; an
event that is not a failure (delivered, opened, clicked) is not a bounce.

PowerMTA writes its accounting file as CSV (RFC 4180) under a header line naming the columns
("type,timeLogged,...,rcpt,...,dsnStatus,dsnDiag,dsnMta,..."); rows of type b (bounced), t and tq
(transient) are failures, d (delivered) and r (received) are not.
"""

from __future__ import annotations

import csv
import io
import ipaddress
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from bot.core.bounce.text import ADDRESS, find_reply, join_reply_lines
from bot.core.model import RecipientRecord

MAX_EVENTS = 1000  # a batch larger than this is cut: nobody reads a thousand verdicts at once
_MAX_DEPTH = 12

# Field names, lower-cased with "-" and "_" removed, as the services spell them.
_RECIPIENT = ("emailaddress", "email", "recipient", "rcptto", "to")
_DIAGNOSTIC = ("diagnosticcode", "rawreason", "reason", "details", "smtpresponse", "response",
               "message", "description", "bouncemessage")
# In a nested response object the words may also be its "content" (KumoMTA: {"code": 550,
# "enhanced_code": {...}, "content": "..."}): only there, since elsewhere it is the message body.
_NESTED_DIAGNOSTIC = (*_DIAGNOSTIC, "content")
_STATUS = ("status", "enhancedcode", "enhancedstatus")
_CODE = ("code", "errorcode", "smtpcode", "statuscode")
# The service's own outbound IP. Not SES's mail.sourceIp: that is whoever called the SES API.
_SENDING_IP = ("sendingip", "ip", "outboundip")
_REMOTE = ("mxhost", "remotemta", "remotemtaip")
_KIND = ("event", "eventtype", "notificationtype", "recordtype", "type", "bouncetype")
# Event kinds that are not a failure to deliver.
_NOT_FAILURES = frozenset({"delivered", "delivery", "open", "opened", "click", "clicked",
                           "processed", "send", "sent", "accepted", "injection", "reject_policy", "reception",
                           "unsubscribe", "unsubscribed", "subscriptionchange", "group_unsubscribe",
                           "group_resubscribe", "spamreport", "complaint", "renderingfailure"})
_SERVICES = (("amazonses", "amazon_ses"), ("sendgrid", "sendgrid"), ("mailgun", "mailgun"),
             ("postmark", "postmark"), ("msys", "sparkpost"), ("sparkpost", "sparkpost"))

_SHAPES = (('"bouncedrecipients"', "amazon_ses"), ('"sgeventid"', "sendgrid"),
           ('"deliverystatus"', "mailgun"), ('"recordtype"', "postmark"),
           ('"messageevent"', "sparkpost"), ('"egresssource"', "kumomta"))
_DELAYED_KINDS = frozenset({"deferred", "delayed", "softbounce", "transientfailure"})


@dataclass(frozen=True)
class Event:
    """One failed delivery read from an event: the recipient record and the event's own facts."""

    record: RecipientRecord
    service: str
    sending_ip: str | None
    sending_ip_field: str | None
    reporting_mta: str | None


def looks_like_json(data: bytes) -> bool:
    head = data.lstrip()[:1]
    return head in (b"{", b"[")


def parse(data: bytes) -> list[Event] | None:
    """The failed deliveries in a JSON document (or JSON Lines); None if it is not JSON."""
    text = data.decode("utf-8", "replace").strip()
    documents: list[Any] = []
    try:
        documents.append(json.loads(text))
    except (ValueError, RecursionError):  # RecursionError: hostile nesting, "[[[[..."
        for line in text.splitlines():
            if not line.strip():
                continue
            try:
                documents.append(json.loads(line))
            except (ValueError, RecursionError):
                return None
    if not documents:
        return None
    service = _service(text.lower())
    events: list[Event] = []
    for document in documents:
        for found in _events(_unwrap(document), service, 0):
            events.append(found)
            if len(events) >= MAX_EVENTS:
                return events
    return events


def _service(low: str) -> str:
    compact = low.replace("-", "").replace("_", "").replace(".", "")
    named = next((name for needle, name in _SERVICES if needle in compact), None)
    if named:
        return named
    # No name in the payload: each service's own field names give it away.
    return next((name for needle, name in _SHAPES if needle in compact), "json")


def _unwrap(document: Any) -> Any:
    """An SNS envelope carries the notification as a JSON string in "Message"."""
    if isinstance(document, dict):
        inner = document.get("Message")
        if isinstance(inner, str) and inner.lstrip().startswith("{"):
            try:
                return json.loads(inner)
            except ValueError:
                return document
    return document


def _key(name: str) -> str:
    return name.lower().replace("-", "").replace("_", "")


def _fields(obj: dict[str, Any]) -> dict[str, Any]:
    return {_key(str(k)): v for k, v in obj.items()}


def _first(fields: dict[str, Any], names: tuple[str, ...]) -> Any:
    for name in names:
        value = fields.get(name)
        if value not in (None, "", [], {}):
            return value
    return None


def _events(node: Any, service: str, depth: int,
            context: dict[str, Any] | None = None) -> Iterator[Event]:
    """Walk the document; `context` holds the facts of the enclosing objects (IP, kind, host)."""
    if depth > _MAX_DEPTH:
        return
    if isinstance(node, list):
        for item in node[:MAX_EVENTS]:
            yield from _events(item, service, depth + 1, context)
        return
    if not isinstance(node, dict):
        return
    fields = _fields(node)
    here = dict(context or {})
    _note(here, node, (("ip", _SENDING_IP), ("remote", _REMOTE), ("kind", _KIND),
                       ("reporting", ("reportingmta",))))
    for value in node.values():  # the facts of a nested object ("envelope") count for this one
        if isinstance(value, dict):
            _note(here, value, (("ip", _SENDING_IP), ("remote", _REMOTE)))
    recipient = _first(fields, _RECIPIENT)
    address = recipient if isinstance(recipient, str) and ADDRESS.fullmatch(recipient.strip()) else None
    diagnostic = _diagnostic(fields)
    if address and diagnostic and not _not_failure(here):
        yield _event(address.strip(), diagnostic, fields, here, service)
        return
    for name, value in node.items():
        if isinstance(value, (dict, list)) and _key(str(name)) not in ("headers", "commonheaders"):
            yield from _events(value, service, depth + 1, here)


def _note(facts: dict[str, Any], obj: dict[str, Any],
          groups: tuple[tuple[str, tuple[str, ...]], ...]) -> None:
    """Keep the first value of each group of field names, with the field name as written."""
    by_key = {_key(str(k)): (str(k), v) for k, v in obj.items()}
    for group, names in groups:
        if group in facts:
            continue
        for name in names:
            written, value = by_key.get(name, ("", None))
            if isinstance(value, (str, int)) and str(value).strip() and (
                    group != "ip" or _is_ip(str(value))):
                facts[group] = (str(value), written)
                break


def _diagnostic(fields: dict[str, Any]) -> str | None:
    """The remote server's words: a text field here, or in a nested status object (Mailgun)."""
    for name in _DIAGNOSTIC:
        value = fields.get(name)
        if isinstance(value, str) and value.strip() and _says_smtp(value):
            return value
    for value in fields.values():
        if isinstance(value, dict):
            sub = _fields(value)
            words = _first(sub, _NESTED_DIAGNOSTIC)
            if isinstance(words, str) and words.strip():
                code, status = _first(sub, _CODE), _enhanced(_first(sub, _STATUS))
                prefix = " ".join(str(p) for p in (code, status) if p and str(p) not in words)
                return f"{prefix} {words}".strip()
    return None


def _enhanced(status: Any) -> Any:
    """An enhanced status code given as its parts ({"class": 5, "subject": 7, "detail": 1})."""
    if isinstance(status, dict):
        parts = _fields(status)
        digits = [parts.get(name) for name in ("class", "subject", "detail")]
        if all(isinstance(d, int) for d in digits):
            return ".".join(str(d) for d in digits)
        return None
    return status


def _says_smtp(text: str) -> bool:
    reply = find_reply(text)
    return bool(reply.reply_code or reply.status) or len(text.split()) >= 3


def _not_failure(context: dict[str, Any]) -> bool:
    kind: tuple[str, str] | None = context.get("kind")
    return kind is not None and _key(kind[0]) in _NOT_FAILURES


def _event(address: str, diagnostic: str, fields: dict[str, Any], context: dict[str, Any],
           service: str) -> Event:
    text = diagnostic.strip()
    if text.lower().startswith("smtp;"):
        text = text[5:].strip()
    text = join_reply_lines(text.split("\n"))
    reply = find_reply(text)
    status = _first(fields, _STATUS)
    status_text = status if isinstance(status, str) and status[:1] in "245" and "." in status else None
    remote = context.get("remote")
    ip = context.get("ip")
    return Event(
        record=RecipientRecord(
            address=address, diagnostic=text, status=reply.status or status_text,
            reply_code=reply.reply_code, remote_mta=_host(remote[0]) if remote else None,
            action="delayed" if _key((context.get("kind") or ("",))[0]) in _DELAYED_KINDS else None,
        ),
        service=service,
        sending_ip=ip[0] if ip else None,
        sending_ip_field=ip[1] if ip else None,
        reporting_mta=_host(context["reporting"][0]) if context.get("reporting") else None,
    )


def _host(value: str) -> str | None:
    value = value.strip()
    if value.lower().startswith("dns;"):
        value = value[4:].strip()
    return value.lower() or None


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text.strip())
    except ValueError:
        return False
    return True


# PowerMTA accounting records: the header line names the columns; these are the ones read.
_ACCT_HEADER = b"type,"
_ACCT_FAILED = {"b": None, "bounce": None, "t": "delayed", "transient": "delayed", "tq": "delayed"}


def looks_like_accounting(data: bytes) -> bool:
    """A PowerMTA accounting CSV: a header line that starts with "type," and names the DSN fields."""
    head = data.lstrip()[:2048]
    if not head.startswith(_ACCT_HEADER):  # the first line starts so too: no line end in "type,"
        return False
    first = head.replace(b"\r", b"\n").split(b"\n", 1)[0]  # CRLF (RFC 4180), LF or CR line ends
    return first.startswith(_ACCT_HEADER) and b"rcpt" in first and b"dsnDiag" in first


def parse_accounting(data: bytes) -> list[Event]:
    """The failed deliveries (bounce and transient rows) of a PowerMTA accounting CSV."""
    text = data.decode("utf-8", "replace").lstrip().replace("\r\n", "\n").replace("\r", "\n")
    found: list[Event] = []
    try:
        for row in csv.DictReader(io.StringIO(text)):
            event = _accounting_event(row)
            if event is not None:
                found.append(event)
                if len(found) >= MAX_EVENTS:
                    break
    except csv.Error:  # a row the CSV reader cannot split: what came before it stands
        pass
    return found


def _accounting_event(row: dict[str | None, Any]) -> Event | None:
    kind = str(row.get("type") or "").strip().lower()
    address = str(row.get("rcpt") or "").strip()
    diagnostic = str(row.get("dsnDiag") or "").strip()
    if kind not in _ACCT_FAILED or not ADDRESS.fullmatch(address) or not diagnostic:
        return None
    fields = {"status": str(row.get("dsnStatus") or "").split(" ", 1)[0]}
    context: dict[str, Any] = {}
    remote = str(row.get("dsnMta") or "").strip()
    if remote:
        context["remote"] = (remote.split(" ", 1)[0], "dsnMta")  # "mx.example.net (203.0.113.25)"
    source_ip = str(row.get("dlvSourceIp") or "").strip()
    if _is_ip(source_ip):
        context["ip"] = (source_ip, "dlvSourceIp")
    if _ACCT_FAILED[kind]:
        context["kind"] = ("deferred", "type")
    return _event(address, diagnostic, fields, context, "powermta")

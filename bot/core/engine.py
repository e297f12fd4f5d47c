"""From a parsed Bounce to a Diagnosis: reasons, the rejecting party, the list, the route.

Decision order for each recipient's reason (first that speaks wins):
  1. the message kind: feedback report, auto-reply, a delivered/relayed DSN;
  2. the ordered provider rules (rules.toml) over the unwrapped diagnostic;
  3. the generic phrases (reasons.toml), in their order;
  4. the enhanced status code (statuses.toml), full code then class.subject;
  5. what the format itself said, then delay (Action: delayed) as expiry, else "onhold".
The headline recipient is the first whose reason points at the sender's side; the receiver and
the list come from the deciding rule, else from the text, hosts and domains (providers.toml).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable

from bot.core.bounce.text import IPV4, IPV6, squash
from bot.core.knowledge import Knowledge, Provider, Rule
from bot.core.model import (
    NO_ROUTE,
    SENDER_REASONS,
    Bounce,
    DelistMethod,
    DelistRoute,
    Diagnosis,
    Reason,
    Recipient,
    RecipientRecord,
)
from bot.core.prefilter import lowered, may_match, needles
from bot.core.verdict import describe

# Where a rejection names the refused IP; the first pattern that finds a public address wins.
_IP_IN_REJECTION = (
    re.compile(r"Client host \[([0-9a-f.:]+)\]", re.I),
    re.compile(r"banned sending IP \[?([0-9a-f.:]+)\]?", re.I),
    re.compile(r"banned sender\s*\[?([0-9a-f.:]+)\]?", re.I),
    re.compile(r"messages from \[?([0-9a-f.:]+)\]?", re.I),
    re.compile(r"(?:from|sending) IP(?: address)?[ :]+\[?([0-9a-f.:]+)\]?", re.I),
    re.compile(r"\byour IP address[ :]+\[?([0-9a-f.:]+)\]?", re.I),
    re.compile(r"\bIP[=:]\s*\[?([0-9a-f.:]+)\]?", re.I),
    re.compile(r"[?&](?:ip|ip_address|v)=([0-9a-f.:]+)", re.I),
    re.compile(r"(?:lookup|query|bl\.shtml)[/?]([0-9a-f.:]+)", re.I),
    re.compile(r"\[([0-9a-f.:]+)\]"),
    re.compile(r"\b([0-9]{1,3}(?:\.[0-9]{1,3}){3})\b is (?:listed|blocked|in a black list)", re.I),
    re.compile(r"(?:listed|blocked)[^.]*?\b([0-9]{1,3}(?:\.[0-9]{1,3}){3})\b", re.I),
)
_RECEIVED_BY_IP = re.compile(r"\bby\s+\S+\s+\(?\[?([0-9a-f.:]+)\]?\)?", re.I)
_X_IP_HEADERS = re.compile(
    r"^(?:X-Originating-IP|X-ACCEPT-IP|X-Sender-IP|X-Source-IP)\s*:\s*\[?([0-9a-f.:]+)\]?|"
    r"^X-SES-Outgoing\s*:\s*[\d.]+-([0-9a-f.:]+)",  # Amazon SES: "2025.10.20-198.51.100.210"
    re.I | re.M,
)
_LIST_NAME = re.compile(
    r"(?:blocked using|listed (?:in|at|on|by)|in a black ?list at|blacklisted (?:by|at|on)|"
    r"rejected by|refused by)\s+([a-z0-9][\w.-]*\.[a-z]{2,})",
    re.I,
)
_RECEIVED = re.compile(r"^Received:.*(?:\n[ \t].*)*", re.M | re.I)
_IP_NEEDLES = tuple(needles(p) for p in _IP_IN_REJECTION)
_X_IP_NEEDLES = needles(_X_IP_HEADERS)
_DELAYED = frozenset({"delayed"})
_DELIVERED = frozenset({"delivered", "relayed", "expanded"})


def is_public_ip(text: str) -> bool:
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return False
    return ip.is_global and not ip.is_multicast


def _any_ip(text: str) -> str | None:
    for match in (*IPV4.finditer(text), *IPV6.finditer(text)):
        try:
            ipaddress.ip_address(match.group(0))
        except ValueError:
            continue
        return match.group(0)
    return None


def rejected_ip(diagnostic: str) -> str | None:
    """The IP the rejection names as refused, if it names one."""
    low = lowered(diagnostic)
    for pattern, found in zip(_IP_IN_REJECTION, _IP_NEEDLES, strict=True):
        if not may_match(found, low):
            continue
        for match in pattern.finditer(diagnostic):
            candidate = match.group(1).rstrip(".:")
            try:
                ipaddress.ip_address(candidate)
            except ValueError:
                continue
            return candidate
    return None


def ip_from_headers(headers: str) -> tuple[str | None, str | None]:
    """The sending IP from the returned message's headers, and which header said so."""
    low = lowered(headers)
    match = _X_IP_HEADERS.search(headers) if may_match(_X_IP_NEEDLES, low) else None
    ip = match and (match.group(1) or match.group(2))
    if match and ip and _valid_ip(ip):
        name = match.group(0).split(":")[0].strip()
        return ip, f"returned headers ({name})"
    if not may_match(("received:",), low):
        return None, None
    for received in _RECEIVED.findall(headers):
        by = _RECEIVED_BY_IP.search(received)
        if by and _valid_ip(by.group(1)) and is_public_ip(by.group(1)):
            return by.group(1), "returned headers (Received: by)"
    return None, None


def _valid_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _domain(address: str | None) -> str | None:
    if not address or "@" not in address:
        return None
    return address.rsplit("@", 1)[1].strip(">.").lower() or None


def match_rule(knowledge: Knowledge, diagnostic: str, status: str | None) -> Rule | None:
    low = lowered(diagnostic)
    rules = knowledge.rules
    for i in knowledge.rule_candidates.of(low):
        if rules[i].matches(diagnostic, low, status):
            return rules[i]
    return None


def classify(knowledge: Knowledge, record: RecipientRecord, bounce: Bounce) -> tuple[Reason, Rule | None]:
    if bounce.format == "arf":
        return Reason.FEEDBACK, None
    if bounce.format == "rfc3834":
        return Reason.VACATION, None
    if record.action in _DELIVERED:
        return Reason.DELIVERED, None
    diagnostic = record.diagnostic
    rule = match_rule(knowledge, diagnostic, record.status)
    if rule:
        return rule.reason, rule
    low = lowered(diagnostic)
    for phrase in knowledge.phrases:
        if phrase.matches(diagnostic, low):
            return _after_data(phrase.reason, record), None
    if record.action == "failed" and (record.status or "").startswith("4."):
        # A temporary error that ended in failure: the queue lifetime ran out.
        return Reason.EXPIRED, None
    by_status = _status_reason(knowledge, record.status)
    if by_status:
        return by_status, None
    if record.hint:
        return record.hint, None
    if record.action in _DELAYED:
        return Reason.EXPIRED, None
    return Reason.ONHOLD, None


def _after_data(reason: Reason, record: RecipientRecord) -> Reason:
    """A "user unknown" given only after DATA is a content filter, not a missing mailbox."""
    if reason is Reason.USERUNKNOWN and (record.command or "").startswith(("DATA", "END")):
        return Reason.FILTERED
    return reason


def _status_reason(knowledge: Knowledge, status: str | None) -> Reason | None:
    if not status:
        return None
    if status in knowledge.statuses:
        return knowledge.statuses[status]
    return knowledge.statuses.get(status.rsplit(".", 1)[0])


def _providers_named(knowledge: Knowledge, text: str, kinds: Iterable[str]) -> Provider | None:
    return knowledge.named_in(text, lowered(text), tuple(kinds))


def find_blocklist(knowledge: Knowledge, diagnostic: str) -> tuple[Provider | None, str | None]:
    """The list a rejection names: a known provider, else the zone name it quotes."""
    named = _LIST_NAME.search(diagnostic)
    if named:
        zone = named.group(1).lower()
        provider = _providers_named(knowledge, zone, ("dnsbl", "reputation", "gateway"))
        if provider:
            return provider, zone
    provider = _providers_named(knowledge, diagnostic, ("dnsbl", "reputation"))
    if provider:
        return provider, None
    return None, named.group(1).lower() if named else None


def find_receiver(knowledge: Knowledge, bounce: Bounce, record: RecipientRecord) -> Provider | None:
    """Who rejected: the rejection's own markers, then the remote host, then the domain."""
    receivers = ("receiver", "gateway")
    named = _providers_named(knowledge, record.diagnostic, receivers)
    if named:
        return named
    hosts = [h for h in (record.remote_mta, bounce.reporting_mta) if h]
    if hosts:
        by_host = knowledge.by_host(hosts[0], lowered(hosts[0]), receivers)
        if by_host:
            return by_host
    domain = _domain(record.address)
    return knowledge.by_domain(domain, receivers) if domain else None


def _headline(recipients: list[Recipient], records: list[RecipientRecord]) -> int:
    for i, recipient in enumerate(recipients):
        if recipient.reason in SENDER_REASONS:
            return i
    for i, record in enumerate(records):
        if record.action not in _DELIVERED:
            return i
    return 0


def _route(rule: Rule | None, acting: Provider | None) -> DelistRoute:
    if acting is None:
        return NO_ROUTE
    if rule and rule.route and rule.route in acting.routes:
        return acting.routes[rule.route]
    return acting.route


def diagnose(knowledge: Knowledge, bounce: Bounce) -> Diagnosis:
    if not bounce.is_bounce:
        return Diagnosis(source=bounce.source, is_bounce=False,
                         not_bounce_reason=bounce.not_bounce_reason)
    records = list(bounce.recipients)
    decided = [classify(knowledge, r, bounce) for r in records]
    recipients = [
        Recipient(address=r.address, status=r.status, reply_code=r.reply_code, reason=reason,
                  remote_mta=r.remote_mta, diagnostic=r.diagnostic, action=r.action)
        for r, (reason, _) in zip(records, decided, strict=True)
    ]
    head = _headline(recipients, records)
    record, (reason, rule) = records[head], decided[head]
    return _conclude(knowledge, bounce, record, recipients, reason, rule)


def _conclude(knowledge: Knowledge, bounce: Bounce, record: RecipientRecord,
              recipients: list[Recipient], reason: Reason, rule: Rule | None) -> Diagnosis:
    diagnostic = record.diagnostic
    receiver = knowledge.providers.get(rule.receiver) if rule and rule.receiver else None
    receiver = receiver or find_receiver(knowledge, bounce, record)
    blocklist: Provider | None = None
    zone: str | None = None
    if rule and rule.blocklist and rule.blocklist != "?":
        blocklist = knowledge.providers[rule.blocklist]
    elif reason in (Reason.BLOCKED, Reason.BADREPUTATION) or (rule and rule.blocklist == "?"):
        blocklist, zone = find_blocklist(knowledge, diagnostic)
    sending_ip, ip_source = _sending_ip(bounce, diagnostic)
    acting = blocklist or receiver
    route = _route(rule, acting) if reason in SENDER_REASONS or rule else NO_ROUTE
    if route is NO_ROUTE and reason in (Reason.AUTHFAILURE, Reason.REQUIREPTR):
        route = DelistRoute(method=DelistMethod.FIX_SENDER, template="fix_sender")
    timers = _timers(rule, acting)
    verdict, next_step, warnings = describe(
        reason=reason, rule=rule, receiver=receiver, blocklist=blocklist, zone=zone,
        route=route, ip=sending_ip, wait_hours=timers[0], temporary=_is_temporary(record, rule),
        status=record.status, recipient_domain=_domain(record.address),
    )
    return Diagnosis(
        source=bounce.source,
        is_bounce=True,
        format=bounce.format,
        recipients=tuple(recipients),
        sending_ip=sending_ip,
        sending_ip_source=ip_source,
        sender_domain=_domain(bounce.original_sender),
        recipient_domain=_domain(record.address),
        receiver=receiver.id if receiver else None,
        blocklist=blocklist.id if blocklist else None,
        reason=reason,
        rule=rule.id if rule else None,
        delist=route,
        expected_wait_hours=timers[0] if route.method is not DelistMethod.NONE else None,
        overdue_after_hours=timers[1] if route.method is not DelistMethod.NONE else None,
        propagation_hours=acting.propagation_hours if acting else None,
        evidence=squash(diagnostic) or None,
        verdict=verdict,
        next_step=next_step,
        warnings=tuple(warnings),
        temporary=_is_temporary(record, rule),
        feedback_type=bounce.feedback_type,
        extra={"zone": zone} if zone else {},
    )


def _timers(rule: Rule | None, acting: Provider | None) -> tuple[float | None, float | None]:
    wait = rule.wait_hours if rule and rule.wait_hours is not None else None
    overdue = rule.overdue_hours if rule and rule.overdue_hours is not None else None
    if acting is not None:
        wait = acting.wait_hours if wait is None else wait
        overdue = acting.overdue_hours if overdue is None else overdue
    return wait, overdue


def _is_temporary(record: RecipientRecord, rule: Rule | None) -> bool:
    if rule and rule.temporary:
        return True
    code = record.reply_code or (record.status or "")[:1]
    return code.startswith("4") or record.action == "delayed"


def _sending_ip(bounce: Bounce, diagnostic: str) -> tuple[str | None, str | None]:
    ip = rejected_ip(diagnostic)
    if ip:
        return ip, "rejection text"
    return ip_from_headers(bounce.original_headers)

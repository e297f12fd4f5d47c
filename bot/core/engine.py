"""From a parsed Bounce to a Diagnosis: reasons, the rejecting party, the list, the route.

Decision order for each recipient's reason (first that speaks wins):
  1. the message kind: feedback report, auto-reply, a delivered/relayed DSN (or a 2.x.x status);
  2. the ordered provider rules (rules.toml) over the unwrapped diagnostic;
  3. what the bounce's writer states (a format's heading, a dedicated format), unless the
     enhanced status code names another reason;
  4. an X-Unix diagnostic (RFC 3464 diagnostic type): the local delivery program failed;
  5. the first pass: reasons that either the status code (statuses.toml) or the generic phrases
     (reasons.toml) can decide, mailbox and message states before the sender and its IP, with
     the SMTP command weighed in (RFC 5321: "user unknown" after DATA is a filter's verdict, a
     refusal of MAIL FROM refuses the sender);
  6. a precise status code; then the phrases only words decide; then a vague status code;
  7. the status class (X.6 content, X.7 security), the reply code (501-504 syntax, 451 local
     error), the format's default, Action: delayed as expiry, a refused greeting as a block;
  8. "onhold" when there are words no rule places, "undefined" when there are none.
The headline recipient is the first whose reason points at the sender's side; the receiver and
the list come from the deciding rule, else from the text, hosts and domains (providers.toml).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable, Iterator

from bot.core.bounce import says_returned
from bot.core.bounce.text import IPV4, IPV6, squash
from bot.core.knowledge import Knowledge, Provider, Rule
from bot.core.model import (
    LISTED_REASONS,
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
from bot.core.prefilter import first_match, lowered, needles, starts
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
    re.compile(r"\[(?:IPv6:)?([0-9a-f.:]+)\]", re.I),  # RFC 5321 address literal: [IPv6:2001:db8::7]
    re.compile(r"\b([0-9]{1,3}(?:\.[0-9]{1,3}){3})\b,? (?:is |was |has been )?"
               r"(?:listed|blocked|in a black ?list|found on|on (?:our|a) block)", re.I),
    re.compile(r"(?:listed|blocked)[^.]*?\b([0-9]{1,3}(?:\.[0-9]{1,3}){3})\b", re.I),
    # "Connections will not be accepted from 203.0.113.5" (Yahoo), "your IP (203.0.113.5)" (Free),
    # "521< 203.0.113.5 >_is_blocked" (AT&T): the address stands right after the words.
    re.compile(r"(?:accepted|refused|rejected|connections?) from (?:IP )?\(?\[?([0-9a-f.:]+\d)\]?", re.I),
    re.compile(r"\byour IP(?: address)?\s*\(([0-9a-f.:]+)\)", re.I),
    re.compile(r"<\s*([0-9]{1,3}(?:\.[0-9]{1,3}){3})\s*>"),
)
# The host name is atomic, (?>\S+): the white space that must follow it cannot follow a shorter
# part of it, so the regex engine is spared trying each (same matches, same groups).
_RECEIVED_BY_IP = re.compile(r"\bby\s+(?>\S+)\s+\(?\[?([0-9a-f.:]+)\]?\)?", re.I)
_X_IP_HEADERS = re.compile(
    r"^(?:X-Originating-IP|X-ACCEPT-IP|X-Sender-IP|X-Source-IP)\s*:\s*\[?([0-9a-f.:]+)\]?|"
    r"^X-SES-Outgoing\s*:\s*[\d.]+-([0-9a-f.:]+)",  # Amazon SES: "2025.10.20-198.51.100.210"
    re.I | re.M,
)
_LIST_NAME = re.compile(
    r"(?:blocked using|listed (?:in|at|on|by)|in a black ?list at|blacklisted (?:by|at|on)|"
    r"in an? (?:RBL|DNSBL) (?:on|at)|rejected by|refused by)\s+([a-z0-9][\w.-]*\.[a-z]{2,})",
    re.I,
)
# The reject_rbl wording of Postfix, Exim and most MTAs: a DNS block list answered for the client
# ("blocked using <zone>"; cPanel's Exim: "is in an RBL on <zone>").
_DNSBL_HIT = re.compile(r"(?:blocked using|in an? (?:RBL|DNSBL) (?:on|at)) [a-z0-9][\w-]*(?:\.[\w-]+)+", re.I)
_RECEIVED = re.compile(r"^Received:.*(?:\n[ \t].*)*", re.M | re.I)
# Each pattern with its needles and the literals its matches start with. These patterns run
# one after another on each diagnostic that quotes an address, so even a needle of one or two
# characters ("[", "ip", "=") is worth its test where it spares a regex search.
_IP_SCREENED = tuple((p, needles(p, shortest=1), starts(p)) for p in _IP_IN_REJECTION)
_DELAYED = frozenset({"delayed"})
_RECIPIENT_STATES = frozenset({Reason.USERUNKNOWN, Reason.MAILBOXFULL, Reason.SUSPEND, Reason.HASMOVED,
                               Reason.HOSTUNKNOWN, Reason.NOTACCEPT})
_THROTTLED = frozenset({Reason.RATELIMITED, Reason.TOOMANYCONN, Reason.SPEEDING})
_FIX_SENDER = DelistRoute(method=DelistMethod.FIX_SENDER, template="fix_sender")
# Enum members named in the functions below, looked up once. In Python 3.11 `Reason.X` in a
# function body goes through the enum metaclass's attribute hook (EnumType.__getattr__) each
# time, four times the cost of a global name, and one diagnosis names some fifty of them.
_BLOCKED = Reason.BLOCKED
_CONTENTERROR = Reason.CONTENTERROR
_DELIVERED = Reason.DELIVERED
_EXCEEDLIMIT = Reason.EXCEEDLIMIT
_EXPIRED = Reason.EXPIRED
_FEEDBACK = Reason.FEEDBACK
_FILTERED = Reason.FILTERED
_HOSTUNKNOWN = Reason.HOSTUNKNOWN
_MAILBOXFULL = Reason.MAILBOXFULL
_MAILERERROR = Reason.MAILERERROR
_MESGTOOBIG = Reason.MESGTOOBIG
_NETWORKERROR = Reason.NETWORKERROR
_NORELAYING = Reason.NORELAYING
_NOTACCEPT = Reason.NOTACCEPT
_ONHOLD = Reason.ONHOLD
_REJECTED = Reason.REJECTED
_SECURITYERROR = Reason.SECURITYERROR
_SPAMDETECTED = Reason.SPAMDETECTED
_SUSPEND = Reason.SUSPEND
_SYNTAXERROR = Reason.SYNTAXERROR
_SYSTEMERROR = Reason.SYSTEMERROR
_UNDEFINED = Reason.UNDEFINED
_USERUNKNOWN = Reason.USERUNKNOWN
_VACATION = Reason.VACATION
_VIRUSDETECTED = Reason.VIRUSDETECTED
_NOT_ONLY_UNKNOWN = (Reason.NORELAYING, Reason.BLOCKED, Reason.MAILBOXFULL, Reason.HASMOVED,
                     Reason.REJECTED, Reason.NOTACCEPT, Reason.RATELIMITED)  # see _user_unknown
_NO_OTHER_VERDICT = frozenset({None, Reason.ONHOLD, Reason.SECURITYERROR, Reason.SYSTEMERROR})
_SENDERS_FIX = frozenset({Reason.AUTHFAILURE, Reason.REQUIREPTR})
_FORMS = frozenset({DelistMethod.WEB, DelistMethod.EMAIL})
_NO_METHOD = DelistMethod.NONE
_NOT_THE_PROVIDERS = frozenset({DelistMethod.NONE, DelistMethod.FIX_SENDER, DelistMethod.CONTACT_RECIPIENT})


def _cannot_be_ip(text: str) -> bool:
    """ipaddress.ip_address(text) would raise: an IPv6 address holds a colon (ipaddress splits
    it at colons and wants three parts at least) and an IPv4 one, without a colon, exactly three
    dots (four parts). Said here with two C calls instead of two exceptions raised and caught
    ("by host (8.14.4/8.14.4)" and "5.7.1" give many such candidates)."""
    return ":" not in text and text.count(".") != 3


def _valid_ip(text: str) -> bool:
    if _cannot_be_ip(text):
        return False
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def is_public_ip(text: str) -> bool:
    if _cannot_be_ip(text):
        return False  # neither IPv4 nor IPv6 (ipaddress would raise twice to say so)
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return False
    return ip.is_global and not ip.is_multicast


def _any_ip(text: str) -> str | None:
    for match in (*IPV4.finditer(text), *IPV6.finditer(text)):
        if _valid_ip(match.group(0)):
            return match.group(0)
    return None


# What every IPv4 address holds ("d.d.d.d", ASCII digits: ipaddress takes no others, and every
# pattern below reads its digits as [0-9]); an IPv6 address holds two colons at least. [0-9] is a
# range test per character, where \d looks each one up in the Unicode tables.
_DOTTED = re.compile(r"[0-9]\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]")


# What every IPv6 address holds: ipaddress takes one with "::" or else eight (or six and an IPv4
# address) hextets of ASCII hex digits, so a colon is followed by a hex digit or a colon somewhere.
_V6_COLON = re.compile(r":[0-9a-fA-F:]")


def rejected_ip(diagnostic: str, low: str | None = None) -> str | None:
    """The IP the rejection names as refused, if it names one (`low`: prefilter.lowered(diagnostic))."""
    first = _DOTTED.search(diagnostic)
    dotted = first is not None
    if not dotted and (diagnostic.count(":") < 2 or _V6_COLON.search(diagnostic) is None):
        # No address in it to find: every pattern's candidate is a part of the text, and without
        # "d.d.d.d" only an IPv6 one could be valid ("550 5.7.1 <a@b.example>: Recipient address
        # rejected: ..." has colons, none before a hex digit).
        return None
    if low is None:
        low = lowered(diagnostic)
    for pattern, found, start in _IP_SCREENED:
        if found is not None and low is not None and not any(map(low.__contains__, found)):
            continue  # may_match(found, low), inline: this runs for every pattern
        # pattern.finditer(diagnostic), each match tried only where one can start: every match
        # holds an address, so none is empty and the next one is searched for from its end.
        match = first_match(pattern, diagnostic, low, start)
        while match is not None:
            candidate = match.group(1).rstrip(".:")
            if _valid_ip(candidate):
                return candidate
            match = first_match(pattern, diagnostic, low, start, max(match.end(), match.start() + 1))
    if first is None:
        return None
    # No phrase names it, but the reply quotes exactly one public address outside a link
    # ("resimta-ch2-18v.sys.comcast.net 203.0.113.5 found on one or more DNSBLs"): the client's.
    # In an ASCII text (where IPV4's \d is [0-9]) every IPV4 match holds a _DOTTED match that
    # starts at most two characters after it (the last digit of its first part), so none starts
    # before `first` less two: the scan starts there (its look-behind still sees the text before).
    scan_from = max(first.start() - 2, 0) if diagnostic.isascii() else 0
    quoted = {m.group(0) for m in IPV4.finditer(diagnostic, scan_from)
              if diagnostic[m.start() - 1:m.start()] not in ("/", "=") and _external(m.group(0))}
    return quoted.pop() if len(quoted) == 1 else None


# Addresses a receiver would never be refusing mail from: the quoting host's own network.
_INTERNAL = tuple(ipaddress.ip_network(n) for n in (
    "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
    "192.168.0.0/16", "224.0.0.0/3"))


def _external(text: str) -> bool:
    try:
        address = ipaddress.ip_address(text)
    except ValueError:  # "03.0.113.9": a leading zero is not an address (nor octal, here)
        return False
    return not any(address in net for net in _INTERNAL)


def ip_from_headers(headers: str) -> tuple[str | None, str | None]:
    """The sending IP from the returned message's headers, and which header said so."""
    match = _x_ip_header(headers)
    ip = match and (match.group(1) or match.group(2))
    if match and ip and _valid_ip(ip):
        name = match.group(0).split(":")[0].strip()
        return ip, f"returned headers ({name})"
    for start, end in _received_fields(headers):
        by = _received_by(headers, start, end)
        if by and is_public_ip(by.group(1)):  # an invalid address is not public either
            return by.group(1), "returned headers (Received: by)"
    return None, None


# A line (after its newline) that starts with a header name _X_IP_HEADERS knows, and a Received
# line. Both start with the uncased literal "\n", which the regex engine skips to in C.
_X_IP_LINE = re.compile(r"\n(?:X-Originating-IP|X-ACCEPT-IP|X-Sender-IP|X-Source-IP|X-SES-Outgoing)", re.I)
_RECEIVED_LINE = re.compile(r"\nReceived:", re.I)


def _x_ip_header(headers: str) -> re.Match[str] | None:
    """_X_IP_HEADERS.search(headers), the regex tried only where a line starts with one of its
    header names: each of its alternatives starts a line (^ with re.M: the text's start or just
    after a newline) with one of those names, matched with the same flags as _X_IP_LINE, and a
    search finds the match at the first position where there is one. The many other X- lines
    (X-Google-*, X-MS-*) are not tried one by one, and the headers need not be lowered."""
    match = _X_IP_HEADERS.match(headers)  # the first line
    if match:
        return match
    line = _X_IP_LINE.search(headers)  # the others, each after its newline
    while line is not None:
        match = _X_IP_HEADERS.match(headers, line.start() + 1)
        if match:
            return match
        line = _X_IP_LINE.search(headers, line.start() + 1)
    return None


def _received_fields(headers: str) -> Iterator[tuple[int, int]]:
    """Where each Received field is (_RECEIVED.finditer), trying the regex only where a line
    starts with "Received:" (any case, as _RECEIVED matches it), one field at a time: the first
    with a public `by` address ends it. A field's continuation lines start with a space or a
    tab, so no Received line lies inside another's field."""
    at: int | None = 0
    while at is not None:
        match = _RECEIVED.match(headers, at)
        if match:
            yield match.span()
        line = _RECEIVED_LINE.search(headers, at)
        at = line.start() + 1 if line else None


def _received_by(headers: str, start: int, end: int) -> re.Match[str] | None:
    """_RECEIVED_BY_IP.search(headers[start:end]), the regex tried only where the lowered field
    holds "by": a case-insensitive match starts with those two letters and nowhere else. (A
    field starts with "Received:", so the word boundary before "by" lies inside the field.)
    Only an ASCII field is lowered (same offsets, and re.IGNORECASE matches "b" and "y" there
    exactly as lower() does); another is searched by the regex itself."""
    field = headers[start:end]
    if not field.isascii():
        return _RECEIVED_BY_IP.search(headers, start, end)
    low = field.lower()
    at = low.find("by")
    while at != -1:
        match = _RECEIVED_BY_IP.match(headers, start + at, end)
        if match:
            return match
        at = low.find("by", at + 1)
    return None


def _domain(address: str | None) -> str | None:
    if not address or "@" not in address:
        return None
    return address.rsplit("@", 1)[1].strip(">.").lower() or None


def match_rule(knowledge: Knowledge, diagnostic: str, status: str | None,
               low: str | None = None) -> Rule | None:
    """The first rule that matches; `low` is prefilter.lowered(diagnostic), if already known."""
    if low is None:
        low = lowered(diagnostic)
    rules = knowledge.rules
    for i in knowledge.rule_candidates.of(low):
        if rules[i].matches(diagnostic, low, status):
            return rules[i]
    return None


_Phrases = Callable[[Reason], bool]  # does a generic phrase of this reason occur in the diagnostic?


def _phrases(knowledge: Knowledge, text: str, low: str | None) -> _Phrases:
    """Which reasons the generic phrases give one diagnostic, asked reason after reason.

    One sweep of the needles (the scan the rules' sweep already made) tells which reasons'
    phrases can occur in the text at all; asking about any other reason is then a set lookup
    instead of a call into the phrase index, with the same answer: False. (A closure, and the
    phrase index's own `says` rather than Knowledge.says, which only passes the question on: the
    judgement asks some fifteen times per diagnostic.)
    """
    possible = knowledge.may_say(low)
    says = knowledge.phrase_groups.says

    def said(reason: Reason) -> bool:
        return reason in possible and says(reason, text, low)

    return said


# Reasons the enhanced status code or the text can each decide, most specific first: the state of
# the mailbox and the message before the recipient, the recipient before the sender, the sender's
# address before its IP (a block names the IP last because so many rejections mention it).
_FIRST_PASS = (
    Reason.MAILBOXFULL, Reason.MESGTOOBIG, Reason.EXCEEDLIMIT, Reason.SUSPEND, Reason.HASMOVED,
    Reason.NORELAYING, Reason.AUTHFAILURE, Reason.USERUNKNOWN, Reason.FILTERED, Reason.REQUIREPTR,
    Reason.NOTCOMPLIANTRFC, Reason.BADREPUTATION, Reason.CONTENTERROR, Reason.REJECTED,
    Reason.HOSTUNKNOWN, Reason.SPAMDETECTED, Reason.RATELIMITED, Reason.TOOMANYCONN, Reason.BLOCKED,
)
# Reasons only the text decides, tried when the status code names none or a vague one.
_SECOND_PASS = (
    Reason.MAILBOXFULL, Reason.AUTHFAILURE, Reason.BADREPUTATION, Reason.RATELIMITED,
    Reason.VIRUSDETECTED, Reason.SPAMDETECTED, Reason.POLICYVIOLATION, Reason.NORELAYING,
    Reason.SYSTEMERROR, Reason.NETWORKERROR, Reason.SUSPEND, Reason.CONTENTERROR, Reason.SYSTEMFULL,
    Reason.NOTACCEPT, Reason.EXPIRED, Reason.FAILEDSTARTTLS, Reason.SECURITYERROR, Reason.MAILERERROR,
    Reason.SYNTAXERROR,
)
# What a status code says too vaguely to stand against the text (RFC 3463: X.7.1 "delivery not
# authorized" covers any policy; X.4.x and X.3.0 any network or system trouble; X.1.1 is used for
# any refusal at RCPT by some MTAs).
_VAGUE = frozenset({Reason.SYSTEMERROR, Reason.SECURITYERROR, Reason.EXPIRED, Reason.NETWORKERROR,
                    Reason.HOSTUNKNOWN, Reason.USERUNKNOWN, Reason.ONHOLD})
# SMTP commands sent before DATA (RFC 5321 §3.3): a refusal there cannot be about the content.
_BEFORE_DATA = frozenset({"CONN", "EHLO", "HELO", "STARTTLS", "AUTH", "MAIL", "RCPT"})
_GREETING = frozenset({"CONN", "EHLO", "HELO"})
_ACCESS_DENIED = re.compile(r"access denied", re.I)


def classify(knowledge: Knowledge, record: RecipientRecord, bounce: Bounce,
             low: str | None = None) -> tuple[Reason, Rule | None]:
    """The recipient's reason and the rule that decided it; `low`: prefilter.lowered(diagnostic)."""
    if bounce.format == "arf":
        return _FEEDBACK, None
    if bounce.format == "rfc3834":
        return _VACATION, None
    if record.delivered or (record.status or "").startswith("2."):
        return _DELIVERED, None
    diagnostic = record.diagnostic
    if low is None:
        low = lowered(diagnostic)
    rule = match_rule(knowledge, diagnostic, record.status, low)
    if rule:
        return rule.reason, rule
    if record.hint and _status_reason(knowledge, record.status) in (None, record.hint):
        # The bounce's writer stated the reason (a heading, a dedicated format) and the status
        # code does not say otherwise.
        return record.hint, None
    return _judge(knowledge, record, low), None


def _judge(knowledge: Knowledge, record: RecipientRecord, low: str | None) -> Reason:
    """The generic judgement: status code, SMTP command and phrases weighed together."""
    text = record.diagnostic
    says = _phrases(knowledge, text, low)
    by_status = _status_reason(knowledge, record.status)
    mailer = (record.diagnostic_type or "").startswith("x-unix")
    if mailer:
        # A local delivery program's exit status (RFC 3464 diagnostic type X-Unix), not SMTP;
        # X.3.x says the mail system itself failed rather than the program.
        if says(_MAILBOXFULL):
            return _MAILBOXFULL
        return _SYSTEMERROR if (record.status or "")[1:3] == ".3" and by_status else _MAILERERROR
    command = (record.command or "").upper()
    for reason, weigh in _FIRST_PASS_WEIGHED:
        # Does the status code or the text say `reason`, given the SMTP command it answered?
        if weigh(record, command, by_status, says) if weigh else by_status is reason or says(reason):
            return reason
    if by_status and by_status not in _VAGUE:
        return by_status
    for reason in _SECOND_PASS:
        if says(reason):
            return reason
    if by_status:
        return by_status
    subject = (record.status or "")[1:3]
    if subject == ".6":
        return _CONTENTERROR
    if subject == ".7":
        return _SECURITYERROR
    if _syntax_reply(record.reply_code):
        return _SYNTAXERROR
    if record.reply_code == "451" and (record.status or "x.0.0")[1:] == ".0.0":
        # RFC 5321 §4.2.2: 451 "Requested action aborted: local error in processing", and the
        # status code (if any) says nothing more.
        return _SYSTEMERROR
    if record.hint:
        return record.hint
    if record.action in _DELAYED:
        return _EXPIRED
    if (record.command or "") in _GREETING:
        return _BLOCKED  # refused at the greeting: the client itself is not welcome
    return _ONHOLD if text.strip() else _UNDEFINED  # words we cannot place / no words


# The reasons of the first pass that take more than "the status code or a phrase says it": each
# weighs the SMTP command, the status code, other phrases or the reply code in its own way.
_Weigh = Callable[[RecipientRecord, str, Reason | None, _Phrases], bool]


def _user_unknown(record: RecipientRecord, command: str, by_status: Reason | None, says: _Phrases) -> bool:
    if by_status is _USERUNKNOWN:
        # X.1.1 is also sent for refusals that are not about the mailbox.
        return not any(map(says, _NOT_ONLY_UNKNOWN))  # map: lazy as a generator, without its frame
    return command == "RCPT" and says(_USERUNKNOWN)


def _filtered(record: RecipientRecord, command: str, by_status: Reason | None, says: _Phrases) -> bool:
    # "No such user" given after DATA (or when the command is not known) comes from a filter
    # that read the message, not from the recipient check at RCPT.
    if by_status is _FILTERED:
        return says(_USERUNKNOWN) or says(_FILTERED)
    if command in _BEFORE_DATA:
        return False
    return says(_FILTERED) or says(_USERUNKNOWN)


def _rejected(record: RecipientRecord, command: str, by_status: Reason | None, says: _Phrases) -> bool:
    if by_status is _REJECTED:
        return True
    if command == "MAIL":  # RFC 5321: a refusal of MAIL FROM is a refusal of the sender
        return says(_REJECTED) or bool(_ACCESS_DENIED.search(record.diagnostic))
    if command == "DATA":
        return by_status is not _USERUNKNOWN and says(_REJECTED)
    if by_status in _NO_OTHER_VERDICT:
        return says(_REJECTED)
    return False


def _host_unknown(record: RecipientRecord, command: str, by_status: Reason | None, says: _Phrases) -> bool:
    if by_status is _HOSTUNKNOWN:  # X.4.4 unable to route: DNS trouble or no MX at all
        return not (says(_NETWORKERROR) or says(_NOTACCEPT))
    return says(_HOSTUNKNOWN)


def _content_error(record: RecipientRecord, command: str, by_status: Reason | None, says: _Phrases) -> bool:
    return says(_CONTENTERROR)  # X.6.x alone is weighed after spam and policy words


def _spam(record: RecipientRecord, command: str, by_status: Reason | None, says: _Phrases) -> bool:
    if says(_VIRUSDETECTED):
        return False  # "virus detected; content rejected" names the more specific finding
    if _DNSBL_HIT.search(record.diagnostic):
        return False  # "blocked using <zone>; ... as spamming": the IP is on a list, whatever it says
    return by_status is _SPAMDETECTED or says(_SPAMDETECTED)


def _too_big(record: RecipientRecord, command: str, by_status: Reason | None, says: _Phrases) -> bool:
    if by_status is _EXCEEDLIMIT:
        return False  # X.2.3: the recipient's own size limit
    return by_status is _MESGTOOBIG or says(_MESGTOOBIG)


def _no_relaying(record: RecipientRecord, command: str, by_status: Reason | None, says: _Phrases) -> bool:
    if command in _GREETING:
        return False
    return by_status is _NORELAYING or says(_NORELAYING)


def _suspended(record: RecipientRecord, command: str, by_status: Reason | None, says: _Phrases) -> bool:
    if record.reply_code == "525":
        return True  # RFC 5321 bis: 525 user account disabled
    return by_status is _SUSPEND or says(_SUSPEND)


_WEIGHED: dict[Reason, _Weigh] = {
    Reason.USERUNKNOWN: _user_unknown, Reason.FILTERED: _filtered, Reason.REJECTED: _rejected,
    Reason.HOSTUNKNOWN: _host_unknown, Reason.CONTENTERROR: _content_error,
    Reason.SPAMDETECTED: _spam, Reason.MESGTOOBIG: _too_big, Reason.NORELAYING: _no_relaying,
    Reason.SUSPEND: _suspended,
}
# The first pass with each reason's own weighing (None: the status code or a phrase says it).
_FIRST_PASS_WEIGHED = tuple((reason, _WEIGHED.get(reason)) for reason in _FIRST_PASS)


def _syntax_reply(code: str | None) -> bool:
    """RFC 5321 §4.2.2: 501-504 and 401-404-like replies say the command itself was wrong."""
    if not code or not code.isdigit():
        return False
    value = int(code)
    return 400 < value < 408 or 500 < value < 508


def _status_reason(knowledge: Knowledge, status: str | None) -> Reason | None:
    if not status:
        return None
    return knowledge.statuses.get(status)


def _providers_named(knowledge: Knowledge, text: str, kinds: Iterable[str],
                     low: str | None = None) -> Provider | None:
    """The first provider of these kinds the text names; `low`: prefilter.lowered(text), if known."""
    return knowledge.named_in(text, lowered(text) if low is None else low, tuple(kinds))


def find_blocklist(knowledge: Knowledge, diagnostic: str,
                   low: str | None = None) -> tuple[Provider | None, str | None]:
    """The list a rejection names: a known provider, else the zone name it quotes."""
    named = _LIST_NAME.search(diagnostic)
    if named:
        zone = named.group(1).lower()
        provider = _providers_named(knowledge, zone, ("dnsbl", "reputation", "gateway"))
        if provider:
            return provider, zone
    provider = _providers_named(knowledge, diagnostic, ("dnsbl", "reputation"), low)
    if provider:
        return provider, None
    return None, named.group(1).lower() if named else None


_HOSTING = ("receiver", "gateway", "dnsbl", "reputation")


def find_receiver(knowledge: Knowledge, bounce: Bounce, record: RecipientRecord,
                  low: str | None, domain: str | None) -> Provider | None:
    """Who rejected: the rejection's own markers, then the remote host, then the domain.

    `low` is prefilter.lowered(record.diagnostic) and `domain` the recipient's domain
    (_domain(record.address)), both worked out once by the caller, which needs them too."""
    receivers = ("receiver", "gateway")
    # Knowledge.named_in itself, not through _providers_named: one call less per diagnosis.
    diagnostic = record.diagnostic
    named = knowledge.named_in(diagnostic, lowered(diagnostic) if low is None else low, receivers)
    if named:
        return named
    host = record.remote_mta or bounce.reporting_mta  # the first one given
    if host:
        # A list operator with host patterns runs the MX too (Barracuda ESS, Trend Micro Email
        # Security): the remote host names it as the receiver.
        by_host = knowledge.by_host(host, lowered(host), _HOSTING)
        if by_host:
            return by_host
    return knowledge.by_domain(domain, receivers) if domain else None


def _headline(recipients: list[Recipient], records: list[RecipientRecord]) -> int:
    for i, recipient in enumerate(recipients):
        if recipient.reason in SENDER_REASONS:
            return i
    for i, record in enumerate(records):
        if not record.delivered:
            return i
    return 0


def _route(rule: Rule | None, acting: Provider | None, recipient_domain: str | None) -> DelistRoute:
    if acting is None:
        return NO_ROUTE
    if rule and rule.route and rule.route != "default" and rule.route in acting.routes:
        return acting.routes[rule.route]
    # One operator, several brands with their own forms (GMX, WEB.DE, mail.com): the recipient's
    # domain picks the brand's route where the default would otherwise apply.
    if recipient_domain:
        for route in acting.routes.values():
            for d in route.domains:  # a loop, not any() over a generator made per route
                if recipient_domain == d or recipient_domain.endswith("." + d):
                    return route
    return acting.route


def diagnose(knowledge: Knowledge, bounce: Bounce) -> Diagnosis:
    if not bounce.is_bounce:
        return Diagnosis(source=bounce.source, is_bounce=False,
                         not_bounce_reason=bounce.not_bounce_reason)
    records = list(bounce.recipients)
    # One loop, not three comprehensions (each a function call of its own in 3.11): every
    # diagnostic lowered once, for every step; the recipients judged in their order.
    lows: list[str | None] = []
    decided: list[tuple[Reason, Rule | None]] = []
    recipients: list[Recipient] = []
    for r in records:
        low = lowered(r.diagnostic)
        reason, rule = classify(knowledge, r, bounce, low)
        lows.append(low)
        decided.append((reason, rule))
        recipients.append(Recipient(address=r.address, status=r.status, reply_code=r.reply_code,
                                    reason=reason, remote_mta=r.remote_mta, diagnostic=r.diagnostic,
                                    action=r.action))
    head = _headline(recipients, records)
    record, (reason, rule) = records[head], decided[head]
    return _conclude(knowledge, bounce, record, lows[head], recipients, reason, rule)


def _conclude(knowledge: Knowledge, bounce: Bounce, record: RecipientRecord, low: str | None,
              recipients: list[Recipient], reason: Reason, rule: Rule | None) -> Diagnosis:
    diagnostic = record.diagnostic
    returned = says_returned(bounce)
    recipient_domain = _domain(record.address)
    receiver = knowledge.providers.get(rule.receiver) if rule and rule.receiver else None
    receiver = receiver or find_receiver(knowledge, bounce, record, low, recipient_domain)
    blocklist: Provider | None = None
    zone: str | None = None
    if rule and rule.blocklist and rule.blocklist != "?":
        blocklist = knowledge.providers[rule.blocklist]
    elif reason in LISTED_REASONS or (rule and rule.blocklist == "?"):
        blocklist, zone = find_blocklist(knowledge, diagnostic, low)
    sending_ip, ip_source = _sending_ip(bounce, diagnostic, low)
    acting = blocklist or receiver
    # A rule routes unless it says the recipient's mailbox or domain is the problem (no address,
    # full, closed, moved, no mail accepted): no party can lift that for the sender.
    routed = rule is not None and (rule.route is not None or reason not in _RECIPIENT_STATES)
    route = _route(rule, acting, recipient_domain) if reason in SENDER_REASONS or routed else NO_ROUTE
    if ((route is NO_ROUTE and reason in _SENDERS_FIX)
            or (reason in _THROTTLED and blocklist is None and not (rule and rule.route)
                and route.method in _FORMS)):
        # The sender's own fix: authentication or reverse DNS; or too much mail or too many
        # connections, which slowing down lifts (RFC 5321 §4.5.4.1 retry strategy): a delist form
        # is for blocks. A rule that names a route says otherwise.
        route = _FIX_SENDER
    timers = _timers(rule, acting)
    temporary = _is_temporary(record, rule)
    verdict, next_step, warnings = describe(
        reason=reason, rule=rule, receiver=receiver, blocklist=blocklist, zone=zone,
        route=route, ip=sending_ip, wait_hours=timers[0], temporary=temporary,
        status=record.status, recipient_domain=recipient_domain, returned=returned,
    )
    return Diagnosis(
        source=bounce.source,
        is_bounce=True,
        format=bounce.format,
        recipients=tuple(recipients),
        sending_ip=sending_ip,
        sending_ip_source=ip_source,
        sender_domain=_domain(bounce.original_sender),
        recipient_domain=recipient_domain,
        receiver=receiver.id if receiver else None,
        blocklist=blocklist.id if blocklist else None,
        reason=reason,
        rule=rule.id if rule else None,
        delist=route,
        expected_wait_hours=timers[0] if _waits_on_provider(route, rule) else None,
        overdue_after_hours=timers[1] if route.method is not _NO_METHOD else None,
        propagation_hours=acting.propagation_hours if acting else None,
        evidence=squash(diagnostic) or None,
        verdict=verdict,
        next_step=next_step,
        warnings=tuple(warnings),
        temporary=temporary,
        returned=returned,
        feedback_type=bounce.feedback_type,
        extra={"zone": zone} if zone else {},
    )


def _waits_on_provider(route: DelistRoute, rule: Rule | None) -> bool:
    """A wait is the provider's only when the provider acts: not when the fix is the sender's own
    or the recipient admin's (unless the rule states a wait of its own)."""
    if rule and rule.wait_hours is not None:
        return True
    return route.method not in _NOT_THE_PROVIDERS


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


def _sending_ip(bounce: Bounce, diagnostic: str, low: str | None) -> tuple[str | None, str | None]:
    ip = rejected_ip(diagnostic, low)
    if ip:
        return ip, "rejection text"
    if bounce.stated_ip:
        return bounce.stated_ip
    return ip_from_headers(bounce.original_headers)

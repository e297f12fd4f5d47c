"""The values the engine passes around: what a bounce says, and what delistbot concludes from it.

Everything here is a frozen dataclass or an enum, built by the parsers (`bot.core.bounce`) and the
rules (`bot.core.rules`), and read by every edge (CLI, Slack, store). Nothing here does I/O.
"""

from __future__ import annotations

from dataclasses import MISSING, dataclass, field, fields
from enum import StrEnum
from typing import Any, TypeVar, dataclass_transform

_T = TypeVar("_T")


@dataclass_transform(frozen_default=True, field_specifiers=(field,))
def _frozen(cls: type[_T]) -> type[_T]:
    """`@dataclass(frozen=True)`, with an __init__ that fills the new instance's __dict__.

    The __init__ dataclass writes for a frozen class stores each field with a call of
    object.__setattr__ (the class's own __setattr__ refuses every assignment); a parser builds
    thousands of these values per mailbox, so those calls add up. This __init__ takes the same
    parameters (names, order, defaults, default factories) and stores the fields as plain items
    of the instance dict, which is what object.__setattr__ does for a class without slots. The
    instance is as frozen as before: assigning or deleting a field still raises
    FrozenInstanceError, and equality, hashing and repr are dataclass's own.
    """
    made: Any = dataclass(frozen=True)(cls)
    env: dict[str, Any] = {"_FACTORY": object()}
    params: list[str] = []
    lines: list[str] = []
    for f in fields(made):
        if not f.init:
            raise TypeError(f"{cls.__name__}.{f.name}: _frozen classes set every field in __init__")
        if f.default is not MISSING:
            env[f"_default_{f.name}"] = f.default
            params.append(f"{f.name}=_default_{f.name}")
        elif f.default_factory is not MISSING:
            env[f"_factory_{f.name}"] = f.default_factory
            params.append(f"{f.name}=_FACTORY")
            lines.append(f"    if {f.name} is _FACTORY:\n        {f.name} = _factory_{f.name}()")
        else:
            params.append(f.name)
        lines.append(f"    __d[{f.name!r}] = {f.name}")
    source = f"def __init__(self, {', '.join(params)}):\n    __d = self.__dict__\n" + "\n".join(lines)
    if hasattr(cls, "__post_init__"):
        raise TypeError(f"{cls.__name__}: _frozen classes have no __post_init__")
    exec(source, env)  # the source is built above from the class's own field names
    init = env["__init__"]
    init.__qualname__ = f"{made.__qualname__}.__init__"
    made.__init__ = init
    return cls  # dataclass() returned the class itself (no slots)


class Reason(StrEnum):
    """Why a message was not delivered, in Sisimai's vocabulary so users can compare."""

    AUTHFAILURE = "authfailure"
    BADREPUTATION = "badreputation"
    BLOCKED = "blocked"
    CONTENTERROR = "contenterror"
    DELIVERED = "delivered"
    EXCEEDLIMIT = "exceedlimit"
    EXPIRED = "expired"
    FAILEDSTARTTLS = "failedstarttls"
    FEEDBACK = "feedback"
    FILTERED = "filtered"
    HASMOVED = "hasmoved"
    HOSTUNKNOWN = "hostunknown"
    MAILBOXFULL = "mailboxfull"
    MAILERERROR = "mailererror"
    MESGTOOBIG = "mesgtoobig"
    NETWORKERROR = "networkerror"
    NORELAYING = "norelaying"
    NOTACCEPT = "notaccept"
    NOTCOMPLIANTRFC = "notcompliantrfc"
    ONHOLD = "onhold"
    POLICYVIOLATION = "policyviolation"
    RATELIMITED = "ratelimited"
    REJECTED = "rejected"
    REQUIREPTR = "requireptr"
    SECURITYERROR = "securityerror"
    SPAMDETECTED = "spamdetected"
    SPEEDING = "speeding"
    SUPPRESSED = "suppressed"
    SUSPEND = "suspend"
    SYNTAXERROR = "syntaxerror"
    SYSTEMERROR = "systemerror"
    SYSTEMFULL = "systemfull"
    TOOMANYCONN = "toomanyconn"
    UNDEFINED = "undefined"
    USERUNKNOWN = "userunknown"
    VACATION = "vacation"
    VIRUSDETECTED = "virusdetected"


# Reasons that say the *sending side* (its IP or domain) is refused, as opposed to the recipient
# or the message: these are the ones a delist request or a sender-side fix can cure.
SENDER_REASONS = frozenset(
    {
        Reason.BLOCKED,
        Reason.BADREPUTATION,
        Reason.REQUIREPTR,
        Reason.AUTHFAILURE,
        Reason.SPAMDETECTED,
        Reason.POLICYVIOLATION,
        Reason.RATELIMITED,
        Reason.TOOMANYCONN,
        Reason.SPEEDING,
        Reason.REJECTED,
    }
)
# Of those, the reasons that say the IP is on a list or has a bad name: the ones a list's or a
# provider's delisting answers.
LISTED_REASONS = frozenset({Reason.BLOCKED, Reason.BADREPUTATION})


class DelistMethod(StrEnum):
    """How the block is lifted; the JSON contract's `delist.method`."""

    WEB = "web"
    EMAIL = "email"
    AUTO_EXPIRY = "auto_expiry"
    CONTACT_RECIPIENT = "contact_recipient"
    FIX_SENDER = "fix_sender"
    NONE = "none"


@_frozen
class RecipientRecord:
    """One failed (or delayed) recipient as the bounce reports it, before any judgement."""

    address: str | None
    diagnostic: str = ""
    status: str | None = None  # enhanced status code D.S.N (RFC 3463)
    reply_code: str | None = None  # SMTP reply code (RFC 5321)
    remote_mta: str | None = None
    action: str | None = None  # RFC 3464 Action: failed | delayed | delivered | relayed | expanded
    command: str | None = None  # the SMTP command the reply answered (RCPT, DATA, ...)
    hint: Reason | None = None  # a reason the format itself states (e.g. "mailbox is full" headings)
    diagnostic_type: str | None = None  # RFC 3464 Diagnostic-Code type: "smtp", "x-unix", ...

    @property
    def delivered(self) -> bool:
        """RFC 3464 §2.3.3: delivered, relayed and expanded recipients did not fail."""
        return (self.action or "").lower() in DELIVERED_ACTIONS


DELIVERED_ACTIONS = frozenset({"delivered", "relayed", "expanded"})


@_frozen
class Bounce:
    """What one message says, parsed; no provider knowledge applied yet."""

    source: str
    format: str | None  # the software that wrote the bounce: "qmail", "postfix", "rfc3464", ...
    recipients: tuple[RecipientRecord, ...] = ()
    subject: str | None = None
    from_address: str | None = None
    original_headers: str = ""  # the returned message's headers, if the bounce carries them
    original_sender: str | None = None
    reporting_mta: str | None = None
    feedback_type: str | None = None  # ARF (RFC 5965) feedback type
    text: str = ""  # the human-readable text used for matching, normalised
    is_bounce: bool = True
    not_bounce_reason: str | None = None
    # The sending IP as the bounce states it outside the rejection (an ESP event's field), and
    # where it says so, e.g. ("198.51.100.7", "event field (sending-ip)").
    stated_ip: tuple[str, str] | None = None


@dataclass(frozen=True)
class DelistRoute:
    """Where and how to ask for removal. `method` is one of DelistMethod."""

    method: DelistMethod
    url: str | None = None
    address: str | None = None
    template: str = "none"
    include: tuple[str, ...] = ()  # what the request must contain
    note: str | None = None
    domains: tuple[str, ...] = ()  # recipient domains this route serves instead of the default

    def to_json(self) -> dict[str, Any]:
        return {"method": str(self.method), "url": self.url, "address": self.address}


NO_ROUTE = DelistRoute(method=DelistMethod.NONE)


@_frozen
class Recipient:
    """A failed recipient with the reason delistbot gives it."""

    address: str | None
    status: str | None
    reply_code: str | None
    reason: Reason
    remote_mta: str | None
    diagnostic: str
    action: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "address": self.address,
            "status": self.status,
            "reply_code": self.reply_code,
            "reason": str(self.reason),
            "remote_mta": self.remote_mta,
            "diagnostic": self.diagnostic,
            "action": self.action,
        }


@_frozen
class Diagnosis:
    """delistbot's conclusion about one message (or one bare IP)."""

    source: str
    is_bounce: bool
    format: str | None = None
    recipients: tuple[Recipient, ...] = ()
    sending_ip: str | None = None
    sending_ip_source: str | None = None  # "rejection text", "returned headers (Received)", "input"
    sender_domain: str | None = None
    recipient_domain: str | None = None
    receiver: str | None = None  # provider id of whoever rejected
    blocklist: str | None = None  # provider id of the list the IP is on
    reason: Reason | None = None  # the headline reason
    rule: str | None = None  # id of the knowledge rule that decided
    delist: DelistRoute = NO_ROUTE
    expected_wait_hours: float | None = None
    overdue_after_hours: float | None = None
    propagation_hours: float | None = None
    evidence: str | None = None  # the exact rejection line
    verdict: str = ""  # one sentence a tired operator understands
    next_step: str = ""
    warnings: tuple[str, ...] = ()
    temporary: bool = False  # a 4xx deferral rather than a refusal
    returned: bool = False  # the sending server gave up and returned the message: send it again
    feedback_type: str | None = None
    not_bounce_reason: str | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def summary(self) -> str:
        if not self.verdict:
            return f"not a bounce: {self.not_bounce_reason}"
        return f"{self.verdict} Next: {self.next_step}" if self.next_step else self.verdict

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "is_bounce": self.is_bounce,
            "format": self.format,
            "recipients": [r.to_json() for r in self.recipients],
            "sending_ip": self.sending_ip,
            "sending_ip_source": self.sending_ip_source,
            "sender_domain": self.sender_domain,
            "recipient_domain": self.recipient_domain,
            "receiver": self.receiver,
            "blocklist": self.blocklist,
            "reason": str(self.reason) if self.reason else None,
            "rule": self.rule,
            "temporary": self.temporary,
            "returned": self.returned,
            "delist": self.delist.to_json(),
            "expected_wait_hours": self.expected_wait_hours,
            "overdue_after_hours": self.overdue_after_hours,
            "propagation_hours": self.propagation_hours,
            "evidence": self.evidence,
            "warnings": list(self.warnings),
            "next_step": self.next_step or None,
            "summary": self.summary,
            **self.extra,
        }

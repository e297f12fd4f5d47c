"""The words a tired operator reads first: one verdict sentence, one next step, and warnings."""

from __future__ import annotations

from bot.core.knowledge import Provider, Rule
from bot.core.model import LISTED_REASONS, DelistMethod, DelistRoute, Reason

# What each reason means, completing "<receiver> rejected mail from <ip>: ...".
WHAT = {
    Reason.BLOCKED: "the IP is blocked",
    Reason.BADREPUTATION: "the sending IP or domain has a poor reputation there",
    Reason.REQUIREPTR: "the IP has no valid reverse DNS (PTR) name",
    Reason.AUTHFAILURE: "the message failed sender authentication (SPF, DKIM or DMARC)",
    Reason.SPAMDETECTED: "the message was judged to be spam",
    Reason.POLICYVIOLATION: "the message broke the receiver's policy",
    Reason.RATELIMITED: "too much mail too fast: the receiver is rate limiting",
    Reason.SPEEDING: "too much mail too fast: the receiver is rate limiting",
    Reason.TOOMANYCONN: "too many connections at once",
    Reason.REJECTED: "the sender address or domain was refused",
    Reason.USERUNKNOWN: "the recipient address does not exist",
    Reason.MAILBOXFULL: "the recipient's mailbox is full",
    Reason.SUSPEND: "the recipient's mailbox is disabled or suspended",
    Reason.HOSTUNKNOWN: "the recipient's domain does not exist or has no mail server",
    Reason.FILTERED: "the recipient's own filter refused the message",
    Reason.MESGTOOBIG: "the message is too large",
    Reason.EXCEEDLIMIT: "the message exceeds a size or recipient limit",
    Reason.NORELAYING: "the server refused to relay the message",
    Reason.NETWORKERROR: "the connection to the receiving server failed",
    Reason.EXPIRED: "delivery kept failing until the message expired",
    Reason.SYSTEMERROR: "the receiving server had an internal error",
    Reason.SYSTEMFULL: "the receiving server is out of storage",
    Reason.SECURITYERROR: "the connection did not meet the receiver's security requirements",
    Reason.FAILEDSTARTTLS: "the TLS handshake failed",
    Reason.CONTENTERROR: "the message's content or headers are malformed",
    Reason.NOTCOMPLIANTRFC: "the message does not comply with the mail standards",
    Reason.SYNTAXERROR: "the SMTP conversation had a syntax error",
    Reason.NOTACCEPT: "the recipient's domain accepts no mail",
    Reason.HASMOVED: "the recipient has moved to another address",
    Reason.VIRUSDETECTED: "the message was judged to carry a virus",
    Reason.MAILERERROR: "the recipient's mail program failed",
    Reason.ONHOLD: "the reason could not be determined",
    Reason.UNDEFINED: "the reason could not be determined",
}

NOTHING_TO_DELIST = {
    Reason.USERUNKNOWN: "remove or correct the address; nothing to delist.",
    Reason.MAILBOXFULL: "retry later or reach the recipient another way; nothing to delist.",
    Reason.SUSPEND: "remove the address from your list; nothing to delist.",
    Reason.HOSTUNKNOWN: "check the domain for typos; nothing to delist.",
    Reason.FILTERED: "ask the recipient to allow your address; nothing to delist.",
    Reason.MESGTOOBIG: "send a smaller message or a link instead of the attachment.",
    Reason.EXPIRED: "check why the receiving server is unreachable, then resend.",
    Reason.NETWORKERROR: "check DNS and connectivity towards the receiving server, then resend.",
    Reason.VACATION: "nothing to do: this is an auto-reply, not a bounce.",
    Reason.FEEDBACK: "a recipient reported your mail as spam: stop mailing them and review consent.",
    Reason.DELIVERED: "nothing to do: the message was delivered.",
}


# Members and sets the functions below test, looked up once: in Python 3.11 `Reason.X` in a
# function body goes through the enum metaclass's attribute hook (EnumType.__getattr__) each time.
_WEB, _EMAIL, _AUTO_EXPIRY = DelistMethod.WEB, DelistMethod.EMAIL, DelistMethod.AUTO_EXPIRY
_CONTACT_RECIPIENT, _FIX_SENDER, _NO_METHOD = (DelistMethod.CONTACT_RECIPIENT, DelistMethod.FIX_SENDER,
                                               DelistMethod.NONE)
_REQUIREPTR, _AUTHFAILURE, _TOOMANYCONN = Reason.REQUIREPTR, Reason.AUTHFAILURE, Reason.TOOMANYCONN
_RATE_LIMITED = frozenset({Reason.RATELIMITED, Reason.SPEEDING})
_SLOWED = frozenset({Reason.BLOCKED, Reason.BADREPUTATION, Reason.RATELIMITED, Reason.TOOMANYCONN,
                     Reason.SPEEDING})
# The reports that are not bounces, in so many words.
_NOT_BOUNCES = {Reason.VACATION: "This is an auto-reply (out of office), not a bounce.",
                Reason.FEEDBACK: "This is a spam complaint (feedback report), not a bounce.",
                Reason.DELIVERED: "This report says the message was delivered."}


def hours_text(hours: float) -> str:
    if hours < 1:
        return f"{round(hours * 60)} min"
    if hours < 48 or hours % 24:
        return f"{hours:g} h"
    return f"{hours / 24:g} days"


def _wait_clause(wait_hours: float | None) -> str:
    return f", usually within {hours_text(wait_hours)}" if wait_hours else ""


def next_step_for(route: DelistRoute, reason: Reason, ip: str | None,
                  wait_hours: float | None) -> str:
    ip_text = ip or "the IP"
    method = route.method  # compared as `match` would (==), with the members looked up once
    if method == _WEB:
        return f"request removal of {ip_text} at {route.url}{_wait_clause(wait_hours)}."
    if method == _EMAIL:
        return f"email {route.address} asking to remove {ip_text}{_wait_clause(wait_hours)}."
    if method == _AUTO_EXPIRY:
        expiry = f" (about {hours_text(wait_hours)})" if wait_hours else ""
        return f"stop the cause; the block expires by itself{expiry}. There is no form to fill in."
    if method == _CONTACT_RECIPIENT:
        return "ask the recipient's mail administrator to lift the block; a delist request will not help."
    if method == _FIX_SENDER:
        if reason is _REQUIREPTR:
            return f"give {ip_text} a PTR record whose name resolves back to it, then resend."
        if reason is _AUTHFAILURE:
            return "fix SPF, DKIM and DMARC for the sending domain, then resend; no delisting exists."
        if reason in _RATE_LIMITED:
            return ("send less per hour to this receiver; the limit lifts by itself, "
                    "there is no delist form.")
        if reason is _TOOMANYCONN:
            return ("open fewer connections at once to this receiver; the limit lifts by itself, "
                    "there is no delist form.")
        return "fix the cause on your side and let the reputation recover; there is no delist form."
    return NOTHING_TO_DELIST.get(reason, "read the rejection text below; nothing to delist.")


RESEND = "Your server has given up on this message and returned it: send it again once this is resolved."


def describe(*, reason: Reason, rule: Rule | None, receiver: Provider | None,
             blocklist: Provider | None, zone: str | None, route: DelistRoute, ip: str | None,
             wait_hours: float | None, temporary: bool, status: str | None,
             recipient_domain: str | None, returned: bool = False) -> tuple[str, str, list[str]]:
    who = receiver.name if receiver else (f"The server for {recipient_domain}" if recipient_domain
                                          else "The receiving server")
    # A temporary refusal in a failure notice: the sending server retried until it gave up.
    gave_up = temporary and returned
    verb = "kept deferring" if gave_up else "deferred" if temporary else "rejected"
    mail = f"mail from {ip}" if ip else "the mail"
    what = rule.what if rule else WHAT.get(reason, "the reason could not be determined")
    if not rule and reason in LISTED_REASONS:
        if blocklist:
            what = f"the IP is on {blocklist.list_name}"
        elif zone:
            what = f"the IP is listed on {zone}, a list delistbot has no data for"
    verdict = _NOT_BOUNCES.get(reason)
    if verdict is None:
        until = " until your server gave up" if gave_up else ""
        verdict = f"{who} {verb} {mail}{until}: {what}."
    next_step = rule.next_step if rule and rule.next_step else next_step_for(route, reason, ip, wait_hours)
    slowed = reason in _SLOWED
    if temporary and not gave_up and slowed and not (rule and rule.next_step):
        next_step = "slow down and let the queue retry; " + next_step
    warnings = [rule.warning] if rule and rule.warning else []
    if blocklist and blocklist.status == "defunct":
        warnings.append(f"{blocklist.name} shut down on {blocklist.defunct_since}: the receiver's "
                        "filter is out of date, so there is nothing to delist.")
    if route.note and route.method is not _NO_METHOD and not (rule and rule.next_step):
        next_step = f"{next_step} {route.note}"
    if gave_up:
        next_step = f"{next_step.rstrip()} {RESEND}"
    return verdict, next_step[:1].upper() + next_step[1:], warnings

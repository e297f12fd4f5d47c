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
from itertools import compress, count, repeat

from bot.core.bounce.text import (
    ADDRESS,
    REPLY,
    STATUS,
    STATUS_LOOSE,
    command_of,
    find_reply,
    join_reply_lines,
    lowered_once,
    squash,
)
from bot.core.model import RecipientRecord
from bot.core.prefilter import first_match, lowered, may_match, needles, starts

_ADDR = r"[\w.!#$%&'*+/=?^`{|}~-]+@[\w-]+(?:\.[\w-]+)+"
_RECIPIENT_LINE = re.compile(
    rf"^\s*(?:RCPT To:\s*|(?:Failed )?Recipient(?: address)?:\s*|"
    # "Recipient" in the languages localised MTAs and appliances write their notices in.
    rf"(?:宛先|受信者|送信先|收件人|收件者|Empfänger|Destinataire|Destinatario|Ontvanger|Получатель|Odbiorca)"
    rf"\s*[:：]\s*|Original-Recipient:\s*(?:rfc822;)?\s*|"
    rf"(?P<said>Did not reach the following recipient|The following recipients? (?:failed|was undeliverable)"
    rf"|Unable to deliver to)\s*:?\s*)?"
    rf"[<\"']?(?P<addr>{_ADDR})(?![\w.-]*\w)[>\"']?(?:\s*\((?:expanded from|generated from)[^)]*\))?"
    rf"(?:\s*:|\s*\.\.\.|\s+(?=\[.*\]\s*$)|\s+on\s+\d{{1,4}}[/.-]\d{{1,2}}[/.-]\d{{1,4}}\b.*$|\s*$)"
    rf"\s*(?P<rest>.*)$",
    re.IGNORECASE,
)
_REASON_FIRST = re.compile(
    rf"^\s*(?!.*\b(?:sender|from|reply|return|envelope|original)\b)(\S[^:<>]*\s[^:<>]*):\s*<({_ADDR})>\s*$",
    re.I,
)
_HEADER_FIELD = re.compile(
    r"^\s*(?:From|To|Cc|Reply-To|Return-Path|Sender|Message-ID|Received|X-[\w-]+)\s*:", re.I
)
# Phrases that introduce the remote server's own words; the reply follows them.
_REMOTE_SAID = re.compile(
    r"(?=[rs(td<f])"  # the first letters of the alternatives: most positions fail at once
    r"(?:Remote host said:|\bsaid:|"
    # Exim names the command answered, with its ESMTP parameters: "after MAIL FROM:<a@b> SIZE=9313:".
    r"SMTP error from remote (?:mail server|server|mailer) after (?:[^:<]*:?<[^>]*>(?: [A-Z-]+=\S*)*|[^:]*):|"
    r"\(reason:|The (?:response|error that the other server returned) (?:from the remote server )?was:|"
    r"Remote Server returned|Diagnostic-Code:|<<<|Reason:|Failure Reason:)\s*",
    re.IGNORECASE,
)
_IN_REPLY_TO = re.compile(r"\(in\s+reply\s+to\s+[A-Z][A-Z\s]*?(?:\s+command)?\)", re.IGNORECASE)
_BOILERPLATE = re.compile(
    r"^(?:Giving up on \S+|\S+ does not like recipient\.?|This is a permanent error.*|"
    r"Please contact your system administrator.*|"
    r"-{3,}.*-{3,}|For the following reasons?:|Unable to deliver mail\.?|"
    # Sendmail's own lines under a deferral in its "Warning: could not send message" notice.
    r"Warning: message still undelivered after .*|Will keep trying until message is .* old)$",
    re.IGNORECASE,
)
_REMOTE_HOST = re.compile(
    r"(?=[hsrwge])"  # the first letters of the alternatives: most positions fail at once
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
    r"For the following reasons?:",
))


# Exchange's line for administrators: "mx.example.org #550 5.7.1 text ##" (2010 and later) or
# "<gen.example.org #5.0.0 smtp;550 5.7.1 text> #SMTP#" (2003/2007, the host is Exchange's own).
_EXCHANGE_ADMIN = re.compile(
    r"^\s*(?:(?P<remote>[a-z0-9][\w-]*(?:\.[\w-]+)+)\s+|<\s*(?:[\w.-]+\s+)?)"
    r"#(?:[245]\.\d{1,3}\.\d{1,3}\s+smtp;\s*)?(?P<reply>[245]\d\d\b.*?)\s*>?\s*(?:#SMTP#|##)?\s*$",
    re.IGNORECASE | re.MULTILINE,
)
# A session transcript (MDaemon, Kerio, hMailServer, ...): the reply line to a RCPT TO.
_TRANSCRIPT_RCPT = re.compile(rf"(?:-->|>>>|\bC:)\s*RCPT TO:\s*<({_ADDR})>", re.IGNORECASE)
_TRANSCRIPT_REPLY = re.compile(r"(?:<--|<<<|\bS:)\s*([245]\d\d(?P<more>[ -]).*?)\s*$")
_TRANSCRIPT_DATA = re.compile(r"(?:-->|>>>|\bC:)\s*DATA\s*$", re.IGNORECASE)
_TRANSCRIPT_DOT = re.compile(r"(?:-->|>>>|\bC:)\s*\.\s*$|<message text sent>|message (?:body|data) sent",
                             re.IGNORECASE)
_TRANSCRIPT_HOST = re.compile(r"(?:SMTP connection to|Connecting to)\s*\[?([a-z][\w-]*(?:\.[\w-]+)+)\]?",
                              re.IGNORECASE)
_GLOBAL_NEEDLES = tuple(needles(p) for p in _GLOBAL_MARKERS)
_REMOTE_HOST_STARTS = starts(_REMOTE_HOST)  # a host is named in the whole report: match where one can start


def _blocks(report: str) -> list[tuple[str, list[str]]]:
    """(address, lines after it) for every line that starts with a recipient address.

    A recipient line holds an address, so only the lines with an "@" are matched; they are
    found in C, and of the lines between two of them only those a block still takes are
    looked at (each would do nothing else: outside a block a line without "@" is skipped).
    """
    blocks: list[tuple[str, list[str]]] = []
    current: list[str] | None = None
    indent = 0
    lines = report.split("\n")
    read = 0  # lines before this one are done with
    for at in compress(count(), map(str.__contains__, lines, repeat("@"))):
        if current is not None:
            current = _continue(current, lines, read, at)
        read = at + 1
        line = lines[at]
        match = None if _HEADER_FIELD.match(line) else _RECIPIENT_LINE.match(line)
        depth = len(line) - len(line.lstrip())
        if match and current and depth > indent:
            match = None  # an indented continuation that repeats the address (Postfix, Sendmail)
        # _REASON_FIRST holds ":" and ends in "<address>" and spaces: test that before its costly
        # look-ahead.
        reason_first = (None if match or not line.rstrip().endswith(">") or ":" not in line
                        else _REASON_FIRST.match(line))
        if reason_first:
            current = [reason_first.group(1)]
            blocks.append((reason_first.group(2), current))
            indent = depth
        elif match and len(match.group("rest")) < 400:
            rest = match.group("rest").strip() or (match.group("said") or "")
            if rest.startswith("[") and rest.endswith("]"):
                rest = rest[1:-1]  # "a@b [User unknown]"
            current = [rest] if rest else []
            blocks.append((match.group("addr"), current))
            indent = depth
        elif current is not None:
            current.append(line)  # a line with "@" is never blank
    if current is not None:
        _continue(current, lines, read, len(lines))
    return blocks


def _continue(current: list[str], lines: list[str], start: int, end: int) -> list[str] | None:
    """Lines start..end-1 (none with an address line among them) added to the block being
    read, up to the first blank line after some text, which ends it (None)."""
    for line in lines[start:end]:
        if not line.strip():
            if current:
                return None
            continue
        current.append(line)
    return current


# qmail appends its queue-lifetime note to the last temporary failure; the failure is the cause.
_QMAIL_GAVE_UP = re.compile(
    r"\s*I'm not going to try again; this\s+message has been in the queue too long\.?", re.I
)


_QMAIL_GAVE_UP_NEEDLES = needles(_QMAIL_GAVE_UP)


def remote_text(lines: list[str]) -> tuple[str, str | None]:
    """The remote server's words in a block, unwrapped, and the SMTP command they answered."""
    command = command_of("\n".join(lines))
    text = "\n".join(line for line in lines if not _BOILERPLATE.match(line.strip()))
    cause = _QMAIL_GAVE_UP.sub("", text) if may_match(_QMAIL_GAVE_UP_NEEDLES, lowered(text)) else text
    text = cause if cause.strip() else text
    in_reply = _IN_REPLY_TO.search(text)
    if in_reply:
        text = text[: in_reply.start()] + text[in_reply.end():]
    admin = _EXCHANGE_ADMIN.search(text) if "#" in text else None  # the line always has a "#"
    if admin:
        return join_reply_lines([admin.group("reply")]).strip(" '"), command
    said = _REMOTE_SAID.search(text)
    if said:
        opened = said.group(0).startswith("(")
        text = text[said.end():]
        again = _REMOTE_SAID.match(text)
        if again and not opened:  # "Reason: Remote host said: 554 ..." (SmarterMail)
            text = text[again.end():]
        if opened and ")" in text:  # Sendmail's "(reason: 550 ...)"
            text = text[: text.rindex(")")]
    else:
        reply = REPLY.search(text)
        if reply and (reply.group(2) or reply.start() == 0 or text[reply.start() - 1] in "\n ("):
            text = text[reply.start():]
    return join_reply_lines(text.strip(" '\n").split("\n")).strip(" '"), command


def global_diagnostic(report: str) -> str:
    """The remote reply printed away from any address (Gmail, Exchange, bare pastes)."""
    low = lowered_once(report)
    markers = zip(_GLOBAL_MARKERS, _GLOBAL_NEEDLES, strict=True)
    marker = next(filter(None, (p.search(report) for p, found in markers if may_match(found, low))), None)
    if marker:
        rest = report[marker.end():].lstrip(" \n")
        paragraph = re.split(r"\n\s*\n", rest, maxsplit=1)[0]
        return join_reply_lines(paragraph.strip(" '").split("\n")).strip(" '")
    for paragraph in re.split(r"\n\s*\n", report):
        # The failure reply (4xx/5xx), not the greetings and 250s of a session transcript.
        reply = next((m for m in REPLY.finditer(paragraph) if m.group(1)[0] in "45"), None)
        if reply is None:
            continue
        if reply.start() and "\n" in paragraph[: reply.start()]:
            paragraph = paragraph[paragraph.rfind("\n", 0, reply.start()) + 1 :]
            reply = next(m for m in REPLY.finditer(paragraph) if m.group(1)[0] in "45")
        at_line_start = reply.start() == 0 or paragraph[reply.start() - 1] == "\n"
        if reply.group(2) or STATUS.search(paragraph) or at_line_start:
            return remote_text(paragraph.split("\n"))[0]
    return ""


def remote_host(text: str) -> str | None:
    admin = _EXCHANGE_ADMIN.search(text) if "#" in text else None  # the line always has a "#"
    if admin and admin.group("remote"):
        return admin.group("remote").rstrip(".").lower()
    match = first_match(_REMOTE_HOST, text, lowered_once(text), _REMOTE_HOST_STARTS)
    if not match:
        return None
    return next(g for g in match.groups() if g).rstrip(".").lower()


def _best_blocks(blocks: list[tuple[str, list[str]]]) -> dict[str, tuple[list[str], tuple[str, str | None]]]:
    """Each address's block: the first, unless a later one for the same address says more;
    with the block, what remote_text() answers for it (worked out here anyway)."""
    best: dict[str, tuple[list[str], tuple[str, str | None]]] = {}
    for address, lines in blocks:
        key = address.lower()
        kept = best.get(key)
        if kept is not None and REPLY.search(kept[1][0]):
            continue  # the block kept already carries the server's reply
        said = remote_text(lines)
        # A later block for the same address may carry the reply (Sendmail, Exchange's lines
        # for administrators under its summary for users).
        if kept is None or not _informative(kept[1][0]) or REPLY.search(said[0]):
            best[key] = (lines, said)
    return best


def commands(report: str) -> dict[str, str | None]:
    """The SMTP command of each recipient's record, by lower-cased address: what extract()
    would put in each record's `command`, without working out the rest of the record.

    When no address heads two blocks, each address's block is its only one, whatever
    remote_text() says of it: its command is read without working out the remote words."""
    blocks = _blocks(report)
    if not blocks:
        return {r.address.lower(): r.command for r in transcript(report) if r.address}
    keys = [address.lower() for address, _ in blocks]
    if len(set(keys)) == len(keys):
        return {key: command_of("\n".join(lines)) for key, (_, lines) in zip(keys, blocks, strict=True)}
    return {key: said[1] for key, (_, said) in _best_blocks(blocks).items()}


def extract(report: str) -> list[RecipientRecord]:
    """Failed recipients, in order, from the report text (returned message already cut off)."""
    records: list[RecipientRecord] = []
    seen: set[str] = set()
    fallback = None
    blocks = _blocks(report)
    best = _best_blocks(blocks)
    if not best:
        return transcript(report)
    report_host: list[str | None] = []  # remote_host(report), worked out at most once
    for address, lines in blocks:
        key = address.lower()
        if key in seen:
            continue
        seen.add(key)
        lines, (diagnostic, command) = best[key]
        if not diagnostic or not (REPLY.search(diagnostic) or STATUS_LOOSE.search(diagnostic)):
            # The block holds the MTA's own words ("Message will be retried ..."); when it is the
            # only recipient, the remote server's reply printed elsewhere (Gmail, Exchange) says
            # more if it has a code. With several recipients that reply may be another's.
            if fallback is None:
                fallback = global_diagnostic(report)
            coded = bool(REPLY.search(fallback) or STATUS.search(fallback))
            if not _informative(diagnostic) or (coded and len(best) == 1):
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


def transcript(report: str) -> list[RecipientRecord]:
    """Recipients refused in an SMTP session transcript: each RCPT TO and the reply to it."""
    if "RCPT" not in report.upper():
        return []
    lines = report.split("\n")
    # address -> (line of its RCPT TO, the refusal, the command refused)
    refused: dict[str, tuple[int, list[str], str]] = {}
    accepted: list[tuple[int, str]] = []
    for i, line in enumerate(lines):
        rcpt = _TRANSCRIPT_RCPT.search(line)
        if rcpt:
            reply = _reply_after(lines, i)
            if reply and reply[-1][0] in "45":
                refused.setdefault(rcpt.group(1).lower(), (i, reply, "RCPT"))
            elif reply:
                accepted.append((i, rcpt.group(1)))
        elif _TRANSCRIPT_DATA.search(line) and accepted:
            # Refused after DATA (or after the message itself): every accepted recipient was.
            reply = _reply_after(lines, i)
            if reply and reply[-1][0] == "3":
                dot = next((j for j in range(i + 1, len(lines)) if _TRANSCRIPT_DOT.search(lines[j])), i)
                reply = _reply_after(lines, dot)
            if reply and reply[-1][0] in "45":
                for at, address in accepted:
                    refused.setdefault(address.lower(), (at, reply, "DATA"))
    records = []
    for address, (i, reply, command) in sorted(refused.items(), key=lambda item: item[1][0]):
        diagnostic = join_reply_lines(reply)
        found = find_reply(diagnostic)
        host = _TRANSCRIPT_HOST.search("\n".join(lines[:i]))
        records.append(RecipientRecord(
            address=_original_case(address, report), diagnostic=diagnostic, status=found.status,
            reply_code=found.reply_code, remote_mta=host.group(1).lower() if host else None,
            command=command))
    return records


def _reply_after(lines: list[str], i: int) -> list[str]:
    """The server's (possibly multi-line) reply to the command on line i of a transcript."""
    reply: list[str] = []
    for later in lines[i + 1:i + 40]:
        said = _TRANSCRIPT_REPLY.search(later)
        if said:
            reply.append(said.group(1))
            if said.group("more") == " ":
                break
        elif reply or _TRANSCRIPT_RCPT.search(later) or _TRANSCRIPT_DATA.search(later):
            break
    return reply


def _original_case(address: str, report: str) -> str:
    at = report.lower().find(address)
    return report[at:at + len(address)] if at >= 0 else address


def _once(memo: list[str | None], report: str) -> str | None:
    if not memo:
        memo.append(remote_host(report))
    return memo[0]


def _informative(diagnostic: str) -> bool:
    """A diagnostic says something when it has a reply code or a few words."""
    return bool(REPLY.search(diagnostic)) or len(diagnostic.split()) >= 3


def addresses(text: str) -> list[str]:
    return [m.group(0) for m in ADDRESS.finditer(text)]


# A report that names its one recipient in a sentence (Gmail, Exchange), not on a line of its own.
_DELIVERING_TO = re.compile(
    rf"(?:problem delivering your message to|(?:wasn.t|couldn.t be|could not be) delivered to|"
    rf"(?:Failed|Unable|Could not) to deliver (?:the message )?to|"
    rf"Delivery to the following recipients? failed(?: permanently)?:?)\s*['\"]?<?({_ADDR})(?![\w.-]*\w)",
    re.IGNORECASE,
)


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
    named = _DELIVERING_TO.search(text)
    return RecipientRecord(address=named.group(1) if named else None, diagnostic=diagnostic,
                           status=reply.status,
                           reply_code=reply.reply_code, remote_mta=remote_host(text))

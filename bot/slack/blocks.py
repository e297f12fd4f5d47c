"""Block Kit builders: pure functions from values to the dicts Slack renders. Golden-tested.

Every user- or mail-supplied string goes through `escape` (or a `plain_text` object) so a pasted
`<!channel>` can never notify anyone. Slack's limits are enforced here, never by silent cuts:
section text ≤ 3,000 characters (long text is split over several sections or code blocks),
≤ 50 blocks per message (extra blocks continue in further messages, each saying so), headers
≤ 150 and button labels ≤ 75 characters (these hold only our own fixed wording plus short values).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bot.core.model import DelistMethod, Diagnosis
from bot.core.tickets import TRANSITIONS, Kind, State
from bot.slack.text import escape

Block = dict[str, Any]

MAX_BLOCKS = 50
MAX_SECTION = 3000
MAX_HEADER = 150
# Slack refuses messages whose blocks add up to roughly 13k characters (msg_blocks_too_long,
# observed, undocumented); stay well below it when packing blocks into one message.
MAX_MESSAGE_CHARS = 11000
_FENCE = "```"


@dataclass(frozen=True)
class Message:
    """One chat message: notification text plus blocks."""

    text: str
    blocks: tuple[Block, ...]

    def as_kwargs(self) -> dict[str, Any]:
        # Links in bounce bodies point at spam and phishing pages: never let Slack fetch them.
        return {
            "text": self.text,
            "blocks": list(self.blocks),
            "unfurl_links": False,
            "unfurl_media": False,
        }


@dataclass(frozen=True)
class Listing:
    """One row of the DNS picture for an IP: a list and what it says."""

    list_id: str
    list_name: str
    status: str  # "listed" | "not listed" | "unknown"
    meaning: str = ""
    delist_url: str | None = None
    reason: str = ""  # the list's own words (its TXT record), when it gives any


# ---------------------------------------------------------------- primitives


def _mrkdwn(text: str) -> Block:
    return {"type": "mrkdwn", "text": text, "verbatim": True}


def section(text: str) -> list[Block]:
    """Trusted mrkdwn (already escaped) as one or more sections, split at line ends."""
    return [{"type": "section", "text": _mrkdwn(chunk)} for chunk in _chunks(text, MAX_SECTION)]


def code(text: str) -> list[Block]:
    """Untrusted text, verbatim in code blocks; long text continues over several blocks."""
    body = escape(text.replace(_FENCE, "'''"))  # a fence inside would end the block early
    room = MAX_SECTION - 2 * len(_FENCE) - 2
    return [
        {"type": "section", "text": _mrkdwn(f"{_FENCE}\n{chunk}\n{_FENCE}")}
        for chunk in _chunks(body, room)
    ]


def header(text: str) -> Block:
    if len(text) > MAX_HEADER:
        text = text[: MAX_HEADER - 1] + "…"  # headers hold our own wording; the full text follows
    return {"type": "header", "text": {"type": "plain_text", "text": text, "emoji": True}}


def context(text: str) -> Block:
    return {"type": "context", "elements": [_mrkdwn(text[:MAX_SECTION])]}


def button(label: str, action_id: str, value: str, style: str | None = None) -> Block:
    element: Block = {
        "type": "button",
        "text": {"type": "plain_text", "text": label[:75], "emoji": True},
        "action_id": action_id,
        "value": value[:2000],
    }
    if style:
        element["style"] = style
    return element


def actions(block_id: str, *elements: Block) -> Block:
    return {"type": "actions", "block_id": block_id, "elements": list(elements)}


def _chunks(text: str, size: int) -> list[str]:
    """Split at line ends into pieces of at most `size` characters; no character is dropped."""
    out: list[str] = []
    current = ""
    for line in text.splitlines(keepends=True):
        while len(line) > size:  # one very long line: cut it hard
            if current:
                out.append(current)
                current = ""
            out.append(line[:size])
            line = line[size:]
        if len(current) + len(line) > size:
            out.append(current)
            current = ""
        current += line
    if current or not out:
        out.append(current)
    return [c.rstrip("\n") or " " for c in out]


def _block_chars(block: Block) -> int:
    return len(str(block))


def paginate(text: str, blocks: Sequence[Block]) -> list[Message]:
    """Pack blocks into as many messages as Slack's limits need; later ones say they continue."""
    pages: list[list[Block]] = [[]]
    size = 0
    for block in blocks:
        chars = _block_chars(block)
        if pages[-1] and (len(pages[-1]) >= MAX_BLOCKS - 1 or size + chars > MAX_MESSAGE_CHARS):
            pages.append([])
            size = 0
        pages[-1].append(block)
        size += chars
    if len(pages) == 1:
        return [Message(text, tuple(pages[0]))]
    total = len(pages)
    return [
        Message(
            f"{text} ({i}/{total})" if i == 1 else f"(continued {i}/{total})",
            tuple(page if i == 1 else [context(f"_continued, part {i} of {total}_"), *page]),
        )
        for i, page in enumerate(pages, start=1)
    ]


# ---------------------------------------------------------------- help and modal

HELP_TEXT = (
    "*delistbot* diagnoses bounces and tracks delist requests.\n"
    "• `/delist 203.0.113.44` — which blocklists list this IP, what that means, where to delist\n"
    "• `/delist` + a pasted bounce — diagnosis, a draft request and a ticket in this channel\n"
    "• `/delist` alone — a form to paste a bounce, or attach it as a file\n"
    "• `/delist list` — open tickets, age against the expected wait\n"
    "• `/delist status DL-42` or `/delist status 203.0.113.44` — one ticket\n"
    "• Paste or e-mail a bounce into a channel I am in: I answer in its thread.\n"
    "• In a ticket's thread, paste the provider's reply: I move the ticket along."
)


def help_message() -> Message:
    return Message("delistbot help", tuple(section(HELP_TEXT)))


def paste_modal(channel_id: str) -> dict[str, Any]:
    """The form `/delist` alone opens; the channel travels in private_metadata."""
    return {
        "type": "modal",
        "callback_id": "delist_paste",
        "private_metadata": channel_id,
        "title": {"type": "plain_text", "text": "Diagnose a bounce"},
        "submit": {"type": "plain_text", "text": "Diagnose"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            {
                "type": "input",
                "block_id": "bounce",
                "optional": True,
                "label": {"type": "plain_text", "text": "Paste the whole bounce, headers included"},
                "element": {
                    "type": "plain_text_input",
                    "action_id": "text",
                    "multiline": True,
                    "max_length": 3000,  # Slack's ceiling for a text input
                },
            },
            {
                "type": "input",
                "block_id": "file",
                "optional": True,
                "label": {"type": "plain_text",
                          "text": "…or attach it (a saved .eml or .txt), if it is longer than that"},
                "element": {"type": "file_input", "action_id": "file",
                            "filetypes": ["eml", "txt"], "max_files": 1},
            },
        ],
    }


def notice(text: str) -> Message:
    """A one-line answer whose wording is ours but may quote the user (escaped by the caller)."""
    return Message(text, tuple(section(text)))


# ---------------------------------------------------------------- diagnosis


def _name(names: Mapping[str, str], provider_id: str | None) -> str:
    if not provider_id:
        return "unknown"
    return escape(names.get(provider_id, provider_id))


def duration(hours: float | None) -> str:
    if hours is None:
        return "unknown"
    if hours < 1 / 60:
        return f"{round(hours * 3600)} s"
    if hours < 1:
        return f"{round(hours * 60)} min"
    if hours < 48:
        return f"{round(hours, 1):g} h"  # an age read a few seconds late is still "28 h"
    return f"{round(hours / 24, 1):g} days"


def _delist_line(d: Diagnosis) -> str:
    route = d.delist
    if route.method == DelistMethod.WEB and route.url:
        return f"*Delist:* web form {escape(route.url)}"
    if route.method == DelistMethod.EMAIL and route.address:
        return f"*Delist:* e-mail `{escape(route.address)}`"
    if route.method == DelistMethod.AUTO_EXPIRY:
        return "*Delist:* the listing expires by itself"
    if route.method == DelistMethod.NONE:
        return "*Delist:* no delist route"
    return f"*Delist:* {escape(str(route.method).replace('_', ' '))}"


def diagnosis_blocks(d: Diagnosis, names: Mapping[str, str]) -> list[Block]:
    """The diagnosis of one bounce, without the draft or buttons."""
    title = "Deferred" if d.temporary else "Bounce"
    who = _name(names, d.receiver)
    blocks: list[Block] = [header(f"{title}: {names.get(d.receiver or '', 'unknown receiver')}")]
    blocks += section(escape(d.verdict or d.summary))
    facts = [
        f"*Sending IP:* {escape(d.sending_ip or 'not found')}",
        f"*Rejected by:* {who}",
        f"*Blocklist:* {_name(names, d.blocklist) if d.blocklist else 'none named'}",
        f"*Reason:* {escape(str(d.reason) if d.reason else 'unknown')}",
        f"*Expected wait:* {duration(d.expected_wait_hours)}",
        _delist_line(d),
    ]
    blocks.append({"type": "section", "fields": [_mrkdwn(f) for f in facts]})
    if d.evidence:
        blocks.append(context("What the receiving server said:"))
        blocks += code(d.evidence)
    if d.next_step:
        blocks += section(f"*Next step:* {escape(d.next_step)}")
    blocks += [context(f":warning: {escape(w)}") for w in d.warnings]
    return blocks


def draft_blocks(draft: str) -> list[Block]:
    note = "Draft request: fill in the [TODO: …] parts, then send it as is."
    return [context(note if "[TODO" in draft else "Draft request (copy it as is):"), *code(draft)]


def diagnosis_messages(
    d: Diagnosis,
    names: Mapping[str, str],
    draft: str | None = None,
    open_value: str | None = None,
    note: str | None = None,
) -> list[Message]:
    """Diagnosis, the draft, and an "Open ticket" button carrying `open_value`."""
    blocks = diagnosis_blocks(d, names)
    if note:
        blocks.append(context(escape(note)))
    if draft:
        blocks += draft_blocks(draft)
    if open_value is not None:
        blocks.append(
            actions("diagnosis", button("Open ticket", "open_ticket", open_value, "primary"))
        )
    text = f"Bounce diagnosed: {escape(d.verdict or d.summary)}"
    return paginate(text[:3000], blocks)


def ip_report(ip: str, listings: Sequence[Listing], note: str = "") -> list[Message]:
    """The DNS picture for one IP: a row per list, a button per listing to open a ticket."""
    listed = [row for row in listings if row.status == "listed"]
    unknown = [row for row in listings if row.status == "unknown"]
    summary = (
        f"{escape(ip)} is listed on {len(listed)} of {len(listings)} lists checked"
        if listings
        else f"No lists were checked for {escape(ip)}"
    )
    blocks: list[Block] = [header(f"DNS picture for {ip}"), *section(summary + ".")]
    if note:
        blocks += section(escape(note))
    for row in listed:
        line = f":red_circle: *{escape(row.list_name)}*"
        if row.meaning:
            line += f" — {escape(row.meaning)}"
        if row.reason:
            line += f"\nReason given: {escape(row.reason)}"
        if row.delist_url:
            line += f"\nDelist: {escape(row.delist_url)}"
        blocks += section(line)
        blocks.append(
            actions(
                f"listing:{row.list_id}"[:255],
                button(f"Open ticket for {row.list_name}"[:75], "open_ticket_ip",
                       f"{ip}|{row.list_id}"),
            )
        )
    if unknown:
        names = ", ".join(escape(row.list_name) for row in unknown)
        blocks.append(context(f":grey_question: No answer from: {names}"))
    clean = len(listings) - len(listed) - len(unknown)
    if clean:
        blocks.append(context(f":large_green_circle: Not listed on {clean} other list(s)."))
    return paginate(summary, blocks)


# ---------------------------------------------------------------- tickets

# The card's controls: (label, action id, style, the lifecycle move it records). Action ids are
# part of the contract with the listeners. "snooze" is a menu of durations (its option values are
# "<ticket id>|<duration>"), the others are buttons whose value is the ticket id. A card shows
# only the controls its ticket's state allows (`card_controls`).
CARD_ACTIONS = (
    ("Request sent", "request_sent", "primary", Kind.SENT),
    ("Delisted", "delisted", None, Kind.DELISTED),
    ("Verified (mail flows)", "verified", "primary", Kind.VERIFIED),
    ("Still blocked", "reopen", None, Kind.REOPENED),
    ("Escalated", "escalated", None, Kind.ESCALATED),
    ("Snooze…", "snooze", None, Kind.SNOOZED),
    ("Close", "close", "danger", Kind.CLOSED),
)
CARD_ACTION_IDS = tuple(action_id for _, action_id, _, _ in CARD_ACTIONS)
CARD_MOVES = {action_id: kind for _, action_id, _, kind in CARD_ACTIONS}
CARD_LABELS = {action_id: label.rstrip("…") for label, action_id, _, _ in CARD_ACTIONS}
# What the propagation re-check asks of a person: does mail flow again, or is it still blocked?
RECHECK_CONTROLS = ("verified", "reopen")
SNOOZE_CHOICES = (("4 hours", "4h"), ("1 day", "1d"), ("3 days", "3d"), ("1 week", "7d"))


def menu(placeholder: str, action_id: str, options: Sequence[tuple[str, str]]) -> Block:
    """A static select: (label, value) options; labels ≤ 75 characters, our own wording."""
    return {
        "type": "static_select",
        "action_id": action_id,
        "placeholder": {"type": "plain_text", "text": placeholder[:150], "emoji": True},
        "options": [
            {"text": {"type": "plain_text", "text": label[:75], "emoji": True},
             "value": value[:150]}
            for label, value in options
        ],
    }


def card_controls(state: str) -> tuple[str, ...]:
    """The action ids a card offers in `state`: each move the lifecycle table allows from there,
    except a move that leaves the state as it is (a second "Delisted"), "Still blocked" where
    "Request sent" asks again anyway (refused), a snooze where no ping is left to hold
    (verified), and anything at all on a closed ticket."""
    now = State(state)
    if now is State.CLOSED:
        return ()
    offered = []
    for _, action_id, _, kind in CARD_ACTIONS:
        target = TRANSITIONS[kind].get(now)
        if target is None:
            continue
        if kind is Kind.SNOOZED:
            if now is not State.VERIFIED:
                offered.append(action_id)
        elif target is not now and not (
            kind is Kind.REOPENED and now in TRANSITIONS[Kind.SENT]
        ):
            offered.append(action_id)
    return tuple(offered)


def controls(block_id: str, ticket_id: str, action_ids: Sequence[str]) -> Block:
    """An actions block of ticket controls, in the card's order."""
    return actions(block_id, *(
        _card_control(label, action_id, ticket_id, style)
        for label, action_id, style, _ in CARD_ACTIONS if action_id in action_ids
    ))


def _card_control(label: str, action_id: str, ticket_id: str, style: str | None) -> Block:
    if action_id == "snooze":
        return menu(label, action_id, [(text, f"{ticket_id}|{how_long}")
                                       for text, how_long in SNOOZE_CHOICES])
    return button(label, action_id, ticket_id, style)


@dataclass(frozen=True)
class TicketView:
    """What a ticket card shows, computed by the caller from the ticket and its expectations."""

    id: str
    ip: str
    provider: str  # display name of the list or receiver the request goes to
    state: str
    age_hours: float  # since the clock started (request sent), else since opened
    clock: str  # "since the request" | "since opened"
    expected_hours: float | None  # when it becomes overdue, from the same start
    owner: str | None = None  # a Slack user id
    provider_ticket_ids: tuple[str, ...] = ()
    snoozed_until: str | None = None
    next_step: str = ""
    active: bool = True

    @property
    def overdue(self) -> bool:
        return self.expected_hours is not None and self.age_hours > self.expected_hours


def _user(user_id: str | None) -> str:
    # A stored id we put there ourselves; still, only a well-formed id becomes a mention.
    if user_id and user_id.isalnum() and user_id[:1] in {"U", "W"}:
        return f"<@{user_id}>"
    return "nobody yet"


def age_line(t: TicketView) -> str:
    expected = f", overdue after {duration(t.expected_hours)}" if t.expected_hours else ""
    flag = " :hourglass: *overdue*" if t.overdue and t.active else ""
    return f"{duration(t.age_hours)} {t.clock}{expected}{flag}"


def ticket_card(t: TicketView) -> Message:
    """The ticket's top-level message; its thread holds everything that happens after."""
    facts = [
        f"*State:* {escape(t.state)}",
        f"*Owner:* {_user(t.owner)}",
        f"*Age:* {age_line(t)}",
        f"*Provider ticket:* {escape(', '.join(t.provider_ticket_ids)) or 'none yet'}",
    ]
    if t.snoozed_until:
        facts.append(f"*Snoozed until:* {escape(t.snoozed_until)}")
    card: list[Block] = [
        header(f"{t.id} · {t.ip} · {t.provider}"),
        {"type": "section", "fields": [_mrkdwn(f) for f in facts]},
    ]
    if t.next_step:
        card += section(f"*Next step:* {escape(t.next_step)}")
    offered = card_controls(t.state) if t.active else ()
    if offered:
        card.append(controls(f"ticket:{t.id}", t.id, offered))
    card.append(context("Replies in this thread belong to this ticket: paste the provider's "
                        "answers here."))
    return Message(f"{t.id}: {t.ip} at {t.provider} is {t.state}", tuple(card))


def ticket_rows(tickets: Sequence[TicketView]) -> list[Block]:
    """One line per ticket, oldest first, as /delist list and App Home show them."""
    if not tickets:
        return section("No open tickets.")
    lines = [
        f"*{escape(t.id)}* {escape(t.ip)} at {escape(t.provider)} — {escape(t.state)}, "
        f"{age_line(t)}"
        for t in tickets
    ]
    return section("\n".join(lines))


def ticket_list(tickets: Sequence[TicketView]) -> list[Message]:
    title = f"{len(tickets)} open ticket(s), oldest first"
    return paginate(title, [header(title), *ticket_rows(tickets)])


def ping_message(
    owner: str | None, text: str, ticket_id: str | None = None, offered: Sequence[str] = ()
) -> Message:
    """A ping in a ticket thread: the owner is mentioned on purpose; the text is not markup.
    `offered` card controls (action ids) come with it, as buttons for ticket `ticket_id`."""
    prefix = _user(owner) + " " if owner else ""
    if prefix == "nobody yet ":
        prefix = ""
    body = list(section(prefix + escape(text)))
    if ticket_id and offered:
        body.append(controls(f"ping:{ticket_id}", ticket_id, offered))
    return Message(prefix + escape(text), tuple(body))


# ---------------------------------------------------------------- App Home


def home_view(tickets: Sequence[TicketView] | None = None) -> dict[str, Any]:
    """The Home tab: open tickets, oldest first, with age against the expected wait."""
    body: list[Block] = [header("delistbot")]
    if tickets is not None:
        body += [header(f"Open tickets ({len(tickets)}), oldest first")]
        rows = ticket_rows(tickets)
        room = 100 - 5  # Home tabs hold at most 100 blocks; keep room for the rest
        if len(rows) > room:
            shown = sum(b["text"]["text"].count("\n") + 1 for b in rows[: room - 1])
            rows = [*rows[: room - 1], context(
                f"…and {len(tickets) - shown} newer ticket(s): `/delist list` shows them all.")]
        body += rows
    body += [{"type": "divider"}, *section(HELP_TEXT)]
    return {"type": "home", "blocks": body}

"""Tickets in Slack: each ticket is one card (a message) and one thread.

A ticket opened from `/delist <bounce>` gets its card as a new top-level message, and its thread
is the card's. A ticket opened from a bounce pasted or e-mailed into the channel lives in that
message's thread; the bot's diagnosis reply there becomes the card. Card locations are kept in the
Slack store (`slack_cards`) so every change can `chat.update` the card; the thread itself is
recorded on the ticket (`attach_thread`) so replies there find it.

Everything here runs after the ack, on the runner.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from slack_sdk.errors import SlackApiError

from bot.config import parse_duration
from bot.core.errors import ConfigError, DelistbotError
from bot.core.model import Diagnosis, Reason
from bot.core.tickets import RECHECK_STEP, TRANSITIONS, Event, IllegalMove, Kind, State, Ticket
from bot.service.recheck import Rechecked
from bot.service.tickets import Applied, Opened, TicketService, utc_now
from bot.slack import blocks
from bot.slack.ports import IpPicture
from bot.slack.replies import Replies
from bot.slack.store import SlackStore
from bot.slack.surface import Surface
from bot.slack.text import escape

log = logging.getLogger(__name__)

SNOOZE = timedelta(days=1)  # a card posted before the snooze menu existed carries no duration
MAX_SNOOZE = timedelta(days=30)
CARD_GROUP = "card:"  # reply outbox groups holding a ticket's card and its story
_WAIT_OVER = frozenset({State.DELISTED, State.VERIFIED, State.CLOSED})
# What the thread is told a card button did ("<@U…> marked it delisted: DL-3 is now delisted.").
_DONE = {
    "request_sent": "marked the request sent",
    "delisted": "marked it delisted",
    "verified": "marked it verified (mail flows)",
    "reopen": "marked it still blocked",
    "escalated": "marked it escalated",
    "close": "closed it",
}
_AFTER = {"reopen": " A new cycle: send the request again, then press Request sent."}
# The re-check ping's request in Slack's words: its buttons come with it (`ping_offer`).
SLACK_RECHECK_STEP = ("send a test message, then press *Verified (mail flows)* if mail flows "
                      "again or *Still blocked* if it still bounces (below, or on the ticket's "
                      "card).")


class TicketFlows:
    def __init__(
        self,
        tickets: TicketService,
        surface: Surface,
        store: SlackStore,
        names: Mapping[str, str],
        wake_pinger: Callable[[], None] = lambda: None,
        clock: Callable[[], datetime] = utc_now,
        check_ip: Callable[[str], IpPicture] | None = None,
        replies: Replies | None = None,
    ) -> None:
        self.tickets, self.surface, self.store, self.names = tickets, surface, store, names
        self.replies = replies or Replies(store, surface)
        self.replies.on_first = self.card_delivered
        self.replies.then = self.story
        self.wake_pinger, self.clock, self.check_ip = wake_pinger, clock, check_ip
        self.recheck: Callable[[datetime], Sequence[Rechecked]] | None = None

    # ------------------------------------------------------------ views

    def view(self, t: Ticket, now: datetime | None = None) -> blocks.TicketView:
        now = now or self.clock()
        start = t.requested_at or t.acknowledged_at
        clock = "since the request" if start else "since opened"
        age = (now - (start or t.opened_at)).total_seconds() / 3600
        return blocks.TicketView(
            id=t.id,
            ip=t.ip,
            provider=self.names.get(t.list_key, t.list_key or "unknown provider"),
            state=str(t.state),
            age_hours=max(0.0, age),
            clock=clock,
            # Once delisted the provider's wait is over: no "overdue" against it any more.
            expected_hours=None if t.state in _WAIT_OVER else self.tickets.waits(t).overdue_hours,
            owner=t.owner,
            provider_ticket_ids=t.provider_ticket_ids,
            snoozed_until=t.snoozed_until.strftime("%Y-%m-%d %H:%M UTC")
            if t.snoozed_until else None,
            next_step=self._next_step(t),
            active=t.state is not State.CLOSED,
        )

    @staticmethod
    def _next_step(t: Ticket) -> str:
        by_state = {
            State.REQUESTED: "Wait for the provider's answer; paste it in this thread.",
            State.ACKNOWLEDGED: "The provider has it; paste its next answer in this thread.",
            State.ESCALATED: "Escalated: wait for the escalation team's answer.",
            State.DELISTED: "Delisted: wait for propagation, then re-check the IP.",
            State.VERIFIED: "Verified: close the ticket when mail flows again.",
            State.REFUSED: "Refused: fix what the provider named, then ask again.",
        }
        return by_state.get(t.state) or str(t.diagnosis.get("next_step") or "")

    def open_views(self) -> list[blocks.TicketView]:
        now = self.clock()
        active = sorted(self.tickets.tickets(active_only=True), key=lambda t: t.opened_at)
        return [self.view(t, now) for t in active]

    def thread_of(self, ref: str) -> str | None:
        return self.tickets.get(ref).slack_thread_ts

    def find(self, ref: str) -> list[Ticket]:
        """A ticket by DL-id, or the open tickets of an IP."""
        if ref.upper().startswith("DL-"):
            return [self.tickets.get(ref)]
        return self.tickets.store.find_by_ip(ref)

    # ------------------------------------------------------------ opening

    def open_from_command(
        self, channel: str, user: str | None, data: bytes, source: str
    ) -> list[Opened]:
        """/delist <bounce>: a ticket per bounce, its card top-level, its story in the thread."""
        opened = self.tickets.open_from_bounce(data, source, self.clock(), actor=_actor(user))
        for result in opened:
            if result.ticket is not None:
                self._publish(result, channel, user, None, thread_ts=None)
        return opened

    def open_from_message(
        self, channel: str, thread_ts: str, clicked_ts: str | None, user: str | None,
        data: bytes, source: str,
    ) -> list[Opened]:
        """A bounce posted in the channel: the ticket lives in that message's thread."""
        now = self.clock()
        opened = self.tickets.open_from_bounce(
            data, source, now, channel=channel, thread_ts=thread_ts, actor=_actor(user)
        )
        for result in opened:
            if result.ticket is not None:
                self._publish(result, channel, user, clicked_ts, thread_ts=thread_ts)
        return opened

    def open_from_listing(self, channel: str, user: str | None, ip: str, list_id: str) -> Opened:
        """A button on the DNS picture: the listing itself is the evidence."""
        name = self.names.get(list_id, list_id)
        d = Diagnosis(
            source=f"dns:{list_id}", is_bounce=True, sending_ip=ip, sending_ip_source="input",
            blocklist=list_id, reason=Reason.BLOCKED,
            evidence=f"{ip} is listed on {name} (DNS check)",
            verdict=f"{ip} is listed on {name}.",
        )
        result = self.tickets.open_from_diagnosis(d, "", self.clock(), actor=_actor(user))
        if result.ticket is not None:
            self._publish(result, channel, user, None, thread_ts=None)
        return result

    def _publish(
        self, result: Opened, channel: str, user: str | None,
        clicked_ts: str | None, thread_ts: str | None,
    ) -> None:
        """Post the ticket's card and its story: the diagnosis and the draft in its thread.

        `thread_ts` is the bounce's own thread when it was posted in the channel (the card
        becomes a reply there), else None (the card is a new top-level message and its thread
        is the ticket's). `clicked_ts` is the diagnosis whose "Open ticket" was pressed: it
        loses its button instead of being posted again.
        """
        ticket = result.ticket
        assert ticket is not None
        now = self.clock()
        if user and not ticket.owner:
            ticket = self.tickets.assign(ticket.id, user, now, actor=_actor(user))
        if not result.created and ticket.slack_thread_ts and ticket.slack_channel and (
            ticket.slack_thread_ts != thread_ts
        ):
            self._joined(result, ticket, channel, thread_ts)
            return
        if not result.created and self.store.reply_waiting(f"{CARD_GROUP}{ticket.id}:"):
            # Slack has not taken this ticket's card yet (an outage): one card is enough.
            here = (f"Same IP and list as {ticket.id} ({ticket.state}); its card is waiting for "
                    "Slack and will appear in its channel.")
            self.replies.send(f"same:{ticket.id}:{time.time_ns()}", channel, thread_ts,
                              blocks.diagnosis_messages(result.diagnosis, self.names, note=here))
            return
        if thread_ts and ticket.slack_thread_ts != thread_ts:
            ticket = self.tickets.attach_thread(ticket.id, channel, thread_ts, now)
        # Through the reply outbox, so that Slack being down delays the card, never loses it;
        # `card_delivered` records where it went (and a top-level card's thread is the ticket's).
        # The DNS picture and the draft are made once the card and diagnosis are out (`story`),
        # and queued with them, so a restart in between loses neither.
        group = f"{CARD_GROUP}{ticket.id}:{time.time_ns()}"
        diagnosis = [] if clicked_ts else blocks.diagnosis_messages(result.diagnosis, self.names)
        self.replies.send(group, channel, thread_ts,
                          [blocks.ticket_card(self.view(ticket, now)), *diagnosis],
                          then={"story": ticket.id})
        if clicked_ts:
            clicked = blocks.diagnosis_messages(
                result.diagnosis, self.names, note=f"Ticket {ticket.id} opened; its card is below.")
            self._update_quietly(channel, clicked_ts, clicked[-1])  # the page with the button

    def story(self, group: str, then: Mapping[str, Any]) -> list[blocks.Message]:
        """The rest of a new ticket's story, made when its card is out: the DNS picture of its
        IP now, and the draft request."""
        ticket = self.tickets.get(str(then["story"]))
        return [*self._dns_picture(ticket.ip), *self._draft(ticket)]

    def card_delivered(self, group: str, channel: str, ts: str, late: bool) -> None:
        """The reply outbox delivered a reply's first message; for a card, remember where."""
        if not group.startswith(CARD_GROUP):
            return
        ticket_id = group[len(CARD_GROUP):].rpartition(":")[0]
        self.store.keep_card(ticket_id, channel, ts)
        ticket = self.tickets.get(ticket_id)
        if ticket.slack_thread_ts is None:  # a top-level card: its thread is the ticket's
            ticket = self.tickets.attach_thread(ticket_id, channel, ts, self.clock())
        if late:  # the ticket may have moved while the card waited for Slack
            self.refresh(ticket)

    def _update_quietly(self, channel: str, ts: str, message: blocks.Message) -> None:
        try:
            self.replies.update(channel, ts, message)
        except SlackApiError as err:  # cosmetic (a button to remove): the ticket goes on
            log.warning("could not update message %s in %s: %s", ts, channel, err)

    def _dns_picture(self, ip: str) -> list[blocks.Message]:
        """What the block lists say about the IP now, under the diagnosis."""
        if self.check_ip is None:
            return []
        try:
            picture = self.check_ip(ip)
        except Exception:  # the DNS picture is evidence; the ticket and its draft go on
            log.exception("DNS check of %s for a new ticket failed", ip)
            return [blocks.notice(f"The DNS check of {ip} failed; try `/delist {ip}` later.")]
        return blocks.ip_report(picture.ip, picture.listings, picture.note)

    def _joined(
        self, result: Opened, ticket: Ticket, channel: str, thread_ts: str | None
    ) -> None:
        """Another bounce for a ticket that already has a thread: say so here and there."""
        assert ticket.slack_channel and ticket.slack_thread_ts
        here = (f"Same IP and list as {ticket.id} ({ticket.state}); its card and thread are in "
                f"<#{ticket.slack_channel}>. Replies about it belong there.")
        messages = blocks.diagnosis_messages(result.diagnosis, self.names, note=here)
        # Under the bounce when it has a thread, else top-level with its pages under it.
        stamp = time.time_ns()
        self.replies.send(f"same:{ticket.id}:{stamp}", channel, thread_ts, messages)
        note = f"Another bounce for {ticket.id} ({escape(result.diagnosis.source)})."
        self.replies.send(f"note:{ticket.id}:{stamp}", ticket.slack_channel,
                          ticket.slack_thread_ts, [blocks.notice(note)])
        self.refresh(ticket)

    def _draft(self, ticket: Ticket) -> list[blocks.Message]:
        try:
            draft = self.tickets.draft(ticket.id)
        except DelistbotError as exc:
            return [blocks.notice(f"No draft: {escape(str(exc))}")]
        return blocks.paginate(
            f"Draft request for {ticket.id}", blocks.draft_blocks(_draft_text(draft)))

    # ------------------------------------------------------------ moves

    def press(self, action_id: str, ref: str, user: str, channel: str, choice: str = "") -> None:
        """A card button: move the ticket, update the card, say who did what in the thread.

        `choice` is the snooze menu's duration ("4h", "3d"); other buttons have none.
        """
        now = self.clock()
        try:
            if action_id == "snooze":
                length = snooze_length(choice)
                ticket = self.tickets.snooze(ref, now + length, now, actor=_actor(user))
                done = (f"snoozed it for {blocks.duration(length.total_seconds() / 3600)} "
                        f"(pings wait until {(now + length).strftime('%Y-%m-%d %H:%M UTC')})")
            else:
                kind, done = blocks.CARD_MOVES[action_id], _DONE[action_id]
                current = self.tickets.get(ref)
                if _already(current, kind):  # pressed twice, or by two people: once is enough
                    self.surface.ephemeral(channel, user, blocks.notice(
                        f"{current.id} is already {current.state}; nothing to change."))
                    return
                ticket = self.tickets.move(ref, Event(kind, _actor(user)), now)
        except IllegalMove:
            # A card (or ping) older than the ticket's last move: say so, and show the card anew.
            current = self.tickets.get(ref)
            self.surface.ephemeral(channel, user, blocks.notice(
                f"{current.id} is {current.state} now, so “{blocks.CARD_LABELS[action_id]}” no "
                "longer applies; its card shows what it can do now."))
            self.refresh(current)
            return
        except DelistbotError as exc:
            self.surface.ephemeral(channel, user, blocks.notice(
                f"{escape(ref)}: {escape(str(exc))}"))
            return
        self.refresh(ticket)
        self._say(ticket, f"<@{user}> {done}: {ticket.id} is now {ticket.state}."
                  + _AFTER.get(action_id, ""))
        if action_id == "delisted":
            self.queue_confirmation(ticket, "marked delisted by hand")

    def thread_reply(self, channel: str, thread_ts: str, user: str | None, text: str) -> None:
        """A message in a thread: a provider reply moves its ticket; other text is a note."""
        ticket = self.tickets.store.find_by_thread(channel, thread_ts)
        if ticket is None:
            return  # not a ticket thread: other conversations are none of our business
        # Replies in a ticket's thread belong to that ticket, whatever ids or IPs they quote.
        applied = self.tickets.apply_reply(
            text, self.clock(), ref=ticket.id, channel=channel, thread_ts=thread_ts,
            actor=_actor(user))
        self._after_reply(applied)

    def channel_reply(self, user: str | None, text: str) -> bool:
        """A provider mail forwarded or pasted top-level: True if it moved a ticket."""
        if not self.tickets.classify(text).recognised:
            return False
        applied = self.tickets.apply_reply(text, self.clock(), actor=_actor(user))
        if applied.ticket is None:
            return False
        self._after_reply(applied)
        return True

    def _after_reply(self, applied: Applied) -> None:
        ticket = applied.ticket
        if ticket is None or not applied.reply.recognised:
            return  # a plain note: kept in the ticket's log, nothing to say
        self.refresh(ticket)
        kind = str(applied.reply.kind)
        if applied.refused:
            self._say(ticket, f"That reads as '{kind}', which {ticket.id} cannot take while "
                      f"{ticket.state}; noted in its log.")
            return
        ids = escape(", ".join(applied.reply.ticket_ids))  # read from the provider's mail
        extra = f" (provider ticket {ids})" if ids else ""
        self._say(ticket, f"Provider reply recognised as {kind}{extra}: {ticket.id} is now "
                  f"{ticket.state}.")
        if ticket.state is State.DELISTED and applied.changed:
            self.queue_confirmation(ticket, "the provider confirmed it")

    def queue_confirmation(self, ticket: Ticket, how: str) -> None:
        """The confirmation ping goes through the outbox: delivered once, retried if Slack fails."""
        if self.tickets.queue_confirmation(ticket, how, self.clock()):
            self.wake_pinger()

    def dns_recheck(self, now: datetime) -> None:
        """The ping loop's DNS re-checks: a ticket moved by what DNS says gets its card updated;
        the confirmation or "still blocked" ping it queued goes out in the same tick."""
        if self.recheck is None:
            return
        for result in self.recheck(now):
            if result.moved:
                self.refresh(result.ticket)
            log.info("DNS re-check: %s", result.message)

    def ping_note(self, row: Any) -> str:
        """Words a ping needs at the moment it goes out (the outbox holds the core's text)."""
        if row.kind == "overdue":
            return self.tickets.next_step(self.tickets.get(row.ticket_id))
        if row.kind == "recheck":
            return self._recheck(self.tickets.get(row.ticket_id))
        return ""

    def ping_words(self, row: Any) -> str:
        """A ping's text as Slack shows it: the re-check asks for the buttons that come with it,
        not for the CLI's commands."""
        if row.kind != "recheck":
            return str(row.text)
        step = SLACK_RECHECK_STEP if self.ping_offer(row) else "send a test message."
        return str(row.text).replace(RECHECK_STEP, f"re-check the IP and {step}")

    def ping_offer(self, row: Any) -> tuple[str, ...]:
        """The card controls a ping carries: the re-check's "Verified (mail flows)" and "Still
        blocked", while the ticket can still take them."""
        if row.kind != "recheck":
            return ()
        allowed = blocks.card_controls(self.tickets.get(row.ticket_id).state)
        offered = tuple(a for a in blocks.RECHECK_CONTROLS if a in allowed)
        return offered if offered == blocks.RECHECK_CONTROLS else ()

    def _recheck(self, ticket: Ticket) -> str:
        """For the propagation re-check ping: what the list's DNS says about the IP now."""
        if self.recheck is not None and ticket.number is not None:
            # The tick's DNS re-checks ran just before this ping: a DNS list that answered
            # moved the ticket or replaced this reminder, so only "no answer" is left to say.
            # Lists without a zone (Microsoft's) are not looked up at all: sweeping every list
            # here, for each ping in turn, held the later pings back by a DNS deadline each.
            checked, status, detail = self.tickets.store.dns_state(ticket.number)
            delisted = ticket.delisted_at
            if status == "unknown" and checked and delisted and checked >= delisted:
                return f"DNS re-check: the list did not answer ({detail})."
            return ""
        if self.check_ip is None:
            return ""
        picture = self.check_ip(ticket.ip)
        rows = [x for x in picture.listings if x.list_id == ticket.list_key]
        if not rows:
            return ""  # not a DNS list (a receiver's own block): only a test message can tell
        listed = [x.list_name for x in rows if x.status == "listed"]
        if listed:
            return f"DNS re-check: still listed on {', '.join(listed)}."
        if all(x.status == "not listed" for x in rows):
            return f"DNS re-check: {rows[0].list_name} no longer lists it."
        return "DNS re-check: the list did not answer."

    # ------------------------------------------------------------ helpers

    def refresh(self, ticket: Ticket) -> None:
        """Update the ticket's card, through the outbox (if Slack is down, it waits)."""
        where = self.store.card(ticket.id)
        if where:
            self.replies.update(where[0], where[1], blocks.ticket_card(self.view(ticket)))

    def _say(self, ticket: Ticket, text: str) -> None:
        """A note in the ticket's thread, through the outbox."""
        if ticket.slack_channel and ticket.slack_thread_ts:
            self.replies.send(f"say:{ticket.id}:{time.time_ns()}", ticket.slack_channel,
                              ticket.slack_thread_ts, [blocks.notice(text)])


def snooze_length(choice: str) -> timedelta:
    """The snooze menu's value ("4h", "1d", "3d"): a duration up to 30 days, else an error."""
    if not choice:
        return SNOOZE
    length = timedelta(seconds=parse_duration(choice, "snooze"))
    if not timedelta(minutes=1) <= length <= MAX_SNOOZE:
        raise ConfigError(f"snooze: {choice} is not between 1 minute and 30 days")
    return length


def _already(ticket: Ticket, kind: Kind) -> bool:
    """The ticket is where `kind` leads, and making the move again would change nothing."""
    moves = TRANSITIONS[kind]
    return ticket.state in moves.values() and moves.get(ticket.state) in (None, ticket.state)


def _actor(user: str | None) -> str:
    return f"slack:{user}" if user else "slack"


def _draft_text(draft: Any) -> str:
    """The draft to copy as is (its [TODO: …] prompts show what is still to fill in)."""
    return str(getattr(draft, "text", draft))

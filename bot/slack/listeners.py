"""Bolt listeners: ack first, hand the work to the runner, render with `bot.slack.blocks`.

One `message` listener routes every message subtype (Bolt runs only the first matching listener,
and `app.message()` never fires for the empty-text messages that forwarded e-mails are).
Catch-alls registered last answer 200 to anything we do not handle, so Slack never sees a 404 and
never retries for nothing.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from slack_bolt import Ack, App, BoltResponse
from slack_sdk.errors import SlackApiError

from bot.core.dnsbl import parse_target
from bot.core.errors import DelistbotError
from bot.core.model import Diagnosis
from bot.slack import blocks
from bot.slack.ports import Runner, Services
from bot.slack.replies import Replies
from bot.slack.store import SlackStore
from bot.slack.surface import Surface
from bot.slack.text import escape, from_slack
from bot.slack.ticket_flows import TicketFlows

log = logging.getLogger(__name__)

CARD_ACTION_IDS = blocks.CARD_ACTION_IDS
_STATUS = re.compile(r"^status\s+(\S+)$", re.IGNORECASE)
_TICKET = re.compile(r"^DL-\d+$", re.IGNORECASE)
# Files read as mail: Slack's forwarded e-mails ("email"), and saved messages dropped in ("eml").
_EMAIL_TYPES = {"email", "eml"}
# Errors meaning "I cannot post there": tell the user privately instead of failing silently.
_NOT_POSTABLE = {"not_in_channel", "channel_not_found", "is_archived"}


def parse_command(text: str) -> tuple[str, str]:
    """`/delist` text -> (verb, argument). Verbs: modal, help, ip, list, status, bounce, and
    word (one word that is none of these)."""
    stripped = text.strip()
    if not stripped:
        return "modal", ""
    lowered = stripped.lower()
    if lowered in {"help", "-h", "--help", "?"}:
        return "help", ""
    if lowered == "list":
        return "list", ""
    status = _STATUS.match(stripped)
    if status:
        return "status", status.group(1)
    if _TICKET.match(stripped):  # `/delist DL-42`: that ticket, as `status DL-42` shows it
        return "status", stripped
    try:
        return "ip", str(ipaddress.ip_address(stripped.strip("[]")))
    except ValueError:
        pass
    if not any(c.isspace() for c in stripped):
        return "word", stripped  # one word is never a bounce: a typo, a host name, a bad IP
    return "bounce", stripped


def word_answer(word: str) -> str:
    """The ack for `/delist <one word>` that is neither a verb nor an IP address."""
    if word.lower() == "status":
        return "`/delist status` needs a ticket id or an IP: `/delist status DL-42`."
    if any(c in word for c in ".:/") or word.isdigit():  # meant as an address
        problem = parse_target(word).problem or f"{word!r} is not an IP address"
        return f"{escape(problem)}. `/delist help` shows what I can do."
    return (f"I do not know `/delist {escape(word)}`. `/delist help` shows what I can do; "
            "a bounce is pasted whole, headers included.")


@dataclass
class Context:
    """Where an answer goes: the channel, the user who asked, and how to reach them privately."""

    channel: str
    user: str | None
    response_url: str | None = None
    respond: Callable[..., Any] | None = None


class Handlers:
    def __init__(
        self,
        services: Services,
        surface: Surface,
        store: SlackStore,
        runner: Runner,
        flows: TicketFlows,
        replies: Replies,
        auto_open: frozenset[str] = frozenset(),
    ) -> None:
        self.services = services
        self.surface = surface
        self.store = store
        self.runner = runner
        self.flows = flows
        self.replies = replies
        self.auto_open = auto_open  # channels where a bounce opens its ticket without a click

    # ------------------------------------------------------------ registration

    def register(self, app: App) -> None:
        app.middleware(self.drop_repeated_events)
        app.command("/delist")(self.on_command)
        app.view("delist_paste")(self.on_paste_submitted)
        app.event("message")(self.on_message)
        app.event("app_home_opened")(self.on_home_opened)
        app.action("open_ticket")(self.on_open_ticket)
        app.action("open_ticket_ip")(self.on_open_ticket_ip)
        for action_id in CARD_ACTION_IDS:
            app.action(action_id)(self.on_card_button)
        # Catch-alls last: events, actions and views we do not handle get 200 (not 404).
        app.event(re.compile(".*"))(_ignore)
        app.action(re.compile(".*"))(_ack_only)
        app.view(re.compile(".*"))(_ack_only)

    # ------------------------------------------------------------ middleware

    def drop_repeated_events(
        self, body: dict[str, Any], next: Callable[[], BoltResponse]
    ) -> BoltResponse | None:
        """Act on each Events API delivery once, even across retries and restarts."""
        event_id = body.get("event_id") if body.get("type") == "event_callback" else None
        if event_id and not self.store.claim(f"event:{event_id}"):
            log.info("dropping repeated delivery of %s", event_id)
            return BoltResponse(status=200, body="")
        return next()

    # ------------------------------------------------------------ /delist

    def on_command(
        self, ack: Ack, command: dict[str, Any], respond: Callable[..., Any]
    ) -> None:
        verb, arg = parse_command(from_slack(command.get("text", "")))
        ctx = Context(command["channel_id"], command.get("user_id"),
                      respond=respond if command.get("response_url") else None)
        if verb == "help":
            ack(**_ack_kwargs(blocks.help_message()))
        elif verb == "modal":
            ack()
            self.surface.open_modal(command["trigger_id"], blocks.paste_modal(ctx.channel))
        elif verb == "ip":
            ack(text=f"Checking {arg} against the blocklists…")
            self.runner.submit(self.report_ip, ctx, arg)
        elif verb == "list":
            ack(text="Looking up the open tickets…")
            self.runner.submit(self.list_tickets, ctx)
        elif verb == "status":
            ack(text="Looking up the ticket…")
            self.runner.submit(self.ticket_status, ctx, arg)
        elif verb == "word":
            ack(**_ack_kwargs(blocks.notice(word_answer(arg))))
        else:
            ack(text="Diagnosing the bounce you pasted…")
            self.runner.submit(self.diagnose_pasted, ctx, arg.encode(), "slack:/delist")

    def on_paste_submitted(self, ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        values = view["state"]["values"]
        pasted = ((values.get("bounce") or {}).get("text") or {}).get("value") or ""
        files = ((values.get("file") or {}).get("file") or {}).get("files") or []
        if not pasted.strip() and not files:
            ack(response_action="errors",
                errors={"bounce": "Paste the bounce here, or attach it below."})
            return
        ack()
        ctx = Context(view.get("private_metadata") or "", body["user"]["id"])
        if files:
            self.runner.submit(self.diagnose_attached, ctx, str(files[0]["id"]))
        else:
            self.runner.submit(self.diagnose_pasted, ctx, pasted.encode(), "slack:modal")

    def diagnose_attached(self, ctx: Context, file_id: str) -> None:
        """The form's attachment: read through files.info (files:read), then as if pasted."""
        with self._reporting(ctx):
            data = self.surface.file_text(file_id)
            if not data:
                self._private(ctx, blocks.notice("I could not read the file you attached."))
                return
        self.diagnose_pasted(ctx, data, f"slack:file/{file_id}")

    def report_ip(self, ctx: Context, ip: str) -> None:
        with self._reporting(ctx):
            picture = self.services.check_ip(ip)
            # Through the reply outbox: Slack being down delays the picture, never loses it.
            self.replies.send(f"ip:{ctx.channel}:{ip}:{time.time_ns()}", ctx.channel, None,
                              blocks.ip_report(picture.ip, picture.listings, picture.note))

    def diagnose_pasted(self, ctx: Context, data: bytes, source: str) -> None:
        """/delist <bounce> or the form: a ticket (card + thread) for each bounce it holds."""
        with self._reporting(ctx):
            opened = self.flows.open_from_command(ctx.channel, ctx.user, data, source)
            bounces = [o for o in opened if o.diagnosis.is_bounce]
            if not bounces:
                reason = opened[0].diagnosis.not_bounce_reason if opened else "empty input"
                self._private(ctx, blocks.notice(
                    f"That does not read as a bounce ({escape(reason or 'no reason given')}). "
                    "Paste the whole bounce, headers included, or try `/delist help`."
                ))
                return
            for o in bounces:
                if o.ticket is None:  # a bounce, but nothing to delist: show the diagnosis
                    self._post_diagnosis(ctx, o.diagnosis, thread_ts=None,
                                         note=f"No ticket: {o.problem}")

    def list_tickets(self, ctx: Context) -> None:
        with self._reporting(ctx):
            for message in blocks.ticket_list(self.flows.open_views()):
                self._private(ctx, message)

    def ticket_status(self, ctx: Context, ref: str) -> None:
        with self._reporting(ctx):
            found = self.flows.find(ref)
            if not found:
                self._private(ctx, blocks.notice(f"No open ticket for {escape(ref)}."))
            for ticket in found:
                self._private(ctx, blocks.ticket_card(self.flows.view(ticket)))

    # ------------------------------------------------------------ channel messages

    def on_message(self, event: dict[str, Any]) -> None:
        subtype = event.get("subtype")
        if subtype not in (None, "file_share", "thread_broadcast"):
            return  # edits, deletes, joins…: nothing to diagnose
        if not self.store.claim(f"message:{event.get('channel')}:{event.get('ts')}"):
            return  # the same message delivered under another event id
        thread_ts = event.get("thread_ts")
        if thread_ts and thread_ts != event.get("ts"):
            self.runner.submit(self.thread_reply, event)
        else:
            self.runner.submit(self.diagnose_message, event)

    def thread_reply(self, event: dict[str, Any]) -> None:
        data = self._message_bytes(event)
        if data:
            self.flows.thread_reply(event["channel"], event["thread_ts"], event.get("user"),
                                    data.decode("utf-8", "replace"))

    def diagnose_message(self, event: dict[str, Any]) -> None:
        channel, ts = event["channel"], event["ts"]
        data = self._message_bytes(event)
        if not data:
            return
        source = f"slack:{channel}/{ts}"
        bounces = [d for d in self.services.diagnose(data, source) if d.is_bounce]
        if not bounces:
            # A provider's reply forwarded to the channel moves its ticket; anything else is
            # conversation, and the bot stays silent.
            self.flows.channel_reply(event.get("user"), data.decode("utf-8", "replace"))
            return
        user = event.get("user") if event.get("user") != "USLACKBOT" else None
        if channel in self.auto_open:
            self.flows.open_from_message(channel, ts, None, user, data, source)
            return
        key = f"{channel}/{ts}"
        self.store.keep_source(key, channel, ts, data)
        # Through the reply outbox: the event is already recorded as handled, so if Slack is
        # down now, the diagnosis must still go out later (once).
        for n, d in enumerate(bounces):
            draft = self.services.draft(d)
            self.replies.send(f"diagnosis:{key}:{n}", channel, ts, blocks.diagnosis_messages(
                d, self.services.names, draft, open_value=key))

    def _message_bytes(self, event: dict[str, Any]) -> bytes | None:
        if event.get("subtype") == "file_share":
            for file in event.get("files") or []:
                if file.get("filetype") in _EMAIL_TYPES or file.get("mode") in {"email",
                                                                              "file_access"}:
                    data = self.surface.email_text(file["id"])
                    if data:
                        return data
            return None
        text = from_slack(event.get("text") or "")
        return text.encode() if text.strip() else None

    # ------------------------------------------------------------ home, buttons

    def on_home_opened(self, event: dict[str, Any]) -> None:
        if event.get("tab", "home") != "home":
            return
        self.surface.publish_home(event["user"], blocks.home_view(self.flows.open_views()))

    def on_open_ticket(self, ack: Ack, body: dict[str, Any], action: dict[str, Any]) -> None:
        """"Open ticket" under a diagnosis in a channel thread: the card joins that thread."""
        ack()
        self.runner.submit(self.open_ticket, body, action["value"])

    def open_ticket(self, body: dict[str, Any], key: str) -> None:
        user = body["user"]["id"]
        container = body.get("container") or {}
        channel = container.get("channel_id") or (body.get("channel") or {}).get("id") or ""
        ctx = Context(channel, user)
        with self._reporting(ctx):
            found = self.store.source(key)
            if found is None:
                self._private(ctx, blocks.notice("I no longer have that bounce; paste it again."))
                return
            if not self.store.claim(f"open:{key}"):  # a second click, or two people at once
                self._private(ctx, blocks.notice("That bounce's ticket is already open, in "
                                                 "this thread."))
                return
            source_channel, ts, data = found
            opened = self.flows.open_from_message(
                source_channel, ts, container.get("message_ts"), user, data, f"slack:{key}")
            for o in opened:
                if o.diagnosis.is_bounce and o.ticket is None:
                    self._private(ctx, blocks.notice(f"No ticket: {escape(o.problem or '')}"))

    def on_open_ticket_ip(self, ack: Ack, body: dict[str, Any], action: dict[str, Any]) -> None:
        ack()
        ip, _, list_id = action["value"].partition("|")
        channel = (body.get("channel") or {}).get("id") or ""
        self.runner.submit(self.open_ticket_ip, Context(channel, body["user"]["id"]), ip, list_id)

    def open_ticket_ip(self, ctx: Context, ip: str, list_id: str) -> None:
        with self._reporting(ctx):
            result = self.flows.open_from_listing(ctx.channel, ctx.user, ip, list_id)
            if result.ticket is None:
                self._private(ctx, blocks.notice(f"No ticket: {escape(result.problem or '')}"))

    def on_card_button(self, ack: Ack, body: dict[str, Any], action: dict[str, Any]) -> None:
        ack()
        channel = (body.get("channel") or {}).get("id") or ""
        # Buttons carry "DL-n"; the snooze menu's chosen option carries "DL-n|<duration>".
        value = action.get("value") or (action.get("selected_option") or {}).get("value") or ""
        # The same press delivered again (Socket Mode redelivers what it thinks was not acked)
        # carries the same action_ts: act on it once.
        message_ts = ((body.get("container") or {}).get("message_ts")
                      or (body.get("message") or {}).get("ts") or "")
        action_ts = action.get("action_ts")
        if action_ts and not self.store.claim(
            f"press:{channel}:{message_ts}:{action['action_id']}:{value}:{action_ts}"
        ):
            log.info("dropping repeated delivery of the press %s on %s", action_ts, value)
            return
        ref, _, choice = value.partition("|")
        self.runner.submit(self.press, action["action_id"], ref, body["user"]["id"], channel,
                           choice)

    def press(self, action_id: str, ref: str, user: str, channel: str, choice: str = "") -> None:
        with self._reporting(Context(channel, user)):
            self.flows.press(action_id, ref, user, channel, choice)

    # ------------------------------------------------------------ helpers

    def _post_diagnosis(
        self,
        ctx: Context,
        d: Diagnosis,
        thread_ts: str | None,
        open_value: str | None = None,
        note: str | None = None,
    ) -> None:
        draft = self.services.draft(d)
        messages = blocks.diagnosis_messages(d, self.services.names, draft, open_value, note)
        self.replies.send(f"diagnosis:{ctx.channel}:{time.time_ns()}", ctx.channel, thread_ts,
                          messages)

    def _private(self, ctx: Context, message: blocks.Message) -> None:
        if ctx.respond:
            ctx.respond(**_ack_kwargs(message), response_type="ephemeral")
        elif ctx.user:
            self.surface.ephemeral(ctx.channel, ctx.user, message)

    @contextlib.contextmanager
    def _reporting(self, ctx: Context) -> Iterator[None]:
        """Tell the user once, privately, when their request failed; the runner logs the rest."""
        try:
            yield
        except DelistbotError as exc:  # the request cannot be done (no such ticket…): say why
            self._tell_failure(ctx, f"Sorry, I could not do that: {escape(str(exc))}")
            log.info("told %s: %s", ctx.user, exc)
        except SlackApiError as err:
            if err.response.get("error") in _NOT_POSTABLE and ctx.respond:
                # Only the response_url still reaches the user; tell them how to fix it.
                ctx.respond(text="I cannot post in this channel. Invite me with "
                            "`/invite @delistbot`, then try again.", response_type="ephemeral")
                log.info("cannot post in %s (%s); told the user", ctx.channel,
                         err.response.get("error"))
                return
            raise  # Slack refused or is unreachable: telling the user would fail the same way
        except Exception:
            self._tell_failure(ctx, "Sorry, something broke on my side; the details are in my log.")
            raise

    def _tell_failure(self, ctx: Context, text: str) -> None:
        try:
            self._private(ctx, blocks.notice(text))
        except Exception:  # telling failed too; the original error is what the log must show
            log.exception("could not tell the user about a failure")


def _ack_kwargs(message: blocks.Message) -> dict[str, Any]:
    return {"text": message.text, "blocks": list(message.blocks)}


def _ignore() -> None:
    return None


def _ack_only(ack: Ack) -> None:
    ack()

"""The console: the Slack app's own listeners, driven from a terminal, printing what Slack shows.

`delistbot serve` falls back to it when no Slack credentials are set, so anyone can try the bot
(and `make run` shows it on a fresh machine). Input, one item at a time:

  /delist …                 a slash command in #console (`/delist` alone opens the paste form)
  <a pasted bounce>         a plain message in #console; end it with a line "." (or two
                            empty lines: one is not enough, bounces contain them)
  :thread <ts|DL-n> <text>  a reply in a message's (or ticket's) thread; text may continue
                            on following lines, ended like a paste
  :click <n>                press button [n] as numbered in the output (or pick option
                            [n] of a menu)
  :home                     open the App Home tab
  :later <duration>         move the bot's clock on (e.g. `:later 25h`): due pings go out
  :quit                     leave (end of input does too)

Requests go through `App.dispatch` as Socket Mode requests (no signature in that mode), exactly the
path Slack's own deliveries take after transport.
"""

from __future__ import annotations

import itertools
import json
import re
import threading
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any, TextIO

from slack_bolt import App, BoltRequest

from bot.config import parse_duration
from bot.core.errors import ConfigError, DelistbotError
from bot.slack.blocks import Block, Message
from bot.slack.ports import DeferredRunner

CHANNEL = "CCONSOLE"
USER = "UCONSOLE"
_ENTITIES = (("&lt;", "<"), ("&gt;", ">"), ("&amp;", "&"))


_MENTION = re.compile(r"<@([A-Z0-9]+)>")
# mrkdwn's *bold* as Slack shows it (bold, here plain); never inside a code block.
_BOLD = re.compile(r"(?<![\w*])\*([^*\n]+)\*(?![\w*])")
_FENCED = "```"


def _plain(text: str) -> str:
    if not text.startswith(_FENCED):
        text = _BOLD.sub(r"\1", text)
    text = _MENTION.sub(r"@\1", text)
    for entity, char in _ENTITIES:
        text = text.replace(entity, char)
    return text


class ConsoleClock:
    """The console's time: the real clock, moved on by however much `:later` asked for."""

    def __init__(self, base: Callable[[], datetime]) -> None:
        self.base = base
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return self.base() + self.offset

    def advance(self, by: timedelta) -> None:
        self.offset += by


def render_blocks(
    blocks: list[Block] | tuple[Block, ...],
    on_button: Callable[[Block, Block, Block | None], int],
) -> list[str]:
    """Blocks as terminal lines; buttons (and each option of a menu) get numbers to `:click`."""
    lines: list[str] = []
    for block in blocks:
        kind = block.get("type")
        if kind == "header":
            lines.append(f"== {block['text']['text']} ==")
        elif kind == "section":
            if "text" in block:
                lines.extend(_plain(block["text"]["text"]).splitlines())
            for item in block.get("fields", []):
                lines.append("  " + _plain(item["text"]))
        elif kind == "context":
            lines.append("  " + " ".join(_plain(e.get("text", "")) for e in block["elements"]))
        elif kind == "actions":
            labels = []
            for element in block["elements"]:
                if element.get("type") == "static_select":
                    choices = " ".join(f"[{on_button(block, element, option)}] "
                                       f"{option['text']['text']}"
                                       for option in element.get("options", []))
                    labels.append(f"{element['placeholder']['text']} {choices}")
                else:
                    labels.append(f"[{on_button(block, element, None)}] "
                                  f"{element['text']['text']}")
            lines.append("  " + "   ".join(labels))
        elif kind == "divider":
            lines.append("-" * 40)
        elif kind == "input":
            lines.append(f"  {block['label']['text']}:")
    return lines


class ConsoleSurface:
    """A `Surface` that prints. Message timestamps are counters, as readable as Slack's."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self._ts = itertools.count(1)
        self._lock = threading.Lock()
        # block, element, the menu option it stands for (None for a button), channel, ts
        self.buttons: list[tuple[Block, Block, Block | None, str, str | None]] = []
        self.threads: dict[str, str] = {}  # message ts -> thread it lives in
        self.modal_open: dict[str, Any] | None = None
        # (thread, payload) -> ts of the post; thread None: a top-level post, also kept by its own ts
        self.metadata: dict[tuple[str | None, str], str] = {}

    def _button(self, channel: str, ts: str | None) -> Callable[[Block, Block, Block | None], int]:
        def register(block: Block, element: Block, option: Block | None) -> int:
            self.buttons.append((block, element, option, channel, ts))
            return len(self.buttons)

        return register

    def _print(self, title: str, message: Message, channel: str, ts: str | None) -> None:
        with self._lock:
            self.out.write(f"\n{title}\n")
            for line in render_blocks(message.blocks, self._button(channel, ts)) or [
                _plain(message.text)
            ]:
                self.out.write(f"  {line}\n" if line else "\n")
            self.out.flush()

    def next_ts(self) -> str:
        """The next message's ts, the bot's or the user's: one clock, as in a Slack channel."""
        with self._lock:
            return f"{next(self._ts)}.000100"

    def post(
        self,
        channel: str,
        message: Message,
        thread_ts: str | None = None,
        broadcast: bool = False,
        metadata: dict[str, Any] | None = None,
    ) -> str:
        ts = self.next_ts()
        if metadata:
            payload = str(metadata.get("event_payload"))
            self.metadata[(thread_ts or ts, payload)] = ts
            if not thread_ts:
                self.metadata[(None, payload)] = ts
        self.threads[ts] = thread_ts or ts
        where = f"in thread {thread_ts}" if thread_ts else "in #console"
        also = " (also sent to the channel)" if broadcast else ""
        self._print(f"delistbot {where}{also}, message {ts}:", message, channel, ts)
        return ts

    def find_in_thread(
        self, channel: str, thread_ts: str | None, event_type: str, key: str
    ) -> str | None:
        return self.metadata.get((thread_ts, str({"key": key})))

    def update(self, channel: str, ts: str, message: Message) -> None:
        self._print(f"delistbot updated message {ts}:", message, channel, ts)

    def ephemeral(
        self, channel: str, user: str, message: Message, thread_ts: str | None = None
    ) -> None:
        self._print("delistbot (only you can see this):", message, channel, None)

    def open_modal(self, trigger_id: str, view: dict[str, Any]) -> None:
        self.modal_open = view
        self._print(f"[form] {view['title']['text']}", Message("", view["blocks"]), CHANNEL, None)

    def publish_home(self, user: str, view: dict[str, Any]) -> None:
        self._print("[App Home]", Message("", view["blocks"]), CHANNEL, None)

    def email_text(self, file_id: str) -> bytes | None:
        return None  # nobody can e-mail the console

    def file_text(self, file_id: str) -> bytes | None:
        return None  # nor attach a file: the console's form takes a paste


class Console:
    def __init__(
        self,
        app: App,
        surface: ConsoleSurface,
        runner: DeferredRunner,
        tick: Callable[[], int] = lambda: 0,
        thread_of: Callable[[str], str | None] = lambda ref: None,
        clock: ConsoleClock | None = None,
    ) -> None:
        self.app, self.surface, self.runner = app, surface, runner
        self.clock = clock  # the bot's clock, which `:later` moves on
        self.thread_of = thread_of  # DL-n -> the ticket's thread
        self.tick = tick  # the ping loop's tick: due pings show right after each input
        self._ids = itertools.count(1)

    # ------------------------------------------------------------ requests

    def dispatch(self, body: dict[str, Any]) -> None:
        response = self.app.dispatch(BoltRequest(mode="socket_mode", body=body))
        if response.status != 200:
            self.surface.out.write(f"\n(the app answered {response.status})\n")
        elif response.body:
            self._print_ack(response.body)
        self.runner.drain()
        self.tick()

    def _print_ack(self, body: str) -> None:
        try:
            payload = json.loads(body)
        except ValueError:
            payload = {"text": body}
        message = Message(payload.get("text", ""), tuple(payload.get("blocks") or ()))
        self.surface.ephemeral(CHANNEL, USER, message)

    def command(self, text: str) -> None:
        n = next(self._ids)
        self.dispatch({
            "command": "/delist", "text": text, "channel_id": CHANNEL, "user_id": USER,
            "team_id": "TCONSOLE", "trigger_id": f"console-trigger-{n}",
            "response_url": "",
        })

    def message(self, text: str, thread_ts: str | None = None) -> str:
        ts = self.surface.next_ts()
        self.surface.threads[ts] = thread_ts or ts  # `:thread <ts>` may answer it too
        lines = len(text.splitlines())
        where = f"in thread {thread_ts}" if thread_ts else "in #console"
        self.surface.out.write(f"  (you: message {ts} {where}, {lines} line"
                               f"{'s' if lines != 1 else ''})\n")
        event: dict[str, Any] = {
            "type": "message", "channel": CHANNEL, "user": USER, "text": text, "ts": ts,
            "channel_type": "channel",
        }
        if thread_ts:
            event["thread_ts"] = thread_ts
        self.dispatch({
            "type": "event_callback", "team_id": "TCONSOLE", "event": event,
            "event_id": f"EvCONSOLE{next(self._ids)}",
        })
        return ts

    def submit_modal(self, text: str) -> None:
        view = self.surface.modal_open or {}
        self.surface.modal_open = None
        self.dispatch({
            "type": "view_submission", "team": {"id": "TCONSOLE"}, "user": {"id": USER},
            "view": {
                "type": "modal", "id": "VCONSOLE",
                "callback_id": view.get("callback_id", "delist_paste"),
                "private_metadata": view.get("private_metadata", CHANNEL),
                "state": {"values": {"bounce": {"text": {"type": "plain_text_input",
                                                         "value": text}}}},
            },
        })

    def click(self, number: int) -> None:
        if not 1 <= number <= len(self.surface.buttons):
            self.surface.out.write(f"\nThere is no button [{number}].\n")
            return
        block, element, option, channel, ts = self.surface.buttons[number - 1]
        action: dict[str, Any] = {"action_id": element.get("action_id", ""),
                                  "block_id": block.get("block_id", ""),
                                  "type": element.get("type", "button")}
        if option is None:
            action["value"] = element.get("value", "")
        else:
            action["selected_option"] = option
        self.dispatch({
            "type": "block_actions", "team": {"id": "TCONSOLE"}, "user": {"id": USER},
            "channel": {"id": channel}, "trigger_id": f"console-trigger-{next(self._ids)}",
            "container": {"type": "message", "channel_id": channel, "message_ts": ts},
            "message": {"ts": ts, "thread_ts": self.surface.threads.get(ts or "")},
            "actions": [action],
        })

    def later(self, how_long: str) -> None:
        """Move the bot's clock on, then let the ping loop look at what fell due."""
        if self.clock is None:
            self.surface.out.write("\nThis console's clock cannot be moved.\n")
            return
        try:
            seconds = parse_duration(how_long.strip(), ":later")
        except ConfigError as exc:
            self.surface.out.write(f"\n{exc}\n")
            return
        self.clock.advance(timedelta(seconds=seconds))
        self.surface.out.write(f"\n(the clock now reads {self.clock():%Y-%m-%d %H:%M} UTC)\n")
        self.tick()

    def home(self) -> None:
        self.dispatch({
            "type": "event_callback", "team_id": "TCONSOLE",
            "event": {"type": "app_home_opened", "user": USER, "tab": "home"},
            "event_id": f"EvCONSOLE{next(self._ids)}",
        })

    # ------------------------------------------------------------ the read loop

    def run(self, lines: Iterator[str], prompt: Callable[[], None] = lambda: None) -> bool:
        """Handle lines until they end (True) or one says :quit (False)."""
        prompt()
        for line in lines:
            if not self.handle(line.rstrip("\n"), lines):
                return False
            prompt()
        return True

    def handle(self, line: str, more: Iterator[str]) -> bool:
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            return True
        self.surface.out.write(f"\n> {_first_line(stripped)}\n")
        if stripped in {":quit", ":q", ":exit"}:
            return False
        if stripped.startswith("/delist"):
            rest = stripped[len("/delist"):].strip()
            if not rest:
                self.command("")
                if self.surface.modal_open is not None:
                    self.submit_modal(_read_paste(more))
            elif "\n" not in rest and not _looks_like_paste_start(rest):
                self.command(rest)
            else:
                self.command(rest + "\n" + _read_paste(more))
        elif stripped.startswith(":thread"):
            parts = stripped.split(maxsplit=2)
            if len(parts) < 2:
                self.surface.out.write("\nUsage: :thread <ts|DL-n> <text>\n")
                return True
            text = parts[2] if len(parts) == 3 else ""
            follow = _read_paste(more) if not text else ""
            thread = self._thread(parts[1])
            if thread is None:
                return True
            self._echo(follow)
            self.message((text + "\n" + follow).strip(), thread_ts=thread)
        elif stripped.startswith(":click"):
            _, _, number = stripped.partition(" ")
            self.click(int(number) if number.strip().isdigit() else 0)
        elif stripped == ":home":
            self.home()
        elif stripped.startswith(":later"):
            self.later(stripped[len(":later"):])
        elif stripped.startswith(":") and " " not in stripped:
            self.surface.out.write(f"\nThere is no console command {stripped}: {_COMMANDS}\n")
        else:
            self.message((line + "\n" + _read_paste(more)).strip("\n"))
        return True

    def _echo(self, pasted: str) -> None:
        """What was pasted, in brief: the transcript should show what the bot is answering."""
        lines = [line for line in pasted.splitlines() if line.strip()]
        if lines:  # how many lines it was, `message` says
            self.surface.out.write(f"  | {_first_line(lines[0].strip())}\n")

    def _thread(self, ref: str) -> str | None:
        """The thread `:thread` names (a ticket's, or a message's), None after saying why not."""
        if ref.upper().startswith("DL-"):
            try:
                thread = self.thread_of(ref)
            except DelistbotError as exc:
                said = str(exc)
                self.surface.out.write(f"\n{said[:1].upper()}{said[1:]}.\n")
                return None
            if thread is None:
                self.surface.out.write(f"\n{ref} has no thread yet (its card was not posted).\n")
            return thread
        if ref not in self.surface.threads:
            self.surface.out.write(f"\nThere is no message {ref} here; give a DL-n or the ts "
                                   "of a message above.\n")
            return None
        return self.surface.threads[ref]


_COMMANDS = ":thread <DL-n|ts> <text>, :click N, :later 1d, :home, :quit"
_PASTE_START = re.compile(r"^(from|received|return-path|subject|date|delivered-to):", re.I)


def _looks_like_paste_start(text: str) -> bool:
    return bool(_PASTE_START.match(text))


def _first_line(text: str) -> str:
    first = text.splitlines()[0] if text else ""
    return first if len(first) < 100 else first[:97] + "…"


def _read_paste(lines: Iterator[str]) -> str:
    """Lines up to a lone '.' (mail's own end-of-text marker) or two empty lines in a row.

    One empty line is not enough: bounces have empty lines between their parts.
    """
    out: list[str] = []
    for line in lines:
        text = line.rstrip("\n")
        if text.strip() == ".":
            break
        if not text.strip() and out and not out[-1].strip():
            out.pop()
            break
        out.append(text)
    return "\n".join(out).rstrip("\n")

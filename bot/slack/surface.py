"""Where listeners send their answers: the Slack Web API, or the console.

Listeners talk to a `Surface`, never to a WebClient directly, so the console (`delistbot serve`
without Slack credentials) runs the very same handlers and prints what Slack would show.
`WebSurface` is the one place that builds the WebClient: `SLACK_API_BASE_URL` (so tests point it
at a fake), and retries on 429 (honouring Retry-After) and 5xx, which slack_sdk does not do by
default.
"""

from __future__ import annotations

import urllib.request
from typing import Any, Protocol

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry import RetryHandler
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)

from bot.slack.blocks import Message

# A ping posted top-level (no thread) just before a crash is among the channel's latest messages.
HISTORY_LOOKBACK = 200
# Whole e-mails forwarded to a channel are small; refuse to read anything absurd into memory.
MAX_EMAIL_BYTES = 10 * 1024 * 1024
# Slack error codes (HTTP 200, ok=false) that mean "not now" rather than "no".
_PASSING_ERRORS = frozenset(
    {"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}
)
# Refusals about where a message was to go, not about the message: another channel may take it.
PLACE_ERRORS = frozenset({"not_in_channel", "channel_not_found", "is_archived",
                          "restricted_action"})


def refusal(exc: BaseException) -> str | None:
    """Slack's error code when it refused for good (not_in_channel, invalid_auth,
    invalid_blocks…); None when waiting may cure it (5xx, 429, no connection)."""
    if not isinstance(exc, SlackApiError):
        return None
    status = getattr(exc.response, "status_code", 200)
    error = exc.response.get("error")
    if status >= 500 or status == 429 or error in _PASSING_ERRORS:
        return None
    return str(error or f"HTTP {status}")


class Surface(Protocol):
    def post(
        self,
        channel: str,
        message: Message,
        thread_ts: str | None = None,
        broadcast: bool = False,
        metadata: dict[str, Any] | None = None,
    ) -> str:
        """Post a message; returns its ts."""
        ...

    def find_in_thread(
        self, channel: str, thread_ts: str | None, event_type: str, key: str
    ) -> str | None:
        """The ts of the message carrying this metadata key in the thread, if there is one
        (thread None: among the channel's latest top-level messages)."""
        ...

    def update(self, channel: str, ts: str, message: Message) -> None: ...

    def ephemeral(
        self, channel: str, user: str, message: Message, thread_ts: str | None = None
    ) -> None: ...

    def open_modal(self, trigger_id: str, view: dict[str, Any]) -> None: ...

    def publish_home(self, user: str, view: dict[str, Any]) -> None: ...

    def email_text(self, file_id: str) -> bytes | None:
        """The raw text of an e-mail shared into a channel, or None if it is not an e-mail."""
        ...

    def file_text(self, file_id: str) -> bytes | None:
        """The content of a file a user attached on purpose (the paste form), whatever its type."""
        ...


def make_client(
    token: str | None, base_url: str, retries: int = 2, ambiguous: bool = True
) -> WebClient:
    """The app's WebClient: configurable base URL and retries for 429, 5xx and dropped links.

    With `ambiguous=False` only a 429 is retried: after a 5xx or a dropped connection Slack may
    have posted the message all the same, so a blind retry could post it twice.
    """
    handlers: list[RetryHandler] = [RateLimitErrorRetryHandler(max_retry_count=retries)]
    if ambiguous:
        handlers += [
            ConnectionErrorRetryHandler(max_retry_count=retries),
            ServerErrorRetryHandler(max_retry_count=retries),
        ]
    return WebClient(token=token, base_url=base_url, timeout=10, retry_handlers=handlers)


class WebSurface:
    """`client` for everything but posting; `once` (no retries after an ambiguous failure) for
    chat.postMessage: every message goes through an outbox (the pings', the replies') whose
    retries first look for the message's key in the thread."""

    def __init__(self, client: WebClient, once: WebClient | None = None) -> None:
        self.client = client
        self.once = once or client

    def post(
        self,
        channel: str,
        message: Message,
        thread_ts: str | None = None,
        broadcast: bool = False,
        metadata: dict[str, Any] | None = None,
    ) -> str:
        extra: dict[str, Any] = {}
        if thread_ts:
            extra["thread_ts"] = thread_ts
            if broadcast:
                extra["reply_broadcast"] = True
        if metadata:
            extra["metadata"] = metadata
        # Never retried blindly after a 5xx or a dropped connection (Slack may have posted it):
        # the outboxes retry, after looking for the message's key.
        response = self.once.chat_postMessage(channel=channel, **message.as_kwargs(), **extra)
        return str(response["ts"])

    def find_in_thread(
        self, channel: str, thread_ts: str | None, event_type: str, key: str
    ) -> str | None:
        if thread_ts is None:  # a top-level post: it would be among the channel's latest
            page = self.client.conversations_history(
                channel=channel, include_all_metadata=True, limit=HISTORY_LOOKBACK
            )
            return _carrier(page.get("messages") or [], event_type, key)
        cursor = None
        while True:
            page = self.client.conversations_replies(
                channel=channel, ts=thread_ts, include_all_metadata=True, limit=200, cursor=cursor
            )
            found = _carrier(page.get("messages") or [], event_type, key)
            if found:
                return found
            cursor = (page.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                return None

    def update(self, channel: str, ts: str, message: Message) -> None:
        kwargs = message.as_kwargs()
        kwargs.pop("unfurl_links")  # chat.update takes no unfurl flags; it keeps the original's
        kwargs.pop("unfurl_media")
        self.client.chat_update(channel=channel, ts=ts, **kwargs)

    def ephemeral(
        self, channel: str, user: str, message: Message, thread_ts: str | None = None
    ) -> None:
        kwargs = message.as_kwargs()
        kwargs.pop("unfurl_links")
        kwargs.pop("unfurl_media")
        if thread_ts:
            kwargs["thread_ts"] = thread_ts
        self.client.chat_postEphemeral(channel=channel, user=user, **kwargs)

    def open_modal(self, trigger_id: str, view: dict[str, Any]) -> None:
        self.client.views_open(trigger_id=trigger_id, view=view)

    def publish_home(self, user: str, view: dict[str, Any]) -> None:
        self.client.views_publish(user_id=user, view=view)

    def email_text(self, file_id: str) -> bytes | None:
        info = self.client.files_info(file=file_id)["file"]
        if info.get("filetype") not in {"email", "eml"} and info.get("mode") != "email":
            return None  # a picture, a PDF…: not a mail, nothing to diagnose
        url = info.get("url_private_download") or info.get("url_private")
        if url:
            return self._download(url)
        plain = info.get("plain_text") or ""
        return plain.encode() if plain else None

    def file_text(self, file_id: str) -> bytes | None:
        info = self.client.files_info(file=file_id)["file"]
        url = info.get("url_private_download") or info.get("url_private")
        return self._download(url) if url else None

    def _download(self, url: str) -> bytes:
        # The file lives behind the bot token (files:read); urllib, as slack_sdk itself uses.
        request = urllib.request.Request(
            url, headers={"Authorization": f"Bearer {self.client.token}"}
        )
        with urllib.request.urlopen(request, timeout=20) as response:
            return bytes(response.read(MAX_EMAIL_BYTES + 1))[:MAX_EMAIL_BYTES]


def _carrier(messages: list[dict[str, Any]], event_type: str, key: str) -> str | None:
    """The ts of the first message whose metadata carries this event type and key."""
    for message in messages:
        meta = message.get("metadata") or {}
        if meta.get("event_type") == event_type and (
            (meta.get("event_payload") or {}).get("key") == key
        ):
            return str(message.get("ts"))
    return None

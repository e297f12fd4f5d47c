"""What the Slack edge itself must remember across restarts, in the bot's SQLite file.

`slack_events`: every Events API delivery we acted on, by key (the event_id, or a message's
channel+ts). Slack retries a delivery it thinks failed (X-Slack-Retry-Num) and a restart can replay
one; claiming the key in a unique row before acting makes the second delivery a no-op.
`slack_sources`: the bounce text behind an "Open ticket" button, so a click days later still has it.
`slack_cards`: where each ticket's card message is, so every change can update it.
`slack_outbox`: replies to a bounce (the diagnosis and its pages) not yet delivered: queued before
the first attempt, marked sent with the ts Slack gave, so Slack being down loses none of them.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlite_utils

# Slack stops retrying after about 5 minutes; a week is ample to catch replays after a restart.
EVENT_TTL_SECONDS = 7 * 86400


@dataclass(frozen=True)
class QueuedReply:
    """One message of a reply waiting in `slack_outbox`."""

    id: int
    key: str  # "<group>#<seq>": stable, so queuing the same reply twice adds nothing
    group: str
    seq: int
    channel: str
    thread_ts: str | None  # None for seq > 0: under the group's first message
    text: str
    blocks: tuple[dict[str, Any], ...]
    attempts: int  # deliveries begun; > 0 means one may have reached Slack already
    # What this row is when it is not a new message: {"update": ts} replaces the message at ts
    # (chat.update), {"then": {...}} stands for messages made when it is reached (`Replies.then`).
    special: dict[str, Any] | None = None

    @property
    def update_ts(self) -> str | None:
        return (self.special or {}).get("update")

    @property
    def then(self) -> dict[str, Any] | None:
        return (self.special or {}).get("then")


class SlackStore:
    def __init__(self, path: Path | str) -> None:
        conn = sqlite3.connect(str(path), check_same_thread=False, timeout=30)
        self._db = sqlite_utils.Database(conn)
        self._lock = threading.Lock()  # one connection shared by Bolt's listener threads
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.table("slack_events").create(
                {"key": str, "seen_at": float}, pk="key", if_not_exists=True
            )
            self._db.table("slack_sources").create(
                {"key": str, "channel": str, "ts": str, "data": bytes, "created_at": float},
                pk="key",
                if_not_exists=True,
            )
            self._db.table("slack_cards").create(
                {"ticket_id": str, "channel": str, "ts": str}, pk="ticket_id", if_not_exists=True
            )
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS slack_outbox ("
                " id INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT NOT NULL UNIQUE,"
                " grp TEXT NOT NULL, seq INTEGER NOT NULL, channel TEXT NOT NULL, thread_ts TEXT,"
                " message TEXT NOT NULL, created_at REAL NOT NULL,"
                " attempts INTEGER NOT NULL DEFAULT 0, sent_ts TEXT, sent_at REAL, error TEXT)"
            )

    def claim(self, key: str, now: float | None = None) -> bool:
        """True the first time `key` is seen (the caller should act), False ever after."""
        now = time.time() if now is None else now
        with self._lock, self._db.conn:
            cursor = self._db.execute(
                "INSERT OR IGNORE INTO slack_events (key, seen_at) VALUES (?, ?)", [key, now]
            )
            if cursor.rowcount and int(now) % 100 == 0:  # prune now and then, not on every call
                self._db.execute(
                    "DELETE FROM slack_events WHERE seen_at < ?", [now - EVENT_TTL_SECONDS]
                )
            return cursor.rowcount == 1

    def release(self, key: str) -> None:
        """Forget a claim whose work failed before anything was posted, so a retry can redo it."""
        with self._lock, self._db.conn:
            self._db.execute("DELETE FROM slack_events WHERE key = ?", [key])

    def keep_source(self, key: str, channel: str, ts: str, data: bytes) -> None:
        with self._lock, self._db.conn:
            self._db.table("slack_sources").insert(
                {"key": key, "channel": channel, "ts": ts, "data": data, "created_at": time.time()},
                replace=True,
            )

    def keep_card(self, ticket_id: str, channel: str, ts: str) -> None:
        with self._lock, self._db.conn:
            self._db.table("slack_cards").insert(
                {"ticket_id": ticket_id, "channel": channel, "ts": ts}, replace=True
            )

    def card(self, ticket_id: str) -> tuple[str, str] | None:
        """Where a ticket's card is (channel, ts), to chat.update it."""
        with self._lock:
            rows = list(self._db.query(
                "SELECT channel, ts FROM slack_cards WHERE ticket_id = ?", [ticket_id]))
        return (rows[0]["channel"], rows[0]["ts"]) if rows else None

    def source(self, key: str) -> tuple[str, str, bytes] | None:
        with self._lock:
            rows = list(
                self._db.query(
                    "SELECT channel, ts, data FROM slack_sources WHERE key = ?", [key]
                )
            )
        if not rows:
            return None
        return rows[0]["channel"], rows[0]["ts"], rows[0]["data"]

    # ------------------------------------------------------------ the reply outbox

    def queue_reply(
        self, group: str, channel: str, thread_ts: str | None,
        messages: list[tuple[str, list[dict[str, Any]]]], append: bool = False,
        then: dict[str, Any] | None = None,
    ) -> None:
        """Queue a reply's messages in order; the first in `thread_ts`, the rest under it.

        Queuing the same group again adds nothing, unless `append`: then the messages follow
        what the group already holds. `then` queues, after them, a stand-in for messages that
        are made when it is reached (a new ticket's DNS picture and draft): queued with the
        card, so that a crash before they are made cannot lose them.
        """
        now = time.time()
        rows = [json.dumps({"text": text, "blocks": blocks}) for text, blocks in messages]
        if then is not None:
            rows.append(json.dumps({"text": "", "blocks": [], "then": then}))
        with self._lock, self._db.conn:
            start = self._next_seq(group) if append else 0
            self._insert(group, channel, thread_ts, rows, start, now)

    def _next_seq(self, group: str) -> int:
        row = list(self._db.query(
            "SELECT MAX(seq) + 1 AS next FROM slack_outbox WHERE grp = ?", [group]))
        return int(row[0]["next"] or 0)

    def _insert(self, group: str, channel: str, thread_ts: str | None, rows: list[str],
                start: int, now: float) -> None:
        for seq, message in enumerate(rows, start=start):
            self._db.execute(
                "INSERT OR IGNORE INTO slack_outbox"
                " (key, grp, seq, channel, thread_ts, message, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                [f"{group}#{seq}", group, seq, channel, thread_ts if seq == 0 else None,
                 message, now],
            )

    def expand(self, row: QueuedReply, messages: list[tuple[str, list[dict[str, Any]]]]) -> None:
        """Put the messages a stand-in (`then`) stood for after it, and mark it done: in one
        transaction, so a crash leaves either the stand-in or its messages, never both."""
        rows = [json.dumps({"text": text, "blocks": blocks}) for text, blocks in messages]
        with self._lock, self._db.conn:
            done = self._db.execute(
                "UPDATE slack_outbox SET sent_at = ? WHERE id = ? AND sent_at IS NULL",
                [time.time(), row.id]).rowcount
            if done:
                self._insert(row.group, row.channel, None, rows, self._next_seq(row.group),
                             time.time())

    def queue_update(self, channel: str, ts: str, text: str,
                     blocks: list[dict[str, Any]]) -> str:
        """Queue a chat.update of the message at `ts`; one still waiting for it is superseded
        (the latest state of a card is the one to show). Returns the update's group."""
        group = f"update:{channel}:{ts}"
        message = json.dumps({"text": text, "blocks": blocks, "update": ts})
        with self._lock, self._db.conn:
            self._db.execute(
                "UPDATE slack_outbox SET error = 'superseded' WHERE grp = ? AND sent_at IS NULL"
                " AND error IS NULL", [group])
            seq = self._next_seq(group)
            self._db.execute(
                "INSERT INTO slack_outbox (key, grp, seq, channel, thread_ts, message, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                [f"{group}#{seq}", group, seq, channel, ts, message, time.time()])
        return group

    def pending_replies(self, group: str | None = None, limit: int = 200) -> list[QueuedReply]:
        """Undelivered messages, oldest reply first, each reply's messages in order."""
        where, args = ("AND grp = ?", [group]) if group else ("", [])
        with self._lock:
            rows = list(self._db.query(
                "SELECT id, key, grp, seq, channel, thread_ts, message, attempts FROM slack_outbox"
                f" WHERE sent_at IS NULL AND error IS NULL {where} ORDER BY id LIMIT ?",
                [*args, limit]))
        out = []
        for row in rows:
            message = json.loads(row["message"])
            special = {k: v for k, v in message.items() if k in ("update", "then")} or None
            out.append(QueuedReply(row["id"], row["key"], row["grp"], row["seq"], row["channel"],
                                   row["thread_ts"], message["text"], tuple(message["blocks"]),
                                   row["attempts"], special))
        return out

    def reply_attempt(self, reply_id: int) -> None:
        """A delivery begins: counted first, so a crash mid-post is known to the next attempt."""
        with self._lock, self._db.conn:
            self._db.execute("UPDATE slack_outbox SET attempts = attempts + 1 WHERE id = ?",
                             [reply_id])

    def reply_sent(self, reply_id: int, ts: str | None) -> None:
        with self._lock, self._db.conn:
            self._db.execute("UPDATE slack_outbox SET sent_ts = ?, sent_at = ? WHERE id = ?",
                             [ts, time.time(), reply_id])

    def first_reply_ts(self, group: str) -> str | None:
        """Where the group's first message went (its thread holds the rest)."""
        with self._lock:
            rows = list(self._db.query(
                "SELECT thread_ts, sent_ts FROM slack_outbox WHERE grp = ? AND seq = 0"
                " AND sent_at IS NOT NULL", [group]))
        return (rows[0]["thread_ts"] or rows[0]["sent_ts"]) if rows else None

    def has_reply_group(self, group: str) -> bool:
        with self._lock:
            return bool(list(self._db.query(
                "SELECT 1 FROM slack_outbox WHERE grp = ? LIMIT 1", [group])))

    def drop_replies(self, group: str, error: str) -> int:
        """Slack refused the reply for good (not_in_channel…): keep it, marked, never retried."""
        with self._lock, self._db.conn:
            return self._db.execute(
                "UPDATE slack_outbox SET error = ? WHERE grp = ? AND sent_at IS NULL"
                " AND error IS NULL", [error, group]).rowcount

    def prune_replies(self, now: float | None = None) -> int:
        """Forget replies delivered (or refused) more than a week ago; nothing waits on them."""
        cutoff = (time.time() if now is None else now) - EVENT_TTL_SECONDS
        with self._lock, self._db.conn:
            return self._db.execute(
                "DELETE FROM slack_outbox WHERE created_at < ?"
                " AND (sent_at IS NOT NULL OR error IS NOT NULL)", [cutoff]).rowcount

    def reply_waiting(self, group_prefix: str) -> bool:
        """Whether a reply whose group starts so is queued and its first message not yet sent."""
        with self._lock:
            return bool(list(self._db.query(
                "SELECT 1 FROM slack_outbox WHERE substr(grp, 1, ?) = ? AND seq = 0"
                " AND sent_at IS NULL AND error IS NULL LIMIT 1",
                [len(group_prefix), group_prefix])))

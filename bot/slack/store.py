"""What the Slack edge itself must remember across restarts, in the bot's SQLite file.

`slack_events`: every Events API delivery we acted on, by key (the event_id, or a message's
channel+ts). Slack retries a delivery it thinks failed (X-Slack-Retry-Num) and a restart can replay
one; claiming the key in a unique row before acting makes the second delivery a no-op.
`slack_sources`: the bounce text behind an "Open ticket" button, so a click days later still has it.
`slack_cards`: where each ticket's card message is, so every change can update it.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import sqlite_utils

# Slack stops retrying after about 5 minutes; a week is ample to catch replays after a restart.
EVENT_TTL_SECONDS = 7 * 86400


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

"""The ticket store: one SQLite file via sqlite-utils, readable with `sqlite-utils` or Datasette.

Tables (plain names, ISO 8601 UTC times, JSON only where a list or a document is stored):
  tickets        one row per ticket; `id` is the human id (DL-42), `number` its integer key
  ticket_events  the append-only log (a trigger refuses UPDATE and DELETE), one row per move
  evidence       further bounces for the same IP and list while the ticket was open
  outbox         pings to deliver; `key` is unique so a ping is queued once, `sent_at` is set
                 only after delivery; `error` is why Slack refused it for good (with `sent_at`
                 still null: never delivered), `retry_at` holds a retry back after an outage

The schema is built by ordered migrations (sqlite_utils.Migrations, set "delistbot") when the file
is opened, so an older file upgrades in place. Never edit an applied migration: add a new one.
Every write runs in one `BEGIN IMMEDIATE` transaction (`Store.write()`): the ticket row and its
event rows commit together or not at all, and concurrent writers queue on SQLite's lock instead of
failing half-way. WAL lets readers run beside a writer.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlite_utils
from sqlite_utils import Migrations

from bot.core.errors import DelistbotError
from bot.core.tickets import ID_PREFIX, WAITING, LogEntry, Ping, PingKind, State, Ticket, Waits

BUSY_TIMEOUT_SECONDS = 30.0
# `timers_due` compares due times in SQLite's julianday (floating point days, milliseconds at
# best): it takes in anything due up to this much after `now`, and leaves out a later ping of the
# cycle only when the earlier one is due this much before `now`, so rounding never hides a ping.
TIMER_MARGIN_DAYS = 2 / 86400
MIGRATIONS = Migrations("delistbot")


class StoreError(DelistbotError):
    """The database file cannot be used (not SQLite, newer schema, locked for too long)."""


# ---------------------------------------------------------------- migrations (append only)


@MIGRATIONS()
def m001_tickets_and_events(db: sqlite_utils.Database) -> None:
    db.execute(
        """
        CREATE TABLE tickets (
            number INTEGER PRIMARY KEY,
            id TEXT UNIQUE,
            ip TEXT NOT NULL,
            receiver TEXT,
            blocklist TEXT,
            list_key TEXT NOT NULL,
            reason TEXT,
            recipient_domain TEXT,
            sender_domain TEXT,
            route_template TEXT,
            evidence TEXT,
            state TEXT NOT NULL,
            owner TEXT,
            provider_ticket_ids TEXT NOT NULL DEFAULT '[]',
            slack_channel TEXT,
            slack_thread_ts TEXT,
            reminder_hours REAL,
            overdue_hours REAL,
            propagation_hours REAL,
            waits_basis TEXT,
            opened_at TEXT NOT NULL,
            requested_at TEXT,
            acknowledged_at TEXT,
            delisted_at TEXT,
            verified_at TEXT,
            closed_at TEXT,
            refused_at TEXT,
            escalated_at TEXT,
            reopened_at TEXT,
            updated_at TEXT,
            diagnosis TEXT NOT NULL DEFAULT '{}',
            bounce_text TEXT NOT NULL DEFAULT ''
        )
        """
    )
    db.execute("CREATE INDEX tickets_ip ON tickets(ip)")
    db.execute(
        """
        CREATE TABLE ticket_events (
            id INTEGER PRIMARY KEY,
            ticket INTEGER NOT NULL REFERENCES tickets(number),
            ticket_id TEXT NOT NULL,
            at TEXT NOT NULL,
            kind TEXT NOT NULL,
            actor TEXT,
            from_state TEXT,
            to_state TEXT NOT NULL,
            text TEXT,
            detail TEXT NOT NULL DEFAULT '{}'
        )
        """
    )
    db.execute("CREATE INDEX ticket_events_ticket ON ticket_events(ticket)")
    for action in ("UPDATE", "DELETE"):
        db.execute(
            f"CREATE TRIGGER ticket_events_no_{action.lower()} BEFORE {action} ON ticket_events"
            " BEGIN SELECT RAISE(ABORT, 'ticket_events is append-only'); END"
        )


@MIGRATIONS()
def m002_outbox(db: sqlite_utils.Database) -> None:
    db.execute(
        """
        CREATE TABLE outbox (
            id INTEGER PRIMARY KEY,
            key TEXT NOT NULL UNIQUE,
            ticket INTEGER NOT NULL REFERENCES tickets(number),
            ticket_id TEXT NOT NULL,
            kind TEXT NOT NULL,
            due_at TEXT NOT NULL,
            text TEXT NOT NULL,
            slack_channel TEXT,
            slack_thread_ts TEXT,
            created_at TEXT NOT NULL,
            claimed_at TEXT,
            claimed_by TEXT,
            attempts INTEGER NOT NULL DEFAULT 0,
            sent_at TEXT
        )
        """
    )
    db.execute("CREATE INDEX outbox_unsent ON outbox(sent_at, due_at)")


@MIGRATIONS()
def m003_evidence_snooze_one_open_ticket(db: sqlite_utils.Database) -> None:
    db.execute("ALTER TABLE tickets ADD COLUMN snoozed_until TEXT")
    db.execute("ALTER TABLE tickets ADD COLUMN evidence_count INTEGER NOT NULL DEFAULT 1")
    db.execute(
        """
        CREATE TABLE evidence (
            id INTEGER PRIMARY KEY,
            ticket INTEGER NOT NULL REFERENCES tickets(number),
            ticket_id TEXT NOT NULL,
            at TEXT NOT NULL,
            source TEXT,
            rejection TEXT,
            bounce_text TEXT NOT NULL DEFAULT '',
            diagnosis TEXT NOT NULL DEFAULT '{}'
        )
        """
    )
    # The backstop for "a second bounce joins the open ticket": at most one ticket per IP and
    # list that is not closed, whatever the code above does.
    db.execute(
        "CREATE UNIQUE INDEX tickets_one_open_per_ip_and_list ON tickets(ip, list_key)"
        " WHERE state <> 'closed'"
    )


@MIGRATIONS()
def m004_dns_recheck(db: sqlite_utils.Database) -> None:
    # The last DNS look-up of the ticket's IP on its list: when, what it said (listed, not_listed,
    # unknown, no_zone) and the list's words. Overwritten by each re-check; a re-check that moves
    # the ticket is also in ticket_events.
    db.execute("ALTER TABLE tickets ADD COLUMN dns_checked_at TEXT")
    db.execute("ALTER TABLE tickets ADD COLUMN dns_status TEXT")
    db.execute("ALTER TABLE tickets ADD COLUMN dns_detail TEXT")


@MIGRATIONS()
def m005_outbox_refusals(db: sqlite_utils.Database) -> None:
    # A ping Slack refuses for good (not_in_channel, invalid_auth…) is not claimed again: `error`
    # says why and when (`failed_at`); a ping that went to the fallback channel instead keeps the
    # reason beside its `sent_at`. `retry_at`: after a passing failure (5xx, 429, no
    # connection), the ping is not claimed before then (a backoff instead of every tick).
    db.execute("ALTER TABLE outbox ADD COLUMN error TEXT")
    db.execute("ALTER TABLE outbox ADD COLUMN failed_at TEXT")
    db.execute("ALTER TABLE outbox ADD COLUMN retry_at TEXT")
    db.execute("CREATE INDEX outbox_ticket ON outbox(ticket)")


@MIGRATIONS()
def m006_timer_indexes(db: sqlite_utils.Database) -> None:
    # The ping loop asks every few seconds which tickets have a ping due that is not yet queued.
    # A ticket row is about a page (its bounce and diagnosis), so reading the timer columns from
    # the rows reads the whole table: these two indexes hold just those columns, for tickets not
    # closed (what is due, and the waits in force) and for closed ones (the learned waits).
    db.execute(
        "CREATE INDEX tickets_timers ON tickets(state, list_key, reminder_hours, overdue_hours,"
        " propagation_hours, waits_basis, requested_at, acknowledged_at, escalated_at,"
        " delisted_at, snoozed_until, id) WHERE state <> 'closed'"
    )
    db.execute(
        "CREATE INDEX tickets_delisting_times ON tickets(list_key, requested_at, delisted_at)"
        " WHERE state = 'closed'"
    )


# ---------------------------------------------------------------- conversions


def iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError("naive datetime: times must carry a timezone")
    return value.astimezone(UTC).isoformat()


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


_TIME_FIELDS = (
    "requested_at",
    "acknowledged_at",
    "delisted_at",
    "verified_at",
    "closed_at",
    "refused_at",
    "escalated_at",
    "reopened_at",
    "snoozed_until",
    "updated_at",
)
_TEXT_FIELDS = (
    "ip",
    "receiver",
    "blocklist",
    "reason",
    "recipient_domain",
    "sender_domain",
    "route_template",
    "evidence",
    "owner",
    "slack_channel",
    "slack_thread_ts",
    "bounce_text",
)


# Every column `row_ticket` reads except the two big ones (diagnosis, bounce_text).
_LEAN = ", ".join(
    [
        "number",
        "state",
        "opened_at",
        "provider_ticket_ids",
        "reminder_hours",
        "overdue_hours",
        "propagation_hours",
        "waits_basis",
        "evidence_count",
        *(f for f in _TEXT_FIELDS if f != "bounce_text"),
        *_TIME_FIELDS,
    ]
)


def ticket_row(ticket: Ticket) -> dict[str, Any]:
    row: dict[str, Any] = {name: getattr(ticket, name) for name in _TEXT_FIELDS}
    row.update({name: iso(getattr(ticket, name)) for name in _TIME_FIELDS})
    row.update(
        list_key=ticket.list_key,
        state=str(ticket.state),
        provider_ticket_ids=json.dumps(list(ticket.provider_ticket_ids)),
        reminder_hours=ticket.waits.reminder_hours,
        overdue_hours=ticket.waits.overdue_hours,
        propagation_hours=ticket.waits.propagation_hours,
        waits_basis=ticket.waits.basis,
        opened_at=iso(ticket.opened_at),
        diagnosis=json.dumps(dict(ticket.diagnosis), sort_keys=True),
        evidence_count=ticket.evidence_count,
    )
    return row


def row_ticket(row: Mapping[str, Any]) -> Ticket:
    opened = _time(row["opened_at"])
    assert opened is not None  # NOT NULL in the schema
    fields: dict[str, Any] = {name: row.get(name) for name in _TEXT_FIELDS}
    fields["bounce_text"] = fields["bounce_text"] or ""
    fields.update({name: _time(row.get(name)) for name in _TIME_FIELDS})
    return Ticket(
        number=row["number"],
        state=State(row["state"]),
        opened_at=opened,
        provider_ticket_ids=tuple(json.loads(row["provider_ticket_ids"] or "[]")),
        waits=Waits(
            row["reminder_hours"],
            row["overdue_hours"],
            row["propagation_hours"],
            row["waits_basis"],
        ),
        diagnosis=json.loads(row.get("diagnosis") or "{}"),
        evidence_count=row.get("evidence_count", 1),
        **fields,
    )


@dataclass(frozen=True)
class OutboxRow:
    id: int
    key: str
    ticket_id: str
    kind: str
    due_at: datetime
    text: str
    slack_channel: str | None
    slack_thread_ts: str | None
    attempts: int
    claimed_by: str | None
    sent_at: datetime | None
    error: str | None = None  # why Slack refused it (delivered elsewhere when sent_at is set)
    failed_at: datetime | None = None

    @property
    def undelivered(self) -> bool:
        """Refused for good and not delivered anywhere: only the CLI still shows it."""
        return self.error is not None and self.sent_at is None

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "key": self.key,
            "due_at": iso(self.due_at),
            "sent_at": iso(self.sent_at),
            "attempts": self.attempts,
            "error": self.error,
            "failed_at": iso(self.failed_at),
        }


def _outbox_row(row: Mapping[str, Any]) -> OutboxRow:
    due_at = _time(row["due_at"])
    assert due_at is not None
    return OutboxRow(
        row["id"],
        row["key"],
        row["ticket_id"],
        row["kind"],
        due_at,
        row["text"],
        row["slack_channel"],
        row["slack_thread_ts"],
        row["attempts"],
        row["claimed_by"],
        _time(row["sent_at"]),
        row["error"],
        _time(row["failed_at"]),
    )


# ---------------------------------------------------------------- the store


class Store:
    """Tickets, their log, evidence and the outbox in one SQLite file."""

    def __init__(self, path: Path | str, migrate: bool = True) -> None:
        self.path = Path(path)
        try:
            conn = sqlite3.connect(
                str(self.path), timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None
            )
            self.db = sqlite_utils.Database(conn)
            self.db.execute("PRAGMA foreign_keys = ON")
            if self.db.journal_mode != "wal":
                self.db.enable_wal()
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{self.path}: not a usable SQLite database ({exc})") from None
        if migrate:
            self.migrate()

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def migrate(self, stop_before: str | None = None) -> list[str]:
        """Apply pending migrations in one transaction (so two processes never race on them)."""
        with self.write():
            pending = [m.name for m in MIGRATIONS.pending(self.db)]
            MIGRATIONS.apply(self.db, stop_before=stop_before)
        return pending

    def applied_migrations(self) -> list[str]:
        return [m.name for m in MIGRATIONS.applied(self.db)]

    @contextmanager
    def write(self) -> Iterator[Store]:
        """One IMMEDIATE transaction: read, decide and write without another writer between."""
        if self.db.conn.in_transaction:  # nested: the outer transaction already holds the lock
            with self.db.atomic():
                yield self
            return
        try:
            self.db.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise StoreError(f"{self.path}: {exc} (another writer held it too long)") from None
        try:
            yield self
        except BaseException:
            self.db.rollback()
            raise
        self.db.execute("COMMIT")

    # -- tickets

    def _query(self, sql: str, params: Iterable[Any] = ()) -> list[Ticket]:
        return [row_ticket(r) for r in self.db.query(sql, list(params))]

    def get(self, number: int) -> Ticket | None:
        found = self._query("SELECT * FROM tickets WHERE number = ?", [number])
        return found[0] if found else None

    def tickets(self, active_only: bool = False) -> list[Ticket]:
        where = " WHERE state <> 'closed'" if active_only else ""
        return self._query(f"SELECT * FROM tickets{where} ORDER BY number")

    def timers(self) -> list[Ticket]:
        """Tickets not closed, for reading their timers only: without the diagnosis and the
        bounce text (the bulk of a row), so never `save` one of these."""
        return self._query(f"SELECT {_LEAN} FROM tickets WHERE state <> 'closed' ORDER BY number")

    def wait_groups(self) -> list[tuple[str, Waits]]:
        """The distinct list and stored waits among tickets not closed. The effective waits (the
        settings file's and learned figures applied) are the same for every ticket of a group."""
        rows = self.db.execute(
            "SELECT DISTINCT list_key, reminder_hours, overdue_hours, propagation_hours,"
            " waits_basis FROM tickets WHERE state <> 'closed' ORDER BY 1, 2, 3, 4, 5"
        ).fetchall()
        return [(r[0], Waits(r[1], r[2], r[3], r[4])) for r in rows]

    def timers_due(
        self,
        now: datetime,
        groups: Sequence[tuple[str, Waits, Waits]],
        unqueued_only: bool = False,
    ) -> list[Ticket]:
        """Tickets not closed that may have a ping due at `now`, lean as `timers()` returns them.

        `groups`: (list, stored waits, effective waits), one per `wait_groups()` row. SQLite works
        out each ticket's reminder, overdue and re-check time the way `bot.core.tickets.schedule`
        does and keeps the tickets with one that has passed; with `unqueued_only`, only those
        whose ping of that kind and cycle (the ping the core would choose: overdue supersedes the
        reminder) is not yet in the outbox. It is a filter, not the judge: it keeps a few too many
        rather than one too few (a ticket of no known group, a time it cannot read), and
        `bot.core.tickets.due` decides what is due from each ticket it returns."""
        if not groups:
            return self.timers()
        values = ", ".join("(?, ?, ?, ?, ?, ?, ?, ?)" for _ in groups)
        params: list[Any] = []
        for list_key, stored, effective in groups:
            params += [
                list_key,
                stored.reminder_hours,
                stored.overdue_hours,
                stored.propagation_hours,
                stored.basis,
                effective.reminder_hours,
                effective.overdue_hours,
                effective.propagation_hours,
            ]
        waiting = ", ".join(f"'{state}'" for state in WAITING)

        def unqueued(kind: PingKind, cycle: str) -> str:
            if not unqueued_only:
                return "1"
            # the key `bot.core.tickets.ping_key` gives: DL-42/overdue/2026-11-01T00:01:00+00:00
            return (
                f"NOT EXISTS (SELECT 1 FROM outbox WHERE outbox.key = s.ticket_ref"
                f" || '/{kind}/' || s.{cycle})"
            )

        late = "COALESCE({} <= julianday(?) + ?, 1)"  # due by now (or unreadable: keep it)
        early = "COALESCE({} <= julianday(?) - ?, 0)"  # surely due before now
        window = [iso(now), TIMER_MARGIN_DAYS]
        # Only columns of the index `tickets_timers` until the rows of the chosen few are read.
        sql = f"""
            WITH w(w_list, w_reminder, w_overdue, w_propagation, w_basis, rem, ovr, prop)
              AS (VALUES {values}),
            t AS (
              SELECT number, state, delisted_at, id AS ticket_ref, w_list IS NULL AS unknown,
                CASE WHEN state = '{State.ESCALATED}' AND escalated_at IS NOT NULL
                  THEN escalated_at ELSE COALESCE(requested_at, acknowledged_at) END AS start,
                COALESCE(julianday(snoozed_until), 0) AS snooze, rem, ovr, prop
              FROM tickets LEFT JOIN w ON w_list = list_key AND w_reminder IS reminder_hours
                AND w_overdue IS overdue_hours AND w_propagation IS propagation_hours
                AND w_basis IS waits_basis
              WHERE state <> 'closed' AND state IN ({waiting}, '{State.DELISTED}')
            ),
            s AS (
              SELECT *,
                max(julianday(start) + rem / 24.0, snooze) AS reminder_jd,
                max(julianday(start) + ovr / 24.0, snooze) AS overdue_jd,
                max(julianday(delisted_at) + prop / 24.0, snooze) AS recheck_jd
              FROM t
            )
            SELECT {_LEAN} FROM tickets WHERE number IN (SELECT number FROM s
              WHERE unknown
              OR (state = '{State.DELISTED}' AND delisted_at IS NOT NULL
                  AND {late.format("recheck_jd")} AND {unqueued(PingKind.RECHECK, "delisted_at")})
              OR (state IN ({waiting}) AND start IS NOT NULL AND (
                  ({late.format("overdue_jd")} AND {unqueued(PingKind.OVERDUE, "start")})
                  OR ({late.format("reminder_jd")} AND NOT {early.format("overdue_jd")}
                      AND {unqueued(PingKind.REMINDER, "start")}))))
            ORDER BY number
        """
        return self._query(sql, [*params, *window, *window, *window, *window])

    def find_active(self, ip: str, list_key: str) -> Ticket | None:
        found = self._query(
            "SELECT * FROM tickets WHERE ip = ? AND list_key = ? AND state <> 'closed'",
            [ip, list_key],
        )
        return found[0] if found else None

    def find_by_ip(self, ip: str) -> list[Ticket]:
        return self._query(
            "SELECT * FROM tickets WHERE ip = ? AND state <> 'closed' ORDER BY number", [ip]
        )

    def find_by_provider_ticket_id(self, provider_id: str) -> list[Ticket]:
        forms = {provider_id.upper()}
        digits = provider_id.upper().removeprefix("SRX").removesuffix("ID")
        if digits.isdigit():  # Microsoft writes SRX1234567890ID and [1234567890] for one ticket
            forms |= {digits, f"SRX{digits}ID"}
        marks = ", ".join("?" for _ in forms)
        return self._query(
            "SELECT DISTINCT t.* FROM tickets t, json_each(t.provider_ticket_ids) j"
            f" WHERE upper(j.value) IN ({marks}) ORDER BY t.state = 'closed', t.number DESC",
            sorted(forms),
        )

    def find_by_thread(self, channel: str, thread_ts: str) -> Ticket | None:
        found = self._query(
            "SELECT * FROM tickets WHERE slack_channel = ? AND slack_thread_ts = ?"
            " ORDER BY number DESC",
            [channel, thread_ts],
        )
        return found[0] if found else None

    def insert(self, ticket: Ticket, entries: Iterable[LogEntry]) -> Ticket:
        """Store a new ticket and its first log entries; returns it with its number. In write()."""
        row = ticket_row(ticket)
        cursor = self.db.execute(
            f"INSERT INTO tickets ({', '.join(row)}) VALUES ({', '.join('?' for _ in row)})",
            list(row.values()),
        )
        number = cursor.lastrowid
        assert number is not None
        self.db.execute(
            "UPDATE tickets SET id = ? WHERE number = ?", [f"{ID_PREFIX}{number}", number]
        )
        stored = self.get(number)
        assert stored is not None
        self._log(stored, entries)
        return stored

    def save(self, ticket: Ticket, entries: Iterable[LogEntry]) -> None:
        """Update the ticket row and append its log entries, in the caller's write()."""
        row = ticket_row(ticket)
        sets = ", ".join(f"{name} = ?" for name in row)
        self.db.execute(
            f"UPDATE tickets SET {sets} WHERE number = ?", [*row.values(), ticket.number]
        )
        self._log(ticket, entries)

    def _log(self, ticket: Ticket, entries: Iterable[LogEntry]) -> None:
        for entry in entries:
            self.db.table("ticket_events").insert(
                {
                    "ticket": ticket.number,
                    "ticket_id": ticket.id,
                    "at": iso(entry.at),
                    "kind": str(entry.kind),
                    "actor": entry.actor,
                    "from_state": str(entry.from_state) if entry.from_state else None,
                    "to_state": str(entry.to_state),
                    "text": entry.text,
                    "detail": json.dumps(dict(entry.detail), sort_keys=True),
                }
            )

    def events(self, number: int) -> list[dict[str, Any]]:
        rows = self.db.query("SELECT * FROM ticket_events WHERE ticket = ? ORDER BY id", [number])
        return [{**r, "detail": json.loads(r["detail"])} for r in rows]

    def add_evidence(
        self,
        ticket: Ticket,
        at: datetime,
        source: str,
        rejection: str | None,
        bounce_text: str,
        diagnosis: Mapping[str, Any],
    ) -> None:
        self.db.table("evidence").insert(
            {
                "ticket": ticket.number,
                "ticket_id": ticket.id,
                "at": iso(at),
                "source": source,
                "rejection": rejection,
                "bounce_text": bounce_text,
                "diagnosis": json.dumps(dict(diagnosis), sort_keys=True),
            }
        )

    def evidence(self, number: int) -> list[dict[str, Any]]:
        return list(self.db.query("SELECT * FROM evidence WHERE ticket = ? ORDER BY id", [number]))

    def delisting_hours(self, list_key: str) -> list[float]:
        """Request -> delisted, in hours, over this provider's closed tickets."""
        rows = self.db.query(  # through the index tickets_delisting_times
            "SELECT requested_at, delisted_at FROM tickets WHERE list_key = ? AND state = 'closed'"
            " AND requested_at IS NOT NULL AND delisted_at IS NOT NULL",
            [list_key],
        )
        out = []
        for row in rows:
            requested, delisted = _time(row["requested_at"]), _time(row["delisted_at"])
            assert requested is not None and delisted is not None
            out.append((delisted - requested).total_seconds() / 3600)
        return out

    # -- DNS re-checks

    def note_dns(self, number: int, at: datetime, status: str, detail: str) -> None:
        """Remember the last DNS answer for a ticket's IP on its list (in the caller's write())."""
        self.db.execute(
            "UPDATE tickets SET dns_checked_at = ?, dns_status = ?, dns_detail = ? WHERE number = ?",
            [iso(at), status, detail, number],
        )

    def dns_state(self, number: int) -> tuple[datetime | None, str | None, str | None]:
        rows = list(
            self.db.query(
                "SELECT dns_checked_at, dns_status, dns_detail FROM tickets WHERE number = ?",
                [number],
            )
        )
        if not rows:
            return None, None, None
        row = rows[0]
        return _time(row["dns_checked_at"]), row["dns_status"], row["dns_detail"]

    def dns_candidates(
        self,
        states: Iterable[str],
        list_keys: Iterable[str],
        checked_by: datetime,
        limit: int = -1,
    ) -> list[tuple[Ticket, datetime | None]]:
        """Tickets in `states` on one of `list_keys`, never DNS-checked or last checked at or
        before `checked_by`, least recently checked first, with their last check time."""
        states, list_keys = list(states), list(list_keys)
        if not states or not list_keys:
            return []
        rows = self.db.query(
            f"SELECT * FROM tickets WHERE state IN ({', '.join('?' for _ in states)})"
            f" AND list_key IN ({', '.join('?' for _ in list_keys)})"
            " AND (dns_checked_at IS NULL OR dns_checked_at <= ?)"
            " ORDER BY dns_checked_at IS NOT NULL, dns_checked_at, number LIMIT ?",
            [*states, *list_keys, iso(checked_by), limit],
        )
        return [(row_ticket(r), _time(r["dns_checked_at"])) for r in rows]

    # -- outbox

    def enqueue(self, ticket: Ticket, ping: Ping, now: datetime) -> bool:
        """Queue a ping once; False when its key is already queued (or sent)."""
        cursor = self.db.execute(
            "INSERT OR IGNORE INTO outbox (key, ticket, ticket_id, kind, due_at, text,"
            " slack_channel, slack_thread_ts, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                ping.key,
                ticket.number,
                ticket.id,
                str(ping.kind),
                iso(ping.due_at),
                ping.text,
                ticket.slack_channel,
                ticket.slack_thread_ts,
                iso(now),
            ],
        )
        return cursor.rowcount == 1

    def outbox(self, unsent_only: bool = True) -> list[OutboxRow]:
        where = " WHERE sent_at IS NULL" if unsent_only else ""
        return [_outbox_row(r) for r in self.db.query(f"SELECT * FROM outbox{where} ORDER BY id")]

    def claim(
        self, worker: str, now: datetime, stale_before: datetime, limit: int
    ) -> list[OutboxRow]:
        """Claim unsent pings not claimed since `stale_before` (a dead sender's claim expires)."""
        with self.write():
            rows = list(
                self.db.query(
                    "SELECT id FROM outbox WHERE sent_at IS NULL AND error IS NULL"
                    " AND due_at <= ? AND (retry_at IS NULL OR retry_at <= ?)"
                    " AND (claimed_at IS NULL OR claimed_at < ?)"
                    # a ticket's pings go out in order: none overtakes one still waiting
                    " AND NOT EXISTS (SELECT 1 FROM outbox AS earlier"
                    " WHERE earlier.ticket = outbox.ticket AND earlier.id < outbox.id"
                    " AND earlier.sent_at IS NULL AND earlier.error IS NULL)"
                    " ORDER BY id LIMIT ?",
                    [iso(now), iso(now), iso(stale_before), limit],
                )
            )
            ids = [r["id"] for r in rows]
            for ping_id in ids:
                self.db.execute(
                    "UPDATE outbox SET claimed_at = ?, claimed_by = ?, attempts = attempts + 1"
                    " WHERE id = ?",
                    [iso(now), worker, ping_id],
                )
            if not ids:
                return []
            marks = ", ".join("?" for _ in ids)
            found = self.db.query(f"SELECT * FROM outbox WHERE id IN ({marks}) ORDER BY id", ids)
            return [_outbox_row(r) for r in found]

    def mark_sent(self, ping_id: int, now: datetime, note: str | None = None) -> bool:
        """Record delivery; False when it was already recorded (the caller must not resend).

        `note`: why it went somewhere else than the ticket's thread (the fallback channel).
        """
        with self.write():
            cursor = self.db.execute(
                "UPDATE outbox SET sent_at = ?, error = COALESCE(?, error)"
                " WHERE id = ? AND sent_at IS NULL",
                [iso(now), note, ping_id],
            )
            return cursor.rowcount == 1

    def release(self, ping_id: int, retry_at: datetime | None = None) -> None:
        """Delivery failed for now: the next claim takes it at once, or from `retry_at`."""
        with self.write():
            self.db.execute(
                "UPDATE outbox SET claimed_at = NULL, claimed_by = NULL, retry_at = ?"
                " WHERE id = ? AND sent_at IS NULL",
                [iso(retry_at), ping_id],
            )

    def mark_failed(self, ping_id: int, error: str, now: datetime) -> bool:
        """Slack refused the ping for good: kept with the reason, never claimed again."""
        with self.write():
            cursor = self.db.execute(
                "UPDATE outbox SET error = ?, failed_at = ?, claimed_at = NULL, claimed_by = NULL"
                " WHERE id = ? AND sent_at IS NULL",
                [error, iso(now), ping_id],
            )
            return cursor.rowcount == 1

    def pings(self, number: int) -> list[OutboxRow]:
        """One ticket's pings, queued, sent or refused, oldest first."""
        rows = self.db.query("SELECT * FROM outbox WHERE ticket = ? ORDER BY id", [number])
        return [_outbox_row(r) for r in rows]

    def undelivered(self) -> list[OutboxRow]:
        """Pings of tickets not closed that Slack refused for good and that went nowhere else."""
        rows = self.db.query(
            "SELECT outbox.* FROM outbox JOIN tickets ON tickets.number = outbox.ticket"
            " WHERE outbox.error IS NOT NULL AND outbox.sent_at IS NULL"
            " AND tickets.state <> 'closed' ORDER BY outbox.id"
        )
        return [_outbox_row(r) for r in rows]

    def release_claims(self, worker: str, before: datetime) -> int:
        """Free unsent pings claimed by `worker` up to `before`; how many."""
        with self.write():
            cursor = self.db.execute(
                "UPDATE outbox SET claimed_at = NULL, claimed_by = NULL"
                " WHERE claimed_by = ? AND claimed_at <= ? AND sent_at IS NULL",
                [worker, iso(before)],
            )
            return cursor.rowcount

"""The SQLite store as a real file: migrations from the first schema, the append-only log, and
real processes writing at once or killed with SIGKILL half-way."""

from __future__ import annotations

import itertools
import json
import signal
import sqlite3
import subprocess
import sys
import textwrap
from datetime import timedelta
from pathlib import Path

import pytest

from bot.adapters.store import MIGRATIONS, Store, StoreError
from bot.core.tickets import State
from tests.test_tickets_kit import REPO, T0, diagnosis, service

H = timedelta(hours=1)


def test_a_new_file_is_wal_with_every_migration_applied(tmp_path: Path) -> None:
    store = Store(tmp_path / "d.db")
    assert store.db.journal_mode == "wal"
    assert store.applied_migrations() == [m.name for m in MIGRATIONS._migrations]
    assert {"tickets", "ticket_events", "evidence", "outbox"} <= set(store.db.table_names())
    assert Store(tmp_path / "d.db").migrate() == []  # opening again applies nothing


def test_a_file_at_the_first_schema_upgrades_in_place_without_losing_tickets(
    tmp_path: Path,
) -> None:
    path = tmp_path / "v1.db"
    v1 = Store(path, migrate=False)
    v1.migrate(stop_before="m002_outbox")
    assert v1.applied_migrations() == ["m001_tickets_and_events"]
    # A ticket as the first version wrote it: no snooze, no evidence count, no outbox yet.
    v1.db.execute(
        "INSERT INTO tickets (number, id, ip, receiver, list_key, state, provider_ticket_ids,"
        " reminder_hours, overdue_hours, propagation_hours, waits_basis, opened_at, requested_at)"
        " VALUES (1, 'DL-1', '11.22.33.44', 'microsoft_eop', 'microsoft_eop', 'requested',"
        " '[\"SRX1234567890ID\"]', 1, 24, 2, 'provider', ?, ?)",
        [T0.isoformat(), T0.isoformat()],
    )
    v1.db.execute(
        "INSERT INTO ticket_events (ticket, ticket_id, at, kind, to_state) VALUES"
        " (1, 'DL-1', ?, 'opened', 'open')",
        [T0.isoformat()],
    )
    v1.close()

    svc = service(path)
    assert svc.store.applied_migrations() == [m.name for m in MIGRATIONS._migrations]
    assert svc.to_json(svc.get("DL-1"))["dns"] == {"checked_at": None, "status": None,
                                                   "detail": None}
    ticket = svc.get("DL-1")
    assert (ticket.state, ticket.provider_ticket_ids, ticket.evidence_count) == (
        State.REQUESTED,
        ("SRX1234567890ID",),
        1,
    )
    assert [t.id for t, _ in svc.due(T0 + 2 * H)] == ["DL-1"]
    assert svc.queue_due(T0 + 2 * H) == 1
    joined = svc.open_from_diagnosis(diagnosis(), "second bounce", T0 + 3 * H)
    assert (joined.created, joined.ticket.id) == (False, "DL-1")  # type: ignore[union-attr]


def test_the_event_log_refuses_updates_and_deletes(tmp_path: Path) -> None:
    svc = service(tmp_path / "d.db")
    svc.open_from_diagnosis(diagnosis(), "b", T0)
    for sql in ("UPDATE ticket_events SET kind = 'x'", "DELETE FROM ticket_events"):
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            svc.store.db.execute(sql)
    assert len(svc.store.events(1)) == 1


def test_a_file_that_is_not_sqlite_is_refused_with_its_name(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("hello, this is not a database\n" * 100)
    with pytest.raises(StoreError, match=r"notes\.txt: not a usable SQLite database"):
        Store(path)


# ---------------------------------------------------------------- real processes

WORKER = textwrap.dedent(
    """
    import sys, os, time
    from datetime import datetime, timedelta
    sys.path.insert(0, {repo!r})
    from tests.test_tickets_kit import diagnosis, service, T0
    from bot.core.tickets import IllegalMove
    path, mode, name, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    svc = service(path)
    H = timedelta(hours=1)
    if mode == "write":
        for i in range(count):
            ip = f"192.0.2.{{i % 40}}"
            opened = svc.open_from_diagnosis(diagnosis(ip=ip), f"bounce {{name}} {{i}}", T0)
            try:
                svc.mark_sent(opened.ticket.id, T0)
            except IllegalMove:
                pass
            svc.queue_due(T0 + 2 * H)
            print(i, flush=True)
    elif mode == "send":
        log = sys.argv[5]
        now = T0 + 2 * H + timedelta(minutes=int(sys.argv[6]))
        def delivered(row):
            with open(log) as fh:
                return row.key + "\\n" in fh.readlines()
        def send(row):
            print("sending", row.key, flush=True)
            time.sleep(0.01)  # widen the window a kill can land in
            with open(log, "a") as fh:
                fh.write(row.key + "\\n"); fh.flush(); os.fsync(fh.fileno())
        while svc.deliver_due(name, now, send, delivered):
            pass
        print("done", flush=True)
    """
).format(repo=str(REPO))


def worker(path: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", WORKER, str(path), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )


def kill_after(proc: subprocess.Popen[str], lines: int) -> None:
    assert proc.stdout is not None
    for _ in range(lines):
        if not proc.stdout.readline():
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def assert_consistent(path: Path) -> None:
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    tickets = conn.execute("SELECT number, state FROM tickets").fetchall()
    for number, state in tickets:
        chain = conn.execute(
            "SELECT kind, from_state, to_state FROM ticket_events WHERE ticket = ? ORDER BY id",
            [number],
        ).fetchall()
        assert chain[0][0] == "opened", number  # the row and its first event commit together
        for before, after in itertools.pairwise(chain):
            assert after[1] == before[2], (number, chain)
        assert chain[-1][2] == state, (number, chain)  # the row never runs ahead of its log
    per_ip = conn.execute(
        "SELECT ip, count(*) FROM tickets WHERE state <> 'closed' GROUP BY ip, list_key"
    ).fetchall()
    assert all(n == 1 for _, n in per_ip)
    conn.close()


def test_a_writer_killed_mid_way_leaves_a_consistent_file_and_every_ping_once(
    tmp_path: Path,
) -> None:
    path = tmp_path / "d.db"
    service(path).store.close()
    kill_after(worker(path, "write", "w1", "100000"), 60)
    assert_consistent(path)
    svc = service(path)
    svc.queue_due(T0 + 2 * H)  # what the killed writer did not queue, the next run does
    due = sorted(p.key for _, p in svc.due(T0 + 2 * H))
    queued = sorted(row.key for row in svc.store.outbox(unsent_only=False))
    assert queued == due and len(due) == len(svc.tickets())


def test_a_sender_killed_mid_way_neither_loses_nor_doubles_a_ping(tmp_path: Path) -> None:
    path, log = tmp_path / "d.db", tmp_path / "delivered.log"
    log.write_text("")
    svc = service(path)
    for n in range(30):
        svc.open_from_diagnosis(diagnosis(ip=f"198.51.100.{n}"), "b", T0)
        svc.mark_sent(n + 1, T0)
    svc.store.close()
    kill_after(worker(path, "send", "s1", "0", str(log), "0"), 12)  # dies holding claims
    rerun = worker(path, "send", "s2", "0", str(log), "6")  # after the 5-minute lease
    _, err = rerun.communicate(timeout=120)
    assert rerun.returncode == 0, err
    lines = log.read_text().splitlines()
    assert sorted(lines) == sorted(set(lines)) and len(lines) == 30
    rows = service(path).store.outbox(unsent_only=False)
    assert all(row.sent_at for row in rows)
    assert any(row.attempts > 1 for row in rows)  # the dead sender's claims were taken over


def test_concurrent_writers_never_duplicate_a_ticket_or_lose_a_bounce(tmp_path: Path) -> None:
    path = tmp_path / "d.db"
    procs = [worker(path, "write", f"w{n}", "40") for n in range(4)]
    for proc in procs:
        _, err = proc.communicate(timeout=180)
        assert proc.returncode == 0, err
    assert_consistent(path)
    svc = service(path)
    tickets = svc.tickets()
    assert len(tickets) == 40  # one per IP, whatever the interleaving
    assert sum(t.evidence_count for t in tickets) == 4 * 40
    evidence_rows = svc.store.db.execute("SELECT count(*) FROM evidence").fetchone()[0]
    assert evidence_rows == 4 * 40 - 40
    keys = [row.key for row in svc.store.outbox(unsent_only=False)]
    assert len(keys) == len(set(keys)) == 40
    assert json.loads(json.dumps(svc.to_json(tickets[0])))["state"] == "requested"


def test_the_file_reads_with_the_sqlite_utils_tool_as_plain_tables(tmp_path: Path) -> None:
    path = tmp_path / "d.db"
    svc = service(path)
    svc.open_from_diagnosis(diagnosis(), "the bounce", T0)
    svc.mark_sent("DL-1", T0 + H)
    svc.store.close()
    tool = Path(sys.executable).with_name("sqlite-utils")
    if not tool.exists():
        pytest.skip("the sqlite-utils command is not installed beside this Python")

    def rows(sql: str) -> list[dict[str, object]]:
        out = subprocess.run([str(tool), "query", str(path), sql], capture_output=True,
                             text=True, timeout=60, check=True)
        return json.loads(out.stdout)  # type: ignore[no-any-return]

    assert rows("SELECT id, ip, state, provider_ticket_ids FROM tickets") == [
        {"id": "DL-1", "ip": "11.22.33.44", "state": "requested", "provider_ticket_ids": "[]"}
    ]
    assert [(e["kind"], e["to_state"]) for e in rows("SELECT * FROM ticket_events")] == [
        ("opened", "open"), ("sent", "requested")]


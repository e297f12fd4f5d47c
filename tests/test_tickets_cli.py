"""The ticket commands as an operator runs them: `python -m bot` in a fresh directory, the seed's
real mails, exit codes and JSON as scripts read them."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_tickets_kit import REPO, SEED, seed

pytest.importorskip("bot.service.diagnose", reason="`open` needs the diagnosis engine")


@pytest.fixture
def run(tmp_path: Path):  # type: ignore[no-untyped-def]
    if not SEED.is_dir():  # every test here opens its ticket from a seed mail
        pytest.skip(f"seed corpus not found at {SEED} (tests read ../shared relative to the repo)")
    env = {"PATH": "/usr/bin:/bin", "DELISTBOT_DB": str(tmp_path / "t.db"), "PYTHONPATH": str(REPO)}
    (tmp_path / "delistbot.toml").write_text(
        '[contact]\nname = "Aiko Tanaka"\nemail = "postmaster@example.org"\n'
        '[providers.microsoft_eop]\noverdue = "12h"\n'
    )

    def call(*args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "bot", *args],
            input=stdin.decode("latin-1"),
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )

    return call


def test_the_seed_loop_from_a_shell(run) -> None:  # type: ignore[no-untyped-def]
    bounce = str(SEED / "qmail-microsoft-blocklist1.txt")
    first = run("open", bounce)
    assert (first.returncode, first.stdout) == (0, "DL-1\n"), first.stderr
    again = run("open", bounce)
    assert (again.returncode, again.stdout) == (0, "DL-1\n")
    assert "already open" in again.stderr
    assert run("sent", "DL-1").returncode == 0
    ack = run("update", "DL-1", "-", stdin=seed("microsoft-autoreply.txt").encode())
    assert ack.returncode == 0 and "requested -> acknowledged" in ack.stdout
    data = json.loads(run("ticket", "DL-1", "--json").stdout)
    assert (data["id"], data["ip"], data["state"]) == ("DL-1", "11.22.33.44", "acknowledged")
    assert (data["receiver"], data["provider_ticket_ids"]) == ("microsoft_eop", ["SRX1234567890ID"])
    assert data["overdue_at"] is not None and data["expected"]["overdue_basis"] == "settings"
    assert data["evidence_count"] == 2 and data["events"][0]["kind"] == "opened"
    done = run("update", "DL-1", str(SEED / "microsoft-delisted.txt"))
    assert done.returncode == 0 and "-> delisted" in done.stdout
    (listed,) = json.loads(run("tickets", "--json").stdout)
    assert listed["state"] == "delisted" and listed["recheck_at"].endswith("Z")
    assert run("due").returncode == 0  # the 2 h propagation window is still running
    later = run("due", "--at", "2999-01-01T00:00:00Z")
    assert later.returncode == 1 and "re-check" in later.stdout
    assert run("verified", "DL-1").returncode == 0 and run("close", "DL-1").returncode == 0
    assert run("tickets").stdout == "" and "closed" in run("tickets", "--all").stdout


@pytest.mark.parametrize(
    ("stdin", "code", "message"),
    [
        (b"", 4, "empty"),
        (b"\x00\x01binary\x00", 4, "binary"),
        (b"Please call me about the invoice.", 3, "kept as a note"),
    ],
)
def test_update_with_unusable_input_says_so_and_changes_nothing(run, stdin, code, message) -> None:  # type: ignore[no-untyped-def]
    run("open", str(SEED / "qmail-microsoft-blocklist1.txt"))
    result = run("update", "DL-1", "-", stdin=stdin)
    assert result.returncode == code and message in result.stderr
    assert "Traceback" not in result.stderr
    assert json.loads(run("ticket", "DL-1", "--json").stdout)["state"] == "open"


def test_unknown_tickets_and_refused_moves_exit_5(run) -> None:  # type: ignore[no-untyped-def]
    assert run("sent", "DL-9").returncode == 5
    run("open", str(SEED / "qmail-microsoft-blocklist1.txt"))
    refused = run("verified", "DL-1")
    assert refused.returncode == 5 and "cannot record verified" in refused.stderr


def test_open_refuses_what_is_not_a_bounce(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    result = run("open", str(SEED / "microsoft-autoreply.txt"))
    assert result.returncode == 3 and result.stdout == "" and "no ticket" in result.stderr
    assert run("open", str(tmp_path / "missing.eml")).returncode == 4


def test_draft_prints_the_request_with_the_settings_signature(run) -> None:  # type: ignore[no-untyped-def]
    run("open", str(SEED / "qmail-microsoft-blocklist1.txt"))
    draft = run("draft", "DL-1")
    assert draft.returncode == 0
    assert draft.stdout.startswith("Subject: Checklist: delist 11.22.33.44 at sender.office.com\n")
    assert "Aiko Tanaka" in draft.stdout and "blocked using Blocklist 1" in draft.stdout
    assert "not ready to send" in draft.stderr
    fixed = run("draft", "DL-1", "--fixed", "Closed the open relay on 24 March")
    assert "What we fixed: Closed the open relay on 24 March" in fixed.stdout
    assert "not ready to send" not in fixed.stderr


def test_a_refusal_then_an_escalation_from_a_shell(run) -> None:  # type: ignore[no-untyped-def]
    run("open", str(SEED / "qmail-microsoft-blocklist1.txt"))
    run("sent", "DL-1")
    refusal = (b"Subject: SRX9876543210ID - Reported deliverability problem to Outlook.com\n\n"
               b"After reviewing, 11.22.33.44 is Not qualified for mitigation at this time.\n")
    refused = run("update", "DL-1", "-", stdin=refusal)
    assert refused.returncode == 0 and "requested -> refused" in refused.stdout
    before = json.loads(run("ticket", "DL-1", "--json").stdout)
    assert before["state"] == "refused" and before["overdue_at"] is None  # nothing to wait for
    escalated = run("escalate", "DL-1", "--note", "asked the Escalations Team by the portal")
    assert escalated.returncode == 0 and "DL-1: escalated" in escalated.stdout
    after = json.loads(run("ticket", "DL-1", "--json").stdout)
    assert after["state"] == "escalated" and after["overdue_at"] is not None
    assert after["events"][-1]["text"] == "asked the Escalations Team by the portal"
    assert run("escalate", "DL-1").returncode == 5  # already escalated: a clear refusal


def test_without_delistbot_db_the_tickets_live_in_delistbot_db_in_the_working_directory(
    tmp_path: Path,
) -> None:
    if not SEED.is_dir():
        pytest.skip(f"seed corpus not found at {SEED}")
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)}
    opened = subprocess.run(
        [sys.executable, "-m", "bot", "open", str(SEED / "qmail-microsoft-blocklist1.txt")],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )
    assert (opened.returncode, opened.stdout) == (0, "DL-1\n"), opened.stderr
    conn = sqlite3.connect(tmp_path / "delistbot.db")
    assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert conn.execute("SELECT id, ip FROM tickets").fetchall() == [("DL-1", "11.22.33.44")]
    conn.close()


def test_a_five_megabyte_paste_is_read_to_its_first_100000_characters(run) -> None:  # type: ignore[no-untyped-def]
    run("open", str(SEED / "qmail-microsoft-blocklist1.txt"))
    reply = seed("microsoft-autoreply.txt")
    flood = (reply + "\n") * (5 * 1024 * 1024 // len(reply))
    ack = run("update", "DL-1", "-", stdin=flood.encode())
    assert ack.returncode == 0 and "open -> acknowledged" in ack.stdout, ack.stderr
    assert "only the first 100,000 characters were read" in ack.stdout
    noise = run("update", "DL-1", "-", stdin=b"Hello\n" * 900_000)
    assert noise.returncode == 3 and "kept as a note" in noise.stderr
    data = json.loads(run("ticket", "DL-1", "--json").stdout)
    assert data["state"] == "acknowledged"
    note = data["events"][-1]
    assert note["kind"] == "note" and note["text"].endswith("[… 5,300,000 more characters not kept]")
    assert len(note["text"]) < 100_100


@pytest.mark.parametrize(
    ("args", "stdin", "code", "message"),
    [
        (("update", "DL-9", "-"), b"We have received your request.", 5, "no ticket DL-9"),
        (("ticket", "garbage"), b"", 5, "no ticket garbage (ids look like DL-42)"),
        (("draft", "DL-99999999999999999999"), b"", 5, "no ticket DL-99999999999999999999"),
        (("open", "-"), b"\xff\xfe\x00\x00" * 1000, 4, "looks binary"),
        (("open", "-"), b"   \n\n", 4, "standard input is empty"),
        (("verified", "DL-1"), b"", 5,
         "DL-1 is open: cannot record verified (allowed now: sent, acknowledged, delisted,"
         " refused, closed)"),
        (("snooze", "DL-1", "forever"), b"", 2, "expected a duration like 90s, 30m, 24h or 3d"),
    ],
)
def test_hostile_input_gets_a_message_and_an_exit_code_never_a_traceback(  # type: ignore[no-untyped-def]
    run, args, stdin, code, message
) -> None:
    run("open", str(SEED / "qmail-microsoft-blocklist1.txt"))
    result = run(*args, stdin=stdin)
    assert (result.returncode, "Traceback" in result.stderr) == (code, False), result.stderr
    assert message in result.stderr
    assert json.loads(run("ticket", "DL-1", "--json").stdout)["state"] == "open"


def test_a_settings_file_with_a_typo_stops_every_ticket_command_with_its_name(run, tmp_path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "delistbot.toml").write_text('[contact]\nnmae = "Aiko"\n')
    result = run("tickets")
    assert (result.returncode, "Traceback" in result.stderr) == (2, False)
    assert "[contact]: unknown key(s) nmae" in result.stderr

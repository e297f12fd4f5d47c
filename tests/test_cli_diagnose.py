"""`delistbot diagnose` as a user runs it: a real process, real files, real stdin."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "examples" / "seed-bounce.txt"


def delistbot(*args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[str]:
    if args[:1] == ("diagnose",):  # offline: no test reaches the internet's DNS
        args = ("diagnose", "--no-dns", *args[1:])
    return subprocess.run([sys.executable, "-m", "bot", *args], input=stdin.decode("latin-1"),
                          capture_output=True, text=True, cwd=ROOT, timeout=60)


def test_sample_bounce_gets_a_verdict_and_next_step():
    result = delistbot("diagnose", str(SAMPLE))
    assert result.returncode == 0, result.stderr
    assert "Microsoft 365 rejected mail from 203.0.113.44" in result.stdout
    assert "Next: Request removal of 203.0.113.44 at https://sender.office.com/" in result.stdout
    assert "Traceback" not in result.stderr


def test_json_carries_the_contract_fields():
    result = delistbot("diagnose", "--json", str(SAMPLE))
    assert result.returncode == 0
    data = json.loads(result.stdout)
    for key in ("source", "is_bounce", "recipients", "sending_ip", "receiver", "blocklist",
                "delist", "expected_wait_hours", "summary"):
        assert key in data
    assert data["receiver"] == "microsoft_eop" and data["is_bounce"] is True
    assert data["delist"] == {"method": "web", "url": "https://sender.office.com/", "address": None}
    assert set(data["recipients"][0]) >= {"address", "status", "reply_code", "reason", "remote_mta",
                                          "diagnostic"}


def test_several_messages_give_json_lines(tmp_path):
    second = tmp_path / "two.txt"
    second.write_text("550 5.7.1 Service unavailable; Client host [198.51.100.9] blocked using "
                      "b.barracudacentral.org; http://www.barracudanetworks.com/reputation/?ip=198.51.100.9\n")
    result = delistbot("diagnose", "--json", str(SAMPLE), str(second))
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [d["blocklist"] for d in lines] == ["microsoft_eop", "barracuda"]
    assert lines[1]["sending_ip"] == "198.51.100.9"


def test_stdin_paste_with_quoting_is_read():
    paste = b"> 554 5.7.1 Service unavailable; Client host [203.0.113.9] blocked using\n" \
            b"> zen.spamhaus.org; https://www.spamhaus.org/query/ip/203.0.113.9\n"
    result = delistbot("diagnose", "--json", "-", stdin=paste)
    data = json.loads(result.stdout)
    got = (data["blocklist"], data["sending_ip"], data["delist"]["method"])
    assert got == ("spamhaus", "203.0.113.9", "web")


def test_not_a_bounce_gets_one_line_and_exit_3():
    result = delistbot("diagnose", "-", stdin=b"Hi team, lunch at noon?\n")
    assert result.returncode == 3
    assert result.stdout.strip() == "-: not a bounce: no SMTP error or delivery-status part found"


def test_empty_input_and_missing_file_exit_4_without_traceback(tmp_path):
    empty = delistbot("diagnose", "-", stdin=b"")
    assert empty.returncode == 4 and "the input is empty" in empty.stdout
    missing = delistbot("diagnose", str(tmp_path / "nope.eml"))
    assert missing.returncode == 4 and "no such file" in missing.stderr
    assert "Traceback" not in empty.stderr + missing.stderr


def test_bare_ip_is_understood():
    result = delistbot("diagnose", "--json", "-", stdin=b"203.0.113.44\n")
    assert result.returncode == 0
    data = json.loads(result.stdout)
    assert data["sending_ip"] == "203.0.113.44" and data["is_bounce"] is False

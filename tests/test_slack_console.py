"""The console: `delistbot serve` without Slack credentials runs the same app in a terminal."""

from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_console(script: str, tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "DELISTBOT_"))}
    env["DELISTBOT_DB"] = str(tmp / "console.db")
    env["DELISTBOT_NAMESERVERS"] = "127.0.0.1:9"  # DNS never leaves loopback in tests
    return subprocess.run(
        [sys.executable, "-m", "bot", "serve", *args], input=script, text=True,
        capture_output=True, env=env, cwd=ROOT, timeout=60,
    )


def test_no_credentials_means_console_and_help_is_shown(tmp_path):
    result = run_console("/delist help\n:quit\n", tmp_path)
    assert result.returncode == 0, result.stderr
    assert "> /delist help" in result.stdout
    assert "/delist 203.0.113.44" in result.stdout
    assert result.stderr == ""


def test_console_opens_the_form_and_app_home(tmp_path):
    result = run_console("/delist\n.\n:home\n", tmp_path, "--console")
    assert "[form] Diagnose a bounce" in result.stdout
    assert "[App Home]" in result.stdout


def test_explicit_slack_mode_without_credentials_is_a_usage_error(tmp_path):
    result = run_console("", tmp_path, "--http")
    assert result.returncode == 2
    assert "SLACK_SIGNING_SECRET" in result.stderr and "SLACK_BOT_TOKEN" in result.stderr
    assert "Traceback" not in result.stderr


def test_with_no_input_the_console_plays_the_demo_on_a_scratch_database(tmp_path):
    result = run_console("", tmp_path)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "console demo" in out
    assert "== DL-1 · 203.0.113.44" in out  # the ticket card
    assert "DL-1 is now acknowledged" in out  # Microsoft's auto-reply pasted in its thread
    assert "(also sent to the channel)" in out and "delisted, the provider confirmed it" in out
    # `:later` moved the clock on: the overdue ping (with the next step), then the re-check.
    overdue = out.index("longer than the 24 h expected")
    assert "reply to the provider quoting SRX1234567890ID" in out[overdue:]
    assert overdue < out.index("delisted, the provider confirmed it") < out.index(
        "propagation window is over")
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "console.db").exists()  # the user's database was not touched


def test_after_the_demo_piped_input_goes_on_in_the_same_scratch_database(tmp_path):
    result = run_console("/delist status DL-1\n", tmp_path, "--console", "--demo")
    assert result.returncode == 0, result.stderr
    status = result.stdout.split("> /delist status DL-1")[1]
    assert "== DL-1 · 203.0.113.44" in status and "State: delisted" in status
    assert not (tmp_path / "console.db").exists()


def test_snooze_menu_and_the_clock_in_the_console(tmp_path):
    bounce = (ROOT / "examples" / "seed-bounce.txt").read_text()
    # [1] Open ticket; the card: [2] Request sent [3] Delisted, Snooze… [4] 4 hours … [8] Close
    script = bounce + "\n.\n:click 1\n:click 2\n:click 6\n:later 25h\n:later 2d\n"
    result = run_console(script, tmp_path)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Snooze… [4] 4 hours [5] 1 day [6] 3 days [7] 1 week   [8] Close" in out
    assert "@UCONSOLE snoozed it for 3 days" in out and "Snoozed until:" in out
    before, after = out.split("> :later 2d")
    assert "longer than" not in before  # overdue after 24 h, but snoozed for 3 days
    assert "longer than the 24 h expected" in after
    bad = run_console(":later soon\n", tmp_path)
    assert "expected a duration like 90s, 30m, 24h or 3d" in bad.stdout


def test_the_recheck_ping_and_the_card_offer_what_the_lifecycle_allows_in_the_console(tmp_path):
    bounce = (ROOT / "examples" / "seed-bounce.txt").read_text()
    # [1] Open ticket; the open card: [2] Request sent [3] Delisted …; once delisted the card
    # shows [9] Verified (mail flows) [10] Still blocked …, and after `:later 3h` the re-check
    # ping carries [16] Verified (mail flows) [17] Still blocked; the verified card [18] Still
    # blocked [19] Close. [16] twice, then the open card's stale [3], then [18].
    script = bounce + "\n.\n" + "".join(f":{step}\n" for step in [
        "click 1", "click 3", "later 3h", "click 16", "click 16", "click 3", "click 18"])
    result = run_console(script, tmp_path)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    delisted = out.split("> :click 3")[1].split("> :")[0]
    assert "[9] Verified (mail flows)   [10] Still blocked" in delisted
    assert "Request sent" not in delisted
    ping = out.split("> :later 3h")[1].split("> :")[0]
    assert "propagation window is over" in ping and "`verified`" not in ping
    assert "press Verified (mail flows) if mail flows again or Still blocked" in ping
    assert "[16] Verified (mail flows)   [17] Still blocked" in ping
    first, second = out.split("> :click 16")[1:3]
    assert "State: verified" in first and "[18] Still blocked   [19] Close" in first
    assert "@UCONSOLE marked it verified (mail flows): DL-1 is now verified." in first
    assert "DL-1 is already verified; nothing to change." in second.split("> :")[0]
    stale = out.split("> :click 3")[2].split("> :")[0]
    assert "DL-1 is verified now, so “Delisted” no longer applies" in stale
    reopened = out.split("> :click 18")[1]
    assert "State: open" in reopened and "Request sent" in reopened
    assert "@UCONSOLE marked it still blocked: DL-1 is now open." in reopened
    assert out.count("marked it verified") == 1


def test_piped_bounce_is_diagnosed_in_its_thread(tmp_path):
    bounce = (ROOT / "examples" / "seed-bounce.txt").read_text()
    result = run_console(bounce + "\n.\n", tmp_path)
    assert "delistbot in thread" in result.stdout and "203.0.113.44" in result.stdout
    assert "[1] Open ticket" in result.stdout


def test_a_bad_slack_setting_is_a_clear_usage_error(tmp_path):
    settings = tmp_path / "delistbot.toml"
    settings.write_text('[slack]\nping_intervall = "5s"\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "DELISTBOT_"))}
    env.update(DELISTBOT_DB=str(tmp_path / "x.db"), DELISTBOT_CONFIG=str(settings))
    result = subprocess.run([sys.executable, "-m", "bot", "serve", "--console"], input="",
                            text=True, capture_output=True, env=env, cwd=ROOT, timeout=60)
    assert result.returncode == 2
    assert "[slack]: unknown key(s) ping_intervall" in result.stderr
    assert "Traceback" not in result.stderr


def test_in_a_terminal_the_demo_hands_over_to_the_user(tmp_path):
    """`make run` at a terminal: the demo, then a prompt on the same scratch database."""
    master, slave = pty.openpty()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "DELISTBOT_"))}
    env.update(DELISTBOT_DB=str(tmp_path / "console.db"), DELISTBOT_NAMESERVERS="127.0.0.1:9")
    proc = subprocess.Popen([sys.executable, "-m", "bot", "serve", "--console", "--demo"],
                            stdin=slave, stdout=slave, stderr=slave, env=env, cwd=ROOT)
    os.close(slave)
    seen = bytearray()

    def read_until(marker: bytes, start: int = 0) -> int:
        while (found := seen.find(marker, start)) < 0:
            ready, _, _ = select.select([master], [], [], 30)
            assert ready, f"no {marker!r} from the console; got {bytes(seen[-500:])!r}"
            seen.extend(os.read(master, 65536))
        return found

    try:
        turn = read_until(b"Your turn")
        read_until(b"\n# ", turn)
        os.write(master, b"/delist status DL-1\n")
        answer = read_until(b"== DL-1", read_until(b"> /delist status DL-1", turn))
        read_until(b"State: delisted", answer)  # the demo's ticket, as the demo left it
        os.write(master, b":quit\n")
        assert proc.wait(timeout=20) == 0
    finally:
        proc.kill()
        os.close(master)
    assert b"Traceback" not in seen
    assert not (tmp_path / "console.db").exists()


def test_the_readme_quick_start_shows_what_make_run_prints(tmp_path):
    readme = (ROOT / "README.md").read_text()
    shown = readme.split("It prints (abridged where `…` stands):\n\n````\n")[1].split("\n````\n")[0]
    printed = _seconds(run_console("", tmp_path, "--console", "--demo").stdout)
    for line in shown.splitlines():
        if line == "…" or line.startswith("(the clock now reads"):
            continue  # an elision, or the time of day the demo ran at
        prefix = _seconds(line.removesuffix(" …"))
        assert prefix in printed, f"README quick start shows a line make run does not print: {line}"


def _seconds(text: str) -> str:
    """A young ticket's age in seconds depends on when the clock ticked over: "0 s" or "1 s"."""
    return re.sub(r"\b\d+ s since", "N s since", text)


def test_mistakes_in_the_console_get_a_plain_answer_and_no_traceback(tmp_path):
    script = ("/delist status DL-999\n/delist 999.1.1.1\n/delist lsit\n"
              ":thread DL-5 hello\n:thread 9.000100 hello\n:bogus\n")
    result = run_console(script, tmp_path)
    assert result.returncode == 0
    out = result.stdout
    assert "Sorry, I could not do that: no ticket DL-999 (ids look like DL-42)" in out
    assert "'999.1.1.1' is not an IP address" in out
    assert "I do not know `/delist lsit`" in out
    assert "No ticket DL-5" in out
    assert "There is no message 9.000100 here" in out
    assert "There is no console command :bogus" in out
    assert "(you: message" not in out  # none of those reached the bot as a message
    assert result.stderr == ""

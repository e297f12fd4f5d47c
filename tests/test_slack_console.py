"""The console: `delistbot serve` without Slack credentials runs the same app in a terminal."""

from __future__ import annotations

import os
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
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "console.db").exists()  # the user's database was not touched


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

"""`delistbot diagnose --no-dns` stays a quick command: no Slack, Jinja2, SQLite or DNS library loads."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("slack_bolt", "slack_sdk", "jinja2", "sqlite_utils", "sqlite3", "dns", "waitress", "asyncio")

_PROBE = """
import contextlib, io, json, sys
from bot.__main__ import main
with contextlib.redirect_stdout(io.StringIO()) as out:
    code = main(sys.argv[1:])
print(json.dumps({"code": code, "out": out.getvalue(),
                  "loaded": sorted({m.split(".")[0] for m in sys.modules})}))
"""


def _run(*argv: str) -> dict[str, object]:
    done = subprocess.run([sys.executable, "-c", _PROBE, *argv], capture_output=True, text=True,
                          cwd=ROOT, check=True)
    result: dict[str, object] = json.loads(done.stdout.splitlines()[-1])
    return result


def test_diagnose_without_dns_loads_no_heavy_library() -> None:
    result = _run("diagnose", "--no-dns", "examples/seed-bounce.txt")
    assert result["code"] == 0
    assert "203.0.113.44" in str(result["out"])
    assert not set(HEAVY) & set(result["loaded"])  # type: ignore[arg-type]


def test_help_still_lists_every_command() -> None:
    done = subprocess.run([sys.executable, "-m", "bot", "--help"], capture_output=True, text=True,
                          cwd=ROOT, check=True)
    for command in ("diagnose", "check", "open", "tickets", "serve"):
        assert command in done.stdout

"""`delistbot diagnose PATH… | -`: what each bounce says, for people (text) or scripts (--json)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from bot.cli import EXIT_NOT_BOUNCE, EXIT_OK, EXIT_UNREADABLE
from bot.cli import check as check_cmd
from bot.config import load_settings
from bot.core.bounce import UNREADABLE
from bot.core.model import Diagnosis
from bot.service.diagnose import default_knowledge, diagnose_bytes


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "diagnose",
        help="diagnose bounces (files, an mbox, a paste on stdin, or a bare IP)",
        description="Read bounces and say who rejected which IP, why, which list, and what to do.",
    )
    parser.add_argument("paths", nargs="+", metavar="PATH", help="a file, or - for standard input")
    parser.add_argument("--json", action="store_true", help="one JSON object per message (JSON Lines)")
    parser.add_argument("--no-dns", action="store_true",
                        help="skip the DNS evidence (block lists, MX, PTR, SPF, DMARC): offline use")
    parser.set_defaults(func=run)


def read_input(path: str) -> tuple[bytes | None, str | None]:
    """(data, None) or (None, why it could not be read)."""
    if path == "-":
        return sys.stdin.buffer.read(), None
    try:
        return Path(path).read_bytes(), None
    except IsADirectoryError:
        return None, "is a directory"
    except FileNotFoundError:
        return None, "no such file"
    except PermissionError:
        return None, "permission denied"
    except OSError as exc:
        return None, exc.strerror or "cannot be read"


def run(args: argparse.Namespace) -> int:
    worst = EXIT_OK
    dns = None if args.no_dns else check_cmd.build_service(load_settings(), default_knowledge())
    for path in args.paths:
        data, error = read_input(path)
        if data is None:
            print(f"{path}: cannot read: {error}", file=sys.stderr)
            worst = max(worst, EXIT_UNREADABLE)
            continue
        for diagnosis in diagnose_bytes(data, path):
            lines: list[str] = []
            if dns is not None and (diagnosis.is_bounce or diagnosis.sending_ip_source == "input"):
                diagnosis, evidence = check_cmd.with_dns(dns, diagnosis)
                lines = ["  " + line for line in check_cmd.render_evidence(evidence, dns.knowledge)]
            text = "\n".join([render(diagnosis), *lines])
            print(json.dumps(diagnosis.to_json(), ensure_ascii=False) if args.json else text)
            worst = max(worst, _exit_code(diagnosis))
    return worst


def _exit_code(diagnosis: Diagnosis) -> int:
    if diagnosis.is_bounce or diagnosis.sending_ip_source == "input":
        return EXIT_OK
    return EXIT_UNREADABLE if diagnosis.not_bounce_reason in UNREADABLE else EXIT_NOT_BOUNCE


def render(d: Diagnosis) -> str:
    """The human answer: verdict first, then next step, warnings, evidence and the details."""
    if not d.verdict:
        return f"{d.source}: not a bounce: {d.not_bounce_reason}"
    lines = [f"{d.source}: {d.verdict}"]
    if d.next_step:
        lines.append(f"  Next: {d.next_step}")
    lines += [f"  Warning: {w}" for w in d.warnings]
    if d.evidence:
        lines.append(f"  Evidence: {d.evidence}")
    facts = [f"reason {d.reason}" if d.reason else None,
             f"receiver {d.receiver}" if d.receiver else None,
             f"list {d.blocklist}" if d.blocklist else None,
             f"format {d.format}" if d.format else None]
    if any(facts):
        lines.append("  " + " · ".join(f for f in facts if f))
    if d.sending_ip:
        lines.append(f"  Sending IP: {d.sending_ip} (from the {d.sending_ip_source})")
    if d.recipients:
        lines.append("  Recipients:")
        for r in d.recipients:
            code = " ".join(c for c in (r.reply_code, r.status) if c) or "-"
            lines.append(f"    {r.address or '(not named)'}  {code}  {r.reason}")
    return "\n".join(lines)

"""`python -m bot` and the `delistbot` console script: parse arguments, run one command."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from bot.cli import EXIT_USAGE
from bot.cli import check as check_cmd
from bot.cli import diagnose as diagnose_cmd
from bot.cli import serve as serve_cmd
from bot.cli import tickets as tickets_cmd
from bot.core.errors import ConfigError, KnowledgeError

# Each module adds its subcommands; keep this list in the order `--help` should show them.
COMMAND_MODULES = (diagnose_cmd, check_cmd, tickets_cmd, serve_cmd)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="delistbot",
        description="Diagnose mail bounces, draft delist requests and track them to the end.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMAND_MODULES:
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except (ConfigError, KnowledgeError) as exc:
        print(f"delistbot: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `delistbot ... | head` closed the pipe; not an error
        return 0


if __name__ == "__main__":
    sys.exit(main())

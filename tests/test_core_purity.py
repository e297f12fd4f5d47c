"""bot.core decides everything and touches nothing: it imports only the stdlib and itself."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

CORE = Path(__file__).resolve().parent.parent / "bot" / "core"


def imported_roots(path: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def test_core_imports_only_stdlib_and_itself():
    for path in CORE.rglob("*.py"):
        for root in imported_roots(path):
            allowed = root in sys.stdlib_module_names or root in ("bot", "__future__")
            assert allowed, f"{path.relative_to(CORE)} imports {root}"


def test_core_modules_under_bot_core_import_no_adapters():
    for path in CORE.rglob("*.py"):
        text = path.read_text()
        assert "bot.adapters" not in text and "bot.slack" not in text, path.name

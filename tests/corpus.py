"""Shared access to ../shared/corpus for tests and benchmarks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parent.parent.parent / "shared"
CORPUS = SHARED / "corpus"
SISIMAI = CORPUS / "sisimai"
SEED = CORPUS / "seed"


def need_shared() -> None:
    if not CORPUS.is_dir():
        pytest.skip(f"the shared corpus is not here ({CORPUS}); these tests read it from ../shared")


def expected_rows() -> list[dict[str, object]]:
    with (SISIMAI / "expected.jsonl").open() as fh:
        return [json.loads(line) for line in fh if line.strip()]

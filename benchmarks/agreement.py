"""Agreement with the shared corpus's expected results (Sisimai 5's opinion), per field.

    python benchmarks/agreement.py [--misses]
"""

from __future__ import annotations

import sys
from collections import Counter, defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.service.diagnose import diagnose_bytes
from tests.corpus import SISIMAI, expected_rows


def measure(show_misses: bool = False) -> dict[str, float]:
    rows = expected_rows()
    by_file: dict[str, list[dict[str, object]]] = defaultdict(list)
    for row in rows:
        by_file[str(row["file"])].append(row)
    hits: Counter[str] = Counter()
    misses = []
    for name, expected in by_file.items():
        diagnoses = diagnose_bytes((SISIMAI / name).read_bytes(), name)
        recipients = [r for d in diagnoses for r in d.recipients]
        for row in expected:
            index = int(row["index"]) - 1  # type: ignore[call-overload]
            got = recipients[index] if index < len(recipients) else None
            reason = str(got.reason) if got else None
            hits["reason"] += reason == row["reason"]
            hits["status"] += bool(got) and (got.status or "") == row["status"]  # type: ignore[union-attr]
            hits["reply_code"] += bool(got) and (got.reply_code or "") == str(row["replycode"])  # type: ignore[union-attr]
            if reason != row["reason"]:
                diag = got.diagnostic[:140] if got else "(no recipient)"
                misses.append(f"{name}#{row['index']}: want {row['reason']} got {reason} | {diag}")
    total = len(rows)
    if show_misses:
        print("\n".join(sorted(misses)))
    return {field: hits[field] / total for field in ("reason", "status", "reply_code")} | {"rows": total}


if __name__ == "__main__":
    figures = measure("--misses" in sys.argv)
    print(" ".join(f"{k}={v:.1%}" if k != "rows" else f"rows={v}" for k, v in figures.items()))

"""The shared corpus: agreement with Sisimai 5's expected results, and what must never happen."""

from __future__ import annotations

import pytest

from benchmarks.agreement import measure
from bot.service.diagnose import diagnose_bytes
from tests.corpus import SISIMAI, need_shared

# Ratchet: raise these as the engine improves; never lower them to make a change pass.
REASON_FLOOR = 0.95
REPLY_CODE_FLOOR = 0.97
STATUS_FLOOR = 0.87


def test_agreement_with_expected_results_stays_above_the_floor(capsys):
    need_shared()
    figures = measure()
    with capsys.disabled():
        print(f"\ncorpus agreement: reason {figures['reason']:.1%}, status {figures['status']:.1%}, "
              f"reply code {figures['reply_code']:.1%} over {figures['rows']} rows")
    assert figures["reason"] >= REASON_FLOOR
    assert figures["reply_code"] >= REPLY_CODE_FLOOR
    assert figures["status"] >= STATUS_FLOOR


def corpus_files(folder: str) -> list[str]:
    path = SISIMAI / folder
    return sorted(p.name for p in path.iterdir()) if path.is_dir() else []


@pytest.mark.parametrize("name", corpus_files("maildir/not"))
def test_messages_that_are_not_bounces_are_said_to_be_so(name):
    need_shared()
    for diagnosis in diagnose_bytes((SISIMAI / "maildir/not" / name).read_bytes(), name):
        assert not diagnosis.is_bounce
        assert diagnosis.summary.startswith("not a bounce")


@pytest.mark.parametrize("folder", ["maildir/dos", "maildir/mac"])
def test_crlf_and_cr_copies_read_like_the_lf_originals(folder):
    need_shared()
    for name in corpus_files(folder):
        original = SISIMAI / "maildir/bsd" / name
        if not original.exists():
            continue
        copy = diagnose_bytes((SISIMAI / folder / name).read_bytes(), name)
        lf = diagnose_bytes(original.read_bytes(), name)
        assert [[(r.address, r.reason) for r in d.recipients] for d in copy] == \
               [[(r.address, r.reason) for r in d.recipients] for d in lf], name


def test_every_corpus_file_reads_without_error():
    need_shared()
    for path in sorted(SISIMAI.rglob("*")):
        if path.is_file() and path.name not in ("LICENSE", "expected.jsonl"):
            for diagnosis in diagnose_bytes(path.read_bytes(), path.name):
                assert diagnosis.summary


def test_an_mbox_yields_one_diagnosis_per_message_in_order():
    need_shared()
    names = ["lhost-postfix-01.eml", "lhost-qmail-01.eml", "rhost-microsoft-01.eml"]
    mbox = b"".join(
        b"From MAILER-DAEMON Thu Dec 22 17:54:04 2015\n" + (SISIMAI / "maildir/bsd" / n).read_bytes() + b"\n"
        for n in names
    )
    diagnoses = diagnose_bytes(mbox, "box")
    assert [d.source for d in diagnoses] == ["box#1", "box#2", "box#3"]
    singles = [diagnose_bytes((SISIMAI / "maildir/bsd" / n).read_bytes(), n)[0] for n in names]
    assert [d.reason for d in diagnoses] == [d.reason for d in singles]
    assert diagnoses[2].receiver == "microsoft_eop"

"""The knowledge loader refuses malformed data, naming the file and the row."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bot.core.errors import KnowledgeError
from bot.core.knowledge import DATA_DIR, load


@pytest.fixture
def data(tmp_path: Path) -> Path:
    for name in ("providers.toml", "rules.toml", "reasons.toml", "statuses.toml"):
        shutil.copy(DATA_DIR / name, tmp_path / name)
    return tmp_path


def append(path: Path, text: str) -> None:
    path.write_text(path.read_text() + "\n" + text)


def test_packaged_knowledge_loads():
    kb = load()
    assert "microsoft_eop" in kb.providers and kb.rules and kb.phrases and kb.statuses


def test_unknown_key_is_reported_with_its_row(data):
    append(data / "rules.toml", """[[rule]]
id = "x"
match = "x"
reason = "blocked"
what = "x"
source = "x"
example = "x"
colour = "red"
""")
    with pytest.raises(KnowledgeError, match=r"rules\.toml.*\(x\).*colour"):
        load(data)


def test_reference_to_a_missing_provider_is_an_error(data):
    append(data / "rules.toml", """[[rule]]
id = "dangling"
match = "x"
receiver = "no_such_provider"
reason = "blocked"
what = "x"
source = "x"
example = "x"
""")
    with pytest.raises(KnowledgeError, match="no_such_provider"):
        load(data)


def test_duplicate_provider_id_is_an_error(data):
    text = (data / "providers.toml").read_text()
    start = text.index("[[provider]]\nid = \"spamcop\"")
    end = text.index("[[provider]]", start + 5)
    append(data / "providers.toml", text[start:end])
    with pytest.raises(KnowledgeError, match="duplicate provider id 'spamcop'"):
        load(data)


def test_bad_regex_and_unknown_reason_are_errors(data):
    append(data / "reasons.toml", '[[phrase]]\nid = "bad"\nreason = "blocked"\nmatch = "(unclosed"\n')
    with pytest.raises(KnowledgeError, match="bad regex"):
        load(data)


def test_unknown_reason_is_an_error(data):
    append(data / "reasons.toml", '[[phrase]]\nid = "odd"\nreason = "sleepy"\nmatch = "x"\n')
    with pytest.raises(KnowledgeError, match="unknown reason 'sleepy'"):
        load(data)


def test_a_default_route_limited_to_some_domains_is_an_error(data):
    text = (data / "providers.toml").read_text()
    marker = 'url = "https://psbl.org/remove"\n'
    (data / "providers.toml").write_text(text.replace(marker, marker + 'domains = ["example.org"]\n', 1))
    with pytest.raises(KnowledgeError, match=r"psbl.*default.*domains"):
        load(data)

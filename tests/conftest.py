"""Fixtures shared by the Slack tests: one fake Slack per test module (a module that needs one
per test, to stage an outage, defines its own `fake`)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakeslack import FakeSlack


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeSlack]:
    server = FakeSlack().start()
    yield server
    server.stop()

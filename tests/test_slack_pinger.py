"""The ping loop in-process, against the fake Slack Web API over HTTP and a real SQLite file:
a ping an earlier run posted just before it died is found by its key and not posted again, also
when it went top-level to the fallback channel (tickets opened from the CLI have no thread)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from bot.slack import blocks
from bot.slack.pinger import PING_EVENT, Pinger
from bot.slack.surface import WebSurface, make_client
from tests.fakeslack import BOT_TOKEN, FakeSlack
from tests.test_tickets_kit import T0, diagnosis, service

LATE = T0 + timedelta(days=3)  # the seed ticket is overdue by then


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    server = FakeSlack().start()
    yield server
    server.stop()


def test_a_top_level_ping_posted_before_a_crash_is_not_posted_again(fake, tmp_path: Path):
    svc = service(tmp_path / "d.db")
    ticket = svc.open_from_diagnosis(diagnosis(), "bounce", T0).ticket
    assert ticket is not None and ticket.slack_thread_ts is None  # opened from the CLI
    svc.mark_sent(ticket.id, T0)
    surface = WebSurface(make_client(BOT_TOKEN, fake.api_url),
                         make_client(BOT_TOKEN, fake.api_url, ambiguous=False))
    # The earlier run: claimed the overdue ping, posted it to the fallback channel, died.
    svc.queue_due(LATE)
    [row] = svc.claim_pings("slack@host", LATE)
    surface.post("C0FALLBACK", blocks.ping_message(None, row.text),
                 metadata={"event_type": PING_EVENT, "event_payload": {"key": row.key}})
    pinger = Pinger(svc, surface, owner_of=lambda ref: None, clock=lambda: LATE,
                    worker="slack@host", fallback_channel="C0FALLBACK")
    assert svc.release_claims("slack@host", LATE) == 1  # what start() does for its worker
    pinger.tick()
    assert [r.sent_at for r in svc.store.outbox(unsent_only=False)] == [LATE]
    assert len([m for m in fake.messages if row.text[:40] in m["text"]]) == 1
    assert fake.of("conversations.history", where=lambda c: c.args["channel"] == "C0FALLBACK")


def test_a_ping_slack_answered_500_to_is_looked_for_before_it_is_posted_again(fake, tmp_path):
    svc = service(tmp_path / "d.db")
    ticket = svc.open_from_diagnosis(diagnosis(), "bounce", T0, channel="C0T",
                                     thread_ts="1700000000.000100").ticket
    assert ticket is not None
    svc.mark_sent(ticket.id, T0)
    surface = WebSurface(make_client(BOT_TOKEN, fake.api_url),
                         make_client(BOT_TOKEN, fake.api_url, ambiguous=False))
    pinger = Pinger(svc, surface, owner_of=lambda ref: "U0OWNER", clock=lambda: LATE)
    fake.fail_next("chat.postMessage", 500)
    assert pinger.tick() == 0  # one call, no blind retry by the client: the outbox retries
    assert len(fake.of("chat.postMessage")) == 1
    assert pinger.tick() == 1
    assert fake.of("conversations.replies", where=lambda c: c.args["ts"] == "1700000000.000100")
    [ping] = [m for m in fake.messages if "longer than" in m["text"]]
    assert ping["thread_ts"] == "1700000000.000100" and ping["text"].startswith("<@U0OWNER> ")

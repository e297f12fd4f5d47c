"""The ping loop in-process, against the fake Slack Web API over HTTP and a real SQLite file:
a ping an earlier run posted just before it died is found by its key and not posted again, also
when it went top-level to the fallback channel (tickets opened from the CLI have no thread)."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
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
    assert pinger.tick() == 0  # not at once: Slack is given time to come back
    assert len(fake.of("chat.postMessage")) == 1
    pinger.clock = lambda: LATE + timedelta(minutes=1)
    assert pinger.tick() == 1
    assert fake.of("conversations.replies", where=lambda c: c.args["ts"] == "1700000000.000100")
    [ping] = [m for m in fake.messages if "longer than" in m["text"]]
    assert ping["thread_ts"] == "1700000000.000100" and ping["text"].startswith("<@U0OWNER> ")


def threaded(tmp_path: Path, channel: str = "C0T"):  # type: ignore[no-untyped-def]
    """A ticket with a Slack thread, its request sent at T0: overdue by LATE."""
    svc = service(tmp_path / "d.db")
    ticket = svc.open_from_diagnosis(diagnosis(), "bounce", T0, channel=channel,
                                     thread_ts="1700000000.000100").ticket
    assert ticket is not None
    svc.mark_sent(ticket.id, T0)
    return svc, ticket


def surface_for(fake: FakeSlack) -> WebSurface:
    return WebSurface(make_client(BOT_TOKEN, fake.api_url),
                      make_client(BOT_TOKEN, fake.api_url, ambiguous=False))


def cli(db: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "DELISTBOT_"))}
    env["DELISTBOT_DB"] = str(db)
    return subprocess.run([sys.executable, "-m", "bot", *args], env=env, capture_output=True,
                          text=True, timeout=60)


@pytest.mark.parametrize("error", ["not_in_channel", "is_archived", "invalid_auth"])
def test_a_ping_slack_refuses_for_good_is_not_retried_and_the_cli_shows_it(fake, tmp_path, error):
    svc, ticket = threaded(tmp_path)
    pinger = Pinger(svc, surface_for(fake), owner_of=lambda ref: "U0OWNER", clock=lambda: LATE)
    fake.fail_next_error("chat.postMessage", error)
    assert pinger.tick() == 0
    for minutes in (1, 10, 60):  # Slack would take it now: it must not be asked again
        pinger.clock = lambda m=minutes: LATE + timedelta(minutes=m)  # type: ignore[misc]
        assert pinger.tick() == 0
    assert len(fake.of("chat.postMessage")) == 1 and not fake.messages
    due = cli(tmp_path / "d.db", "due", "--at", "2013-03-29T00:00:00Z", "--json")
    assert due.returncode == 1, due.stderr
    [entry] = [e for e in json.loads(due.stdout) if e["kind"] == "overdue"]
    assert entry["ticket"] == ticket.id and entry["undelivered"] == error
    text = cli(tmp_path / "d.db", "due", "--at", "2013-03-29T00:00:00Z").stdout
    assert f"[not delivered to Slack: {error}]" in text
    shown = json.loads(cli(tmp_path / "d.db", "ticket", ticket.id, "--json").stdout)
    [ping] = shown["pings"]
    assert ping["sent_at"] is None and ping["error"] == error and ping["attempts"] == 1


def test_a_ping_the_tickets_channel_refuses_goes_to_the_fallback_channel(fake, tmp_path):
    svc, ticket = threaded(tmp_path, channel="C0GONE")
    pinger = Pinger(svc, surface_for(fake), owner_of=lambda ref: "U0OWNER", clock=lambda: LATE,
                    fallback_channel="C0FALLBACK")
    fake.fail_next_error("chat.postMessage", "not_in_channel")
    assert pinger.tick() == 1
    [ping] = [m for m in fake.messages if "longer than" in m["text"]]
    assert ping["channel"] == "C0FALLBACK" and "thread_ts" not in ping
    assert ping["text"].startswith("<@U0OWNER> ") and ticket.id in ping["text"]
    assert "Not posted in the ticket's channel C0GONE: Slack answered not_in_channel" in ping["text"]
    [row] = svc.store.outbox(unsent_only=False)
    assert row.sent_at == LATE and row.error == "not_in_channel in C0GONE; posted in C0FALLBACK"
    assert not row.undelivered and svc.undelivered() == []
    pinger.clock = lambda: LATE + timedelta(minutes=5)
    assert pinger.tick() == 0 and len(fake.messages) == 1


def test_a_refused_token_is_not_worked_around_by_the_fallback_channel(fake, tmp_path):
    svc, _ = threaded(tmp_path)
    pinger = Pinger(svc, surface_for(fake), owner_of=lambda ref: None, clock=lambda: LATE,
                    fallback_channel="C0FALLBACK")
    fake.fail_next_error("chat.postMessage", "token_revoked")
    assert pinger.tick() == 0
    assert len(fake.of("chat.postMessage")) == 1  # the same token would fail there too
    assert [r.error for r in svc.undelivered()] == ["token_revoked"]


def test_slack_down_for_a_while_delays_the_ping_with_a_growing_backoff(fake, tmp_path):
    svc, _ = threaded(tmp_path)
    now = [LATE]
    pinger = Pinger(svc, surface_for(fake), owner_of=lambda ref: None, clock=lambda: now[0],
                    interval=10)
    fake.down("chat.postMessage")
    tries = []
    for _ in range(60):  # ten minutes of ticks, ten seconds apart
        before = len(fake.of("chat.postMessage"))
        pinger.tick()
        if len(fake.of("chat.postMessage")) > before:
            tries.append((now[0] - LATE).total_seconds())
        now[0] += timedelta(seconds=10)
    gaps = [b - a for a, b in itertools.pairwise(tries)]
    assert gaps == sorted(gaps) and gaps[0] <= 20 and gaps[-1] >= 160
    assert len(tries) < 10  # not every tick
    fake.up("chat.postMessage")
    now[0] += timedelta(minutes=6)
    assert pinger.tick() == 1
    assert svc.undelivered() == [] and len(fake.messages) == 1

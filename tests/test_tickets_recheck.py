"""DNS re-checks of tickets against the loopback DNS server, on a real SQLite file: a list that
drops the IP delists a waiting ticket ("seen in DNS") and queues the confirmation; after the
propagation window a clean answer verifies it and a listed one queues the "still blocked" ping;
unknown answers and untrustworthy lists change nothing; lists without a zone are never asked."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from bot.config import Settings
from bot.core import dnsbl, knowledge
from bot.core.tickets import PingKind, State
from bot.service import recheck
from bot.service.recheck import DnsRecheck, Finding
from bot.service.tickets import TicketService
from tests.dnsserver import DnsTestServer, Drop, reverse, seed
from tests.test_tickets_kit import REPO, T0, diagnosis, service

ZONES = dnsbl.load_zones(knowledge.load().providers)
SPAMCOP = "bl.spamcop.net"
MIN, H = timedelta(minutes=1), timedelta(hours=1)


@pytest.fixture
def dns() -> Iterator[DnsTestServer]:
    server = DnsTestServer().start()
    seed(server, [(n, z.ipv6) for z in ZONES if (n := z.query_zone({}))])
    yield server
    server.stop()


@pytest.fixture
def svc(tmp_path: Path) -> TicketService:
    return service(tmp_path / "delistbot.db")


def checker(svc: TicketService, dns: DnsTestServer) -> DnsRecheck:
    settings = Settings(nameservers=(("127.0.0.1", int(dns.address.split(":")[1])),),
                        dns_timeout=0.5, dns_deadline=2.0, dns_recheck=30 * 60)
    return recheck.build(settings, svc)


def list_on_spamcop(dns: DnsTestServer, ip: str) -> None:
    dns.add(reverse(ip, SPAMCOP), "A", "127.0.0.2", ttl=0)  # ttl 0: never cached


def spamcop_ticket(svc: TicketService, ip: str, sent: bool = True) -> str:
    opened = svc.open_from_diagnosis(diagnosis(ip=ip, receiver=None, blocklist="spamcop"), "b", T0)
    assert opened.ticket is not None
    if sent:
        svc.mark_sent(opened.ticket.id, T0)
    return opened.ticket.id


def outbox(svc: TicketService) -> list[tuple[str, str]]:
    return [(row.kind, row.text) for row in svc.store.outbox(unsent_only=False)]


def test_a_list_that_drops_the_ip_delists_the_waiting_ticket_and_queues_the_confirmation(
    svc: TicketService, dns: DnsTestServer
) -> None:
    ip = "85.10.20.50"
    list_on_spamcop(dns, ip)
    ticket = spamcop_ticket(svc, ip)
    check = checker(svc, dns)
    [first] = check.run(T0 + MIN)
    assert (first.answer.finding, first.moved, first.ticket.state) == (
        Finding.LISTED, False, State.REQUESTED)
    assert "SpamCop answers 127.0.0.2" in first.answer.detail
    dns.remove(reverse(ip, SPAMCOP))
    assert check.run(T0 + 10 * MIN) == []  # checked 9 minutes ago: not due for 30
    [seen] = check.run(T0 + 32 * MIN)
    assert seen.moved and seen.ticket.state is State.DELISTED
    assert seen.ping is PingKind.CONFIRMED
    events = svc.store.events(svc.get(ticket).number or 0)
    assert events[-1]["kind"] == "delisted" and events[-1]["actor"] == "dns"
    assert events[-1]["text"].startswith("seen in DNS: SpamCop (bl.spamcop.net) does not list it")
    [(kind, text)] = outbox(svc)
    assert kind == "confirmed" and "delisted, seen in DNS" in text and ticket in text
    assert svc.to_json(svc.get(ticket))["dns"]["status"] == "not_listed"


def test_after_the_propagation_window_a_clean_answer_verifies_the_ticket(
    svc: TicketService, dns: DnsTestServer
) -> None:
    ticket = spamcop_ticket(svc, "85.10.20.51")
    check = checker(svc, dns)
    [seen] = check.run(T0 + 31 * MIN)
    assert seen.ticket.state is State.DELISTED
    recheck_at = svc.schedule(seen.ticket).recheck_at
    assert recheck_at is not None
    assert check.run(recheck_at - MIN) == []  # propagation still running: not asked again
    [verified] = check.run(recheck_at)
    assert verified.moved and verified.ticket.state is State.VERIFIED
    assert verified.ping is PingKind.VERIFIED
    assert svc.get(ticket).verified_at == recheck_at
    assert svc.due(recheck_at) == []  # no re-check reminder left for a verified ticket
    kinds = [kind for kind, _ in outbox(svc)]
    assert kinds == ["confirmed", "verified"]


def test_still_listed_after_propagation_queues_one_still_blocked_ping_with_the_next_step(
    svc: TicketService, dns: DnsTestServer
) -> None:
    ip = "85.10.20.52"
    list_on_spamcop(dns, ip)
    ticket = spamcop_ticket(svc, ip)
    svc.move(ticket, replace(_delisted_by_hand(), text="the provider said so"), T0 + H)
    check = checker(svc, dns)
    recheck_at = svc.schedule(svc.get(ticket)).recheck_at
    assert recheck_at is not None
    [still] = check.run(recheck_at)
    assert still.still_blocked and not still.moved and still.ticket.state is State.DELISTED
    [(kind, text)] = outbox(svc)
    assert kind == "still_listed"
    assert "still listed on SpamCop" in text and "https://www.spamcop.net/bl.shtml" in text
    # The plain re-check reminder of this cycle is the same outbox row: never a second ping.
    assert svc.queue_due(recheck_at) == 0
    # Checked again after the interval: still listed, still one ping; clean later: verified.
    assert check.run(recheck_at + 31 * MIN)[0].ping is None
    dns.remove(reverse(ip, SPAMCOP))
    [verified] = check.run(recheck_at + 62 * MIN)
    assert verified.ticket.state is State.VERIFIED
    assert [k for k, _ in outbox(svc)] == ["still_listed", "verified"]


def test_unknown_answers_change_nothing_and_say_so(svc: TicketService, dns: DnsTestServer) -> None:
    ticket = spamcop_ticket(svc, "85.10.20.53")
    dns.behave(SPAMCOP, Drop())
    [silent] = checker(svc, dns).run(T0 + H)
    assert silent.answer.finding is Finding.UNKNOWN and not silent.moved
    assert "DNS did not say" in silent.message and "timeout" in silent.message
    assert svc.get(ticket).state is State.REQUESTED and outbox(svc) == []
    assert svc.to_json(svc.get(ticket))["dns"]["status"] == "unknown"


def test_a_list_failing_its_test_points_is_not_believed_when_it_says_not_listed(
    svc: TicketService, dns: DnsTestServer
) -> None:
    ticket = spamcop_ticket(svc, "85.10.20.54")
    dns.remove(reverse("127.0.0.2", SPAMCOP))  # the "always listed" test point is gone
    [doubt] = checker(svc, dns).run(T0 + H)
    assert doubt.answer.finding is Finding.UNKNOWN and "not trustworthy" in doubt.answer.detail
    assert svc.get(ticket).state is State.REQUESTED and outbox(svc) == []


def test_a_receivers_own_block_has_no_zone_so_its_recheck_stays_a_reminder(
    svc: TicketService, dns: DnsTestServer
) -> None:
    opened = svc.open_from_diagnosis(diagnosis(ip="85.10.20.55"), "b", T0)  # Microsoft's list
    assert opened.ticket is not None
    svc.mark_sent(opened.ticket.id, T0)
    check = checker(svc, dns)
    assert check.run(T0 + 2 * H) == []  # never due
    [forced] = check.run(T0 + 2 * H, ref=opened.ticket.id)
    assert forced.answer.finding is Finding.NO_ZONE and "no DNS zone" in forced.message
    assert dns.asked("in-addr.arpa") == 0 and svc.get(opened.ticket.id).state is State.REQUESTED


def test_tickets_not_yet_sent_or_closed_are_not_moved_by_dns(
    svc: TicketService, dns: DnsTestServer
) -> None:
    ticket = spamcop_ticket(svc, "85.10.20.56", sent=False)  # open: the request is not out
    check = checker(svc, dns)
    assert check.run(T0 + H) == []
    [forced] = check.run(T0 + H, ref=ticket)
    assert "nothing to change" in forced.message and svc.get(ticket).state is State.OPEN


def test_recheck_from_a_shell(tmp_path: Path, dns: DnsTestServer) -> None:
    ip = "85.10.20.57"
    list_on_spamcop(dns, ip)
    bounce = tmp_path / "bounce.txt"
    bounce.write_text(
        "From: MAILER-DAEMON@mx.sender.example\nTo: ops@sender.example\n"
        "Subject: Undelivered Mail Returned to Sender\n\n"
        f"<user@recipient.example>: host mx.recipient.example[203.0.113.9] said: 554 5.7.1\n"
        f"    Service unavailable; Client host [{ip}] blocked using bl.spamcop.net;\n"
        f"    Blocked - see https://www.spamcop.net/bl.shtml?{ip} (in reply to RCPT TO command)\n")
    (tmp_path / "delistbot.toml").write_text(
        '[dns]\ntimeout = "0.5s"\ndeadline = "2s"\nrecheck = "1h"\n'
        '[providers.spamcop]\npropagation = "0s"\n')
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO), "DELISTBOT_DB": str(tmp_path / "t.db"),
           "DELISTBOT_NAMESERVERS": dns.address}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "bot", *args], env=env, cwd=tmp_path,
                              capture_output=True, text=True, timeout=60)

    assert run("open", str(bounce)).stdout.strip() == "DL-1"
    assert run("sent", "DL-1").returncode == 0
    listed = run("recheck", "DL-1")
    assert listed.returncode == 0 and "still listed" in listed.stdout and "unchanged" in listed.stdout
    dns.remove(reverse(ip, SPAMCOP))
    seen = run("recheck", "DL-1")  # checked a moment ago: only a named ticket is asked again
    assert seen.returncode == 0, seen.stderr
    assert "DL-1: requested -> delisted (seen in DNS" in seen.stdout
    dns.add(reverse(ip, SPAMCOP), "A", "127.0.0.2", ttl=0)  # listed again
    still = run("recheck", "--json")
    assert still.returncode == 1, still.stderr  # exit 1: still blocked after the (0 s) window
    assert '"still_blocked": true' in still.stdout
    due = run("due", "--at", "2999-01-01T00:00:00Z")
    assert due.returncode == 1 and "`delistbot recheck DL-1` asks the list's DNS now" in due.stdout
    shown = json.loads(run("ticket", "DL-1", "--json").stdout)
    assert shown["state"] == "delisted" and shown["dns"]["status"] == "listed"
    assert [e["actor"] for e in shown["events"]][-2:] == ["dns", "dns"]  # seen, still listed


def _delisted_by_hand():  # type: ignore[no-untyped-def]
    from bot.core.tickets import Event, Kind

    return Event(Kind.DELISTED, "cli")

"""/delist <ip> against the loopback DNS server: the DNS picture, a button per listing, and the
ticket a button opens. One zone never answers: the picture says so, and the ack is not held."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.core import dnsbl, knowledge
from tests.dnsserver import LISTED_IP, SPAMCOP_TXT, DnsTestServer, Drop, reverse, seed
from tests.fakeslack import FakeSlack, bot_env, command_body
from tests.slackbot import FORM, Bot, action_ids, card_state, cards_in, click, posted_in, running

ZONES = dnsbl.load_zones(knowledge.load().providers)
SILENT_ZONE = "psbl.surriel.com"


@pytest.fixture(scope="module")
def dns() -> Iterator[DnsTestServer]:
    server = DnsTestServer().start()
    seed(server, [(n, z.ipv6) for z in ZONES if (n := z.query_zone({}))])
    server.behave(SILENT_ZONE, Drop())
    yield server
    server.stop()


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("dns")


@pytest.fixture(scope="module")
def bot(fake, dns, home) -> Iterator[Bot]:
    settings = ('[dns]\ntimeout = "0.3s"\ndeadline = "1.5s"\nrecheck = "1s"\n'
                '[providers.spamcop]\npropagation = "1s"\n'
                '[providers.psbl]\npropagation = "1s"\n'
                '[providers.microsoft_eop]\npropagation = "1s"\n'
                '[slack]\nping_interval = "0.5s"\n')
    with running(fake, home, settings, DELISTBOT_NAMESERVERS=dns.address) as bot:
        yield bot


def open_from_listing(bot: Bot, fake: FakeSlack, channel: str, ip: str, user: str,
                      list_id: str = "spamcop") -> dict:
    """The listing's "Open ticket" button: the ticket's card, once posted."""
    assert bot.send(click(channel, "open_ticket_ip", f"{ip}|{list_id}", user=user,
                          block_id=f"listing:{list_id}"), FORM)[0] == 200
    fake.wait_for("chat.postMessage", where=lambda c: c.args.get("channel") == channel
                  and "request_sent" in json.dumps(c.args.get("blocks")))
    return cards_in(fake, channel)[0]


def test_ip_check_shows_each_listing_with_a_button_and_the_silent_list(bot, fake):
    status, body = bot.send(command_body(LISTED_IP, fake, channel="C0DNS"), FORM)
    assert status == 200 and LISTED_IP in body
    post = fake.wait_for("chat.postMessage", where=lambda c: c.args.get("channel") == "C0DNS")[0]
    text = json.dumps(post.args["blocks"])
    assert "SpamCop" in text and SPAMCOP_TXT.split("?")[0] in text
    buttons = [e for b in post.args["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert {b["value"] for b in buttons} >= {f"{LISTED_IP}|spamcop"}
    assert "PSBL" in text and "No answer from" in text


def test_a_listing_button_opens_a_ticket_with_its_card(bot, fake):
    card = open_from_listing(bot, fake, "C0DNSBTN", LISTED_IP, "U0CAROL")
    assert LISTED_IP in card["text"] and "SpamCop" in card["text"]
    assert "<@U0CAROL>" in json.dumps(card["blocks"])


def test_the_propagation_recheck_ping_says_what_dns_sees_now(bot, fake, dns):
    ip = "85.10.20.40"  # listed on SpamCop for this test alone
    dns.add(reverse(ip, "bl.spamcop.net"), "A", "127.0.0.2")
    card = open_from_listing(bot, fake, "C0RECHECK", ip, "U0DAVE")
    ticket = card["text"].split(":")[0]
    fake.wait_for("chat.postMessage", where=lambda c: c.args.get("thread_ts") == card["ts"])
    assert bot.send(click("C0RECHECK", "delisted", ticket, user="U0DAVE",
                          block_id=f"ticket:{ticket}", message_ts=card["ts"]), FORM)[0] == 200
    ping = fake.wait_for("chat.postMessage", timeout=20, where=lambda c: c.args.get(
        "channel") == "C0RECHECK" and "propagation window is over" in c.args.get("text", ""))[0]
    assert ping.args["reply_broadcast"] is True and ping.args["thread_ts"] == card["ts"]
    assert "propagation window is over, but DNS re-check: still listed on SpamCop" in ping.args[
        "text"]  # the "still blocked" ping, with the next step
    assert ping.args["text"].startswith(f"<@U0DAVE> {ticket} ({ip}")
    assert "verified" not in [card_state(c) for c in fake.of(
        "chat.update", where=lambda c: c.args.get("ts") == card["ts"])]


def test_a_list_dropping_the_ip_is_seen_in_dns_pinged_in_the_thread_then_verified(bot, fake, dns):
    ip = "85.10.20.41"  # listed on SpamCop until the list drops it below
    dns.add(reverse(ip, "bl.spamcop.net"), "A", "127.0.0.2", ttl=0)
    card = open_from_listing(bot, fake, "C0SEEN", ip, "U0ERIN")
    ticket = card["text"].split(":")[0]
    assert bot.send(click("C0SEEN", "request_sent", ticket, user="U0ERIN",
                          block_id=f"ticket:{ticket}", message_ts=card["ts"]), FORM)[0] == 200
    fake.wait_for("chat.update", where=lambda c: c.args.get("ts") == card["ts"]
                  and card_state(c) == "requested")
    dns.remove(reverse(ip, "bl.spamcop.net"))

    def on_card(text: str):
        return lambda c: c.args.get("channel") == "C0SEEN" and text in c.args.get("text", "")

    ping = fake.wait_for("chat.postMessage", timeout=20, where=on_card("seen in DNS"))[0]
    assert ping.args["reply_broadcast"] is True and ping.args["thread_ts"] == card["ts"]
    assert ping.args["text"].startswith(f"<@U0ERIN> {ticket} ({ip}): delisted, seen in DNS")
    fake.wait_for("chat.update", where=lambda c: c.args.get("ts") == card["ts"]
                  and card_state(c) == "delisted")
    # SpamCop's propagation window is 1 s in the settings: the next look-up verifies it.
    done = fake.wait_for("chat.postMessage", timeout=20, where=on_card("DNS agrees"))[0]
    assert done.args["thread_ts"] == card["ts"] and done.args["text"].startswith("<@U0ERIN> ")
    fake.wait_for("chat.update", where=lambda c: c.args.get("ts") == card["ts"]
                  and card_state(c) == "verified")
    assert len(fake.of("chat.postMessage", where=on_card("seen in DNS"))) == 1


def test_the_dns_picture_waits_out_a_slack_outage_and_comes_once(bot, fake):
    def here(call) -> bool:  # type: ignore[no-untyped-def]
        return call.args.get("channel") == "C0DNSDOWN"

    fake.down("chat.postMessage")
    try:
        status, _ = bot.send(command_body(LISTED_IP, fake, channel="C0DNSDOWN"), FORM)
        assert status == 200
        fake.wait_for("chat.postMessage", 2, timeout=30, where=lambda c: here(c) and not c.ok)
    finally:
        fake.up("chat.postMessage")
    picture = fake.wait_for("chat.postMessage", timeout=30, where=lambda c: here(c) and c.ok)[0]
    assert "SpamCop" in json.dumps(picture.args["blocks"])
    # Another answer in the same channel has come since: the picture was not posted again.
    assert bot.send(command_body("list", fake, channel="C0DNSDOWN"), FORM)[0] == 200
    fake.wait_for("response_url", where=lambda c: "open ticket" in json.dumps(c.args))
    assert len([m for m in fake.messages if m["channel"] == "C0DNSDOWN"]) == 1


def seed_bounce(ip: str) -> str:
    """The repo's sample bounce (Microsoft's block list), naming `ip`."""
    sample = Path(__file__).parents[1] / "examples" / "seed-bounce.txt"
    return sample.read_text().replace("203.0.113.44", ip)


def asked_about(dns: DnsTestServer, ip: str) -> int:
    """DNS queries for `ip` on any list so far."""
    prefix = ".".join(reversed(ip.split("."))) + "."
    return sum(n for (name, _), n in dns.queries.items() if name.startswith(prefix))


def open_seed_ticket(bot: Bot, fake: FakeSlack, channel: str, ip: str) -> tuple[dict, str]:
    """`/delist` with the seed bounce for `ip`: its card and ticket id, once the DNS picture is out."""
    assert bot.send(command_body(seed_bounce(ip), fake, channel=channel), FORM)[0] == 200
    fake.wait_for("chat.postMessage", where=lambda c: c.args.get("channel") == channel
                  and f"DNS picture for {ip}" in c.args.get("text", "") + json.dumps(
                      c.args.get("blocks")))
    card = cards_in(fake, channel)[0]
    return card, card["text"].split(":")[0]


def test_the_recheck_ping_of_a_list_without_a_zone_asks_dns_nothing(bot, fake, dns):
    """Microsoft's own block has no DNS zone: its re-check ping goes out without a DNS sweep
    (which, with a list never answering, would hold every later ping back by its deadline)."""
    ip = "85.10.20.50"
    card, ticket = open_seed_ticket(bot, fake, "C0MSRECHECK", ip)
    before = asked_about(dns, ip)
    assert before  # the DNS picture under the new card asked every list
    assert bot.send(click("C0MSRECHECK", "delisted", ticket, user="U0FRAN",
                          block_id=f"ticket:{ticket}", message_ts=card["ts"]), FORM)[0] == 200
    ping = fake.wait_for("chat.postMessage", timeout=20, where=lambda c: c.args.get(
        "channel") == "C0MSRECHECK" and "propagation window is over" in c.args.get("text", ""))[0]
    assert ping.args["thread_ts"] == card["ts"] and ping.args["text"].startswith("<@U0ALICE> ")
    assert "send a test message" in ping.args["text"]
    assert asked_about(dns, ip) == before


def recheck_ping(fake: FakeSlack, channel: str) -> dict:
    """The propagation re-check ping as the channel holds it (the fake's stored message), once
    posted in the ticket's thread and also sent to the channel."""
    call = fake.wait_for("chat.postMessage", timeout=20, where=lambda c: c.ok and c.args.get(
        "channel") == channel and "propagation window is over" in c.args.get("text", ""))[0]
    assert call.args["reply_broadcast"] is True
    (ping,) = posted_in(fake, channel, "propagation window is over")
    return ping


def buttons(message: dict) -> list[tuple[str, str, str]]:
    return [(e["action_id"], e["text"]["text"], e["value"]) for b in message["blocks"]
            if b["type"] == "actions" for e in b["elements"]]


def test_in_slack_the_recheck_ping_asks_for_its_buttons_not_for_cli_commands(bot, fake, home):
    ip = "85.10.20.51"  # Microsoft's own block: no DNS zone, the re-check is the person's
    card, ticket = open_seed_ticket(bot, fake, "C0RECHECKBTN", ip)
    assert bot.send(click("C0RECHECKBTN", "delisted", ticket, block_id=f"ticket:{ticket}",
                          message_ts=card["ts"]), FORM)[0] == 200
    ping = recheck_ping(fake, "C0RECHECKBTN")
    assert ping["thread_ts"] == card["ts"] and ping["text"].startswith("<@U0ALICE> ")
    assert "`verified`" not in ping["text"] and "`reopen`" not in ping["text"]
    assert ("send a test message, then press *Verified (mail flows)* if mail flows again or "
            "*Still blocked* if it still bounces") in ping["text"]
    assert buttons(ping) == [("verified", "Verified (mail flows)", ticket),
                             ("reopen", "Still blocked", ticket)]
    # The CLI words the same reminder with its own commands.
    due = subprocess.run([sys.executable, "-m", "bot", "due", "--at", "2999-01-01T00:00:00Z"],
                         env=bot_env(fake, home), capture_output=True, text=True, timeout=60)
    (line,) = [x for x in due.stdout.splitlines() if f"{ticket} ({ip}" in x]
    assert "send a test message, then `verified` or `reopen`." in line
    # "Verified (mail flows)" pressed on the ping itself: the card follows.
    assert bot.send(click("C0RECHECKBTN", "verified", ticket, user="U0GINA",
                          block_id=f"ping:{ticket}", message_ts=ping["ts"]), FORM)[0] == 200
    verified = fake.wait_for("chat.update", where=lambda c: c.args.get("ts") == card["ts"]
                             and card_state(c) == "verified")[-1]
    assert action_ids(verified) == {"reopen", "close"}
    fake.wait_for("chat.postMessage", where=lambda c: c.args.get("thread_ts") == card["ts"]
                  and f"<@U0GINA> marked it verified (mail flows): {ticket} is now verified"
                  in c.args.get("text", ""))


def test_a_recheck_the_list_never_answers_tells_the_channel_so(bot, fake, dns):
    """PSBL's zone drops every query: the re-check ping says the list did not answer, and
    leaves the decision to the person, with the buttons for it."""
    ip = "85.10.20.60"
    card = open_from_listing(bot, fake, "C0SILENT", ip, "U0HANK", list_id="psbl")
    ticket = card["text"].split(":")[0]
    assert "PSBL" in card["text"]
    fake.wait_for("chat.postMessage", where=lambda c: c.args.get("thread_ts") == card["ts"])
    assert bot.send(click("C0SILENT", "delisted", ticket, user="U0HANK",
                          block_id=f"ticket:{ticket}", message_ts=card["ts"]), FORM)[0] == 200
    ping = recheck_ping(fake, "C0SILENT")
    assert ping["thread_ts"] == card["ts"] and ping["text"].startswith(f"<@U0HANK> {ticket}")
    said = ping["text"].split("DNS re-check: ", 1)[1]
    assert said.startswith("the list did not answer (PSBL: ")
    assert "`verified`" not in ping["text"]
    assert [b[0] for b in buttons(ping)] == ["verified", "reopen"]
    # Nothing moved on DNS's word: the card still asks, and "Still blocked" starts over.
    assert not fake.of("chat.update", where=lambda c: c.args.get("ts") == card["ts"]
                       and card_state(c) == "verified")
    assert bot.send(click("C0SILENT", "reopen", ticket, user="U0HANK", block_id=f"ping:{ticket}",
                          message_ts=ping["ts"]), FORM)[0] == 200
    reopened = fake.wait_for("chat.update", where=lambda c: c.args.get("ts") == card["ts"]
                             and card_state(c) == "open")[-1]
    assert "request_sent" in action_ids(reopened)
    fake.wait_for("chat.postMessage", where=lambda c: c.args.get("thread_ts") == card["ts"]
                  and "<@U0HANK> marked it still blocked" in c.args.get("text", ""))

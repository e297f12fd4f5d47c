"""Block Kit builders: golden files for what users see, and Slack's limits never broken silently.

Regenerate the golden files after an intended change with
`UPDATE_GOLDEN=1 pytest tests/test_slack_blocks.py` and review the diff.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from bot.core.model import DelistMethod, DelistRoute, Diagnosis, Reason
from bot.slack import blocks
from bot.slack.blocks import Listing

GOLDEN = Path(__file__).parent / "golden" / "blocks"
NAMES = {"microsoft_eop": "Microsoft (Exchange Online Protection)", "spamhaus": "Spamhaus"}

MICROSOFT = Diagnosis(
    source="test",
    is_bounce=True,
    format="qmail",
    sending_ip="203.0.113.44",
    sending_ip_source="rejection text",
    receiver="microsoft_eop",
    reason=Reason.BLOCKED,
    rule="microsoft.blocklist1",
    delist=DelistRoute(DelistMethod.EMAIL, address="delist@messaging.microsoft.com"),
    expected_wait_hours=24,
    evidence="550 5.7.1 Service unavailable; Client host [203.0.113.44] blocked using "
    "Blocklist 1, mail from IP banned",
    verdict="Microsoft refuses mail from 203.0.113.44: it is on their own Blocklist 1.",
    next_step="Send the delist request below to delist@messaging.microsoft.com.",
)


def _check_golden(name: str, value: Any) -> None:
    path = GOLDEN / f"{name}.json"
    text = json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True) + "\n"
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(text)
    assert path.is_file(), f"missing golden file {path}; run with UPDATE_GOLDEN=1"
    assert text == path.read_text(), f"{name} changed; review, then UPDATE_GOLDEN=1"


def _messages(messages: list[blocks.Message]) -> list[dict[str, Any]]:
    return [m.as_kwargs() for m in messages]


def _all_text(messages: list[blocks.Message]) -> str:
    return json.dumps([m.as_kwargs() for m in messages])


def test_help_golden():
    _check_golden("help", blocks.help_message().as_kwargs())


def test_paste_modal_golden():
    _check_golden("paste_modal", blocks.paste_modal("C0CHANNEL"))


def test_diagnosis_with_draft_and_button_golden():
    draft = "Hello,\n\nPlease remove 203.0.113.44 from Blocklist 1.\n\nThanks"
    _check_golden(
        "diagnosis_microsoft",
        _messages(blocks.diagnosis_messages(MICROSOFT, NAMES, draft, open_value="C1:1.2:0")),
    )


def test_ip_report_golden():
    listings = [
        Listing("spamhaus", "Spamhaus ZEN", "listed", "SBL: spam source",
                "https://check.spamhaus.org/", "Listed by SBL, see <https://x.example|x> & more"),
        Listing("spamcop", "SpamCop", "not listed"),
        Listing("uceprotect", "UCEPROTECT L1", "unknown"),
    ]
    _check_golden("ip_report", _messages(blocks.ip_report("203.0.113.44", listings)))


def test_home_golden():
    _check_golden("home_empty", blocks.home_view())


@pytest.mark.parametrize(
    "hostile",
    ["<!channel> look", "<!here>", "<@U012345> ping", "<!subteam^S1|ops>", "a & b <b>bold</b>"],
)
def test_pasted_mentions_never_reach_slack_as_markup(hostile):
    d = Diagnosis(source="t", is_bounce=True, verdict=hostile, evidence=hostile,
                  next_step=hostile, warnings=(hostile,), sending_ip=hostile)
    out = _all_text(blocks.diagnosis_messages(d, {}, draft=hostile, open_value="x"))
    for token in ("<!channel>", "<!here>", "<@U", "<!subteam", "<b>"):
        assert token not in out
    assert "&lt;" in out


def test_long_draft_is_split_not_cut():
    draft = "\n".join(f"line {i:05d} " + "x" * 60 for i in range(600))  # ~42,000 characters
    messages = blocks.diagnosis_messages(MICROSOFT, NAMES, draft, open_value="v")
    assert len(messages) > 1
    for m in messages:
        assert len(m.blocks) <= blocks.MAX_BLOCKS
        for block in m.blocks:
            if block["type"] == "section" and "text" in block:
                assert len(block["text"]["text"]) <= blocks.MAX_SECTION
    shown = "".join(
        b["text"]["text"] for m in messages for b in m.blocks
        if b["type"] == "section" and "text" in b and b["text"]["text"].startswith("```")
    )
    for i in range(600):  # every line of the draft is somewhere in the messages
        assert f"line {i:05d} " in shown
    assert "continued" in messages[1].text


def test_a_single_huge_line_is_split_without_losing_characters():
    text = "y" * 7000
    parts = blocks.code(text)
    assert len(parts) == 3
    assert "".join(p["text"]["text"].strip("`\n") for p in parts) == text


def test_many_warnings_stay_under_fifty_blocks_per_message():
    d = Diagnosis(source="t", is_bounce=True, verdict="v",
                  warnings=tuple(f"warning {i}" for i in range(120)))
    messages = blocks.diagnosis_messages(d, {})
    assert all(len(m.blocks) <= 50 for m in messages)
    assert sum(len(m.blocks) for m in messages) >= 120


CARD = blocks.TicketView(
    id="DL-7", ip="203.0.113.44", provider="Microsoft 365", state="requested",
    age_hours=30.0, clock="since the request", expected_hours=24.0, owner="U0ALICE",
    provider_ticket_ids=("SRX1234567890ID",), next_step="Wait for the provider's answer.",
)


def test_ticket_card_golden():
    _check_golden("ticket_card", blocks.ticket_card(CARD).as_kwargs())


def test_delisted_ticket_card_golden():
    delisted = blocks.TicketView(**{**CARD.__dict__, "state": "delisted", "expected_hours": None,
                                    "next_step": "Delisted: wait for propagation, then re-check "
                                    "the IP."})
    _check_golden("ticket_card_delisted", blocks.ticket_card(delisted).as_kwargs())


def test_recheck_ping_golden():
    text = ("DL-7 (203.0.113.44 at Microsoft 365): delisted 3 h ago and the 2 h propagation "
            "window is over: re-check the IP and send a test message, then press *Verified "
            "(mail flows)* if mail flows again or *Still blocked* if it still bounces (below, "
            "or on the ticket's card).")
    ping = blocks.ping_message("U0ALICE", text, "DL-7", blocks.RECHECK_CONTROLS)
    _check_golden("ping_recheck", ping.as_kwargs())


def test_closed_ticket_card_has_no_buttons():
    closed = blocks.ticket_card(blocks.TicketView(**{**CARD.__dict__, "state": "closed",
                                                     "active": False}))
    assert not [b for b in closed.blocks if b["type"] == "actions"]


def _controls(state: str) -> list[Any]:
    card = blocks.ticket_card(blocks.TicketView(**{**CARD.__dict__, "state": state}))
    return [e for b in card.blocks if b["type"] == "actions" for e in b["elements"]]


@pytest.mark.parametrize(("state", "offered"), [
    ("open", ["request_sent", "delisted", "snooze", "close"]),
    ("requested", ["delisted", "escalated", "snooze", "close"]),
    ("acknowledged", ["delisted", "escalated", "snooze", "close"]),
    ("escalated", ["delisted", "snooze", "close"]),
    ("refused", ["request_sent", "delisted", "escalated", "snooze", "close"]),
    ("delisted", ["verified", "reopen", "snooze", "close"]),
    ("verified", ["reopen", "close"]),
])
def test_a_card_offers_the_moves_its_state_allows_under_the_contract_action_ids(state, offered):
    buttons = _controls(state)
    assert [b["action_id"] for b in buttons] == offered
    assert {b["value"] for b in buttons if b["type"] == "button"} == {"DL-7"}


def test_every_button_a_card_offers_is_a_move_the_lifecycle_accepts():
    from bot.core.tickets import TRANSITIONS, State

    for state in State:
        for action_id in blocks.card_controls(state):
            target = TRANSITIONS[blocks.CARD_MOVES[action_id]].get(state)
            assert target is not None, (state, action_id)


def test_after_delisting_the_card_asks_whether_mail_flows():
    labels = {b["action_id"]: b["text"]["text"] for b in _controls("delisted")
              if b["type"] == "button"}
    assert labels == {"verified": "Verified (mail flows)", "reopen": "Still blocked",
                      "close": "Close"}
    assert "request_sent" not in json.dumps(_controls("delisted"))


def test_the_recheck_ping_carries_the_two_buttons_for_its_ticket():
    ping = blocks.ping_message("U0ALICE", "DL-7: the window is over", "DL-7",
                               blocks.RECHECK_CONTROLS)
    (row,) = [b for b in ping.blocks if b["type"] == "actions"]
    assert [(e["action_id"], e["text"]["text"], e["value"]) for e in row["elements"]] == [
        ("verified", "Verified (mail flows)", "DL-7"), ("reopen", "Still blocked", "DL-7")]
    assert not [b for b in blocks.ping_message("U0ALICE", "x", "DL-7").blocks
                if b["type"] == "actions"]


def test_snooze_offers_a_choice_of_durations_each_naming_the_ticket():
    card = blocks.ticket_card(CARD)
    (menu,) = [e for b in card.blocks if b["type"] == "actions" for e in b["elements"]
               if e["action_id"] == "snooze"]
    assert menu["type"] == "static_select"
    choices = {o["text"]["text"]: o["value"] for o in menu["options"]}
    assert choices == {"4 hours": "DL-7|4h", "1 day": "DL-7|1d", "3 days": "DL-7|3d",
                       "1 week": "DL-7|7d"}


def test_home_with_tickets_golden():
    young = blocks.TicketView(**{**CARD.__dict__, "id": "DL-8", "age_hours": 0.5,
                                 "state": "open", "clock": "since opened"})
    _check_golden("home_tickets", blocks.home_view([CARD, young]))


def test_ping_mentions_the_owner_and_nobody_else():
    ping = blocks.ping_message("U0ALICE", "DL-7 overdue <!channel> <@U0BOSS>")
    assert ping.text.startswith("<@U0ALICE> ")
    assert "<!channel>" not in ping.text and "<@U0BOSS>" not in ping.text
    assert blocks.ping_message("not-a-user-id <!here>", "x").text == "x"


@pytest.mark.parametrize("count", [1000, 5000])
def test_app_home_stays_within_a_hundred_blocks_and_says_what_it_left_out(count):
    many = [blocks.TicketView(**{**CARD.__dict__, "id": f"DL-{i}"}) for i in range(count)]
    view = blocks.home_view(many)
    assert len(view["blocks"]) <= 100
    text = json.dumps(view)
    listed = sum(f"*DL-{i}*" in text for i in range(count))
    if listed < count:
        assert f"and {count - listed} newer ticket(s)" in text
    assert "*DL-0*" in text  # the oldest always shows

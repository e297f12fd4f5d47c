"""Provider replies: the seed's real Microsoft mails, Outlook.com's documented phrases, and the
traps (conditional refusals, hedged phrases, quoted requests, text that says nothing)."""

from __future__ import annotations

import pytest

from bot.core.replies import Reply, ReplyKind, classify, ips, own_text
from tests.test_tickets_kit import KB, seed

MARKERS = {p.id: p.replies for p in KB.providers.values()}


def read(text: str) -> Reply:
    return classify(text, MARKERS)


def test_the_seed_auto_reply_is_an_acknowledgement_with_its_srx_ticket_id() -> None:
    reply = read(seed("microsoft-autoreply.txt"))
    assert reply.kind is ReplyKind.ACK
    assert reply.ticket_ids == ("SRX1234567890ID",)
    assert "microsoft_eop" in reply.providers


def test_the_seed_confirmation_is_a_delisting_of_the_ip() -> None:
    reply = read(seed("microsoft-delisted.txt"))
    assert reply.kind is ReplyKind.RESOLVED
    # Its subject says SRX1234567890ID and its body "ticket number [1234567890]": one ticket.
    assert reply.ticket_ids == ("SRX1234567890ID",)
    assert reply.ips == ("11.22.33.44",)
    assert reply.matched == ("removed from our block lists",)


def test_the_seed_request_and_bounce_are_not_replies() -> None:
    assert read(seed("delist-request-as-sent.txt")).kind is ReplyKind.UNKNOWN
    assert read(seed("qmail-microsoft-blocklist1.txt")).kind is ReplyKind.UNKNOWN


OUTLOOK = "Subject: SRX9876543210ID - Reported deliverability problem to Outlook.com\n\nHello,\n\n"


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        (
            "Thank you for contacting the Outlook.com Deliverability Support Team."
            " Your ticket number is in the subject line.",
            ReplyKind.ACK,
        ),
        (
            "We have completed reviewing the IP(s) you submitted."
            " 203.0.113.5 Conditionally mitigated."
            " Please note that mitigation may take 24 - 48 hours to replicate.",
            ReplyKind.RESOLVED,
        ),
        (
            "After reviewing, 203.0.113.5 is Not qualified for mitigation at this time.",
            ReplyKind.REFUSED,
        ),
        (
            "I will work with the Outlook.com Deliverability Support Team"
            " along with the Escalations Team to look into this.",
            ReplyKind.ESCALATED,
        ),
    ],
)
def test_outlook_com_replies_by_their_documented_phrases(body: str, kind: ReplyKind) -> None:
    reply = read(OUTLOOK + body)
    assert reply.kind is kind
    assert reply.ticket_ids == ("SRX9876543210ID",)


def test_microsoft_request_id_is_captured() -> None:
    reply = read("Thank you for your delisting request.\nMicrosoft Request ID: 123456789012\n")
    assert (reply.kind, reply.ticket_ids) == (ReplyKind.ACK, ("123456789012",))


def test_a_verification_mail_asks_for_a_click_and_is_not_an_acknowledgement() -> None:
    text = (
        "Subject: Microsoft Office 365 Delisting Service\n\nPlease click the link below to"
        " confirm your delist request for 203.0.113.5."
    )
    assert read(text).kind is ReplyKind.VERIFICATION


@pytest.mark.parametrize(
    ("text", "kind", "ids"),
    [
        (
            "Hello, SBL123456 has been removed. Regards, Spamhaus",
            ReplyKind.RESOLVED,
            ("SBL123456",),
        ),
        (
            "Case #4455667: we have received your request and it is under review.",
            ReplyKind.ACK,
            ("4455667",),
        ),
        (
            "[ref:_00D1x._5001x:ref] We are unable to remove the IP at this time.",
            ReplyKind.REFUSED,
            ("[ref:_00D1x._5001x:ref]",),
        ),
        (
            "Request #1234567: your case has been escalated to our review team.",
            ReplyKind.ESCALATED,
            ("#1234567",),
        ),
    ],
)
def test_generic_markers_and_ticket_ids_speak_for_undocumented_providers(
    text: str, kind: ReplyKind, ids: tuple[str, ...]
) -> None:
    reply = read(text)
    assert (reply.kind, reply.ticket_ids) == (kind, ids)


def test_a_refusal_in_a_conditional_sentence_is_not_a_refusal() -> None:
    text = (
        "We will investigate the IP. If for any reason we are not able to remove your IP"
        " address, a representative will contact you."
    )
    assert read(text).kind is ReplyKind.ACK


def test_a_delisting_that_is_only_requested_or_promised_is_not_a_delisting() -> None:
    assert read("The IP you requested to be removed from our blocklist.").kind is ReplyKind.UNKNOWN
    assert read("Your IP will be delisted after review.").kind is not ReplyKind.RESOLVED


def test_phrases_quoted_from_our_own_request_do_not_count() -> None:
    text = (
        "Thanks, noted.\n\n> Please confirm the IP has been removed from your list.\n"
        "> 203.0.113.5\n"
    )
    reply = read(text)
    assert reply.kind is ReplyKind.UNKNOWN and reply.ips == ()
    forwarded = "FYI\n\n-----Original Message-----\nYour IP has been delisted.\n"
    assert own_text(forwarded).strip() == "FYI"


def test_a_reply_that_says_two_outcomes_at_once_decides_nothing() -> None:
    reply = read("203.0.113.5 has been removed. 198.51.100.7 cannot be delisted.")
    assert reply.kind is ReplyKind.UNKNOWN and "delisted and refused" in reply.why


def test_text_without_any_marker_is_unknown_and_says_why() -> None:
    reply = read("Hi, can you call me tomorrow about the invoice?")
    assert (reply.kind, reply.recognised) == (ReplyKind.UNKNOWN, False)
    assert "no acknowledgement" in reply.why


def test_ip_addresses_are_found_valid_and_once() -> None:
    assert ips(
        "from 11.22.33.44 and [11.22.33.44], not 999.1.1.1 or 1.2.3.4.5, v6 2001:db8::25"
    ) == (
        "11.22.33.44",
        "2001:db8::25",
    )


@pytest.mark.parametrize("body", [
    "Your case #12345678 has been created and an engineer will investigate the IP address "
    "11.22.33.44. We aim to respond within 24 hours.",
    "Hello, this is an automatic answer: your request was received. A support specialist will "
    "get back to you within two business days.",
    "Ticket 4471-XZ was logged for 198.51.100.7; we will reply within 48 hours.",
])
def test_a_help_desk_auto_reply_in_other_words_is_an_acknowledgement(body: str) -> None:
    assert classify(body, MARKERS).kind is ReplyKind.ACK


def test_a_promise_to_answer_is_not_mistaken_for_the_answer() -> None:
    reply = classify("Our analysts will review the listing of 11.22.33.44 and reply within "
                     "24 hours to tell you whether it can be removed.", MARKERS)
    assert reply.kind is ReplyKind.ACK

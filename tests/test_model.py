"""The engine's values stay frozen dataclasses, however their __init__ is built."""

from __future__ import annotations

import dataclasses

import pytest

from bot.core.model import NO_ROUTE, Bounce, Diagnosis, Reason, Recipient, RecipientRecord


def test_values_refuse_assignment_and_deletion() -> None:
    record = RecipientRecord("user@example.org", diagnostic="550 5.7.1 blocked")
    with pytest.raises(dataclasses.FrozenInstanceError):
        record.diagnostic = "250 ok"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        del record.address  # type: ignore[misc]
    assert record.diagnostic == "550 5.7.1 blocked"


def test_defaults_and_factories_are_those_the_fields_declare() -> None:
    first = Diagnosis(source="a", is_bounce=True)
    second = Diagnosis("b", False)
    assert first.delist is NO_ROUTE and first.warnings == () and first.verdict == ""
    assert first.extra == {} and first.extra is not second.extra  # a new dict for each value
    bounce = Bounce("mbox", "postfix")
    assert bounce.recipients == () and bounce.is_bounce and bounce.text == ""


def test_equal_values_compare_and_hash_alike_and_replace_keeps_the_rest() -> None:
    one = Recipient("u@example.org", "5.1.1", "550", Reason.USERUNKNOWN, None, "no such user")
    two = Recipient(address="u@example.org", status="5.1.1", reply_code="550",
                    reason=Reason.USERUNKNOWN, remote_mta=None, diagnostic="no such user")
    assert one == two and hash(one) == hash(two)
    moved = dataclasses.replace(one, reason=Reason.HASMOVED)
    assert moved.reason is Reason.HASMOVED and moved.diagnostic == "no such user" and moved != one
    with pytest.raises(TypeError):
        Recipient("u@example.org")  # type: ignore[call-arg]

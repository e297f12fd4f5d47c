"""Every knowledge row's own example is decided by that row, and shadowed by none before it."""

from __future__ import annotations

import pytest

from bot.core import engine
from bot.core.bounce.text import find_reply
from bot.core.knowledge import load
from bot.core.model import RecipientRecord

KB = load()


@pytest.mark.parametrize("rule", KB.rules, ids=lambda r: r.id)
def test_rule_example_is_decided_by_its_own_rule(rule):
    assert engine.match_rule(KB, rule.example, rule.example_status) is rule


@pytest.mark.parametrize("phrase", [p for p in KB.phrases if p.example], ids=lambda p: p.id)
def test_phrase_example_gets_its_reason(phrase):
    reply = find_reply(phrase.example)  # as a reader would record it: the codes the text carries
    record = RecipientRecord(address="user@example.org", diagnostic=phrase.example, status=reply.status,
                             reply_code=reply.reply_code)
    bounce = engine.Bounce(source="t", format=None, recipients=(record,))
    if engine.match_rule(KB, phrase.example, None):
        pytest.skip("a provider rule decides this example first")
    reason, _ = engine.classify(KB, record, bounce)
    assert reason is phrase.reason


def test_every_rule_route_and_provider_reference_resolves():
    for rule in KB.rules:
        acting = rule.blocklist if rule.blocklist not in (None, "?") else rule.receiver
        if rule.route:
            assert rule.route in KB.providers[acting].routes


def test_every_provider_has_a_source_and_a_default_route():
    for provider in KB.providers.values():
        assert provider.source
        assert provider.route.template

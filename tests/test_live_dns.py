"""Live DNS: two public facts, asked through public resolvers. Opt-in, never in `make test`:

    .venv/bin/pytest -m live                      # resolvers 1.1.1.1 and 8.8.8.8
    DELISTBOT_LIVE_NAMESERVERS=9.9.9.9 .venv/bin/pytest -m live

They reach the internet, so the default run deselects them (pyproject.toml: -m "not live").
"""

from __future__ import annotations

import asyncio
import os

import pytest

from bot.adapters.dns import DnsResolver
from bot.config import _nameservers
from bot.core import dnsbl, knowledge
from bot.core.dnsbl import ListingStatus
from bot.core.ports import DnsStatus
from bot.service.evidence import EvidenceService

pytestmark = pytest.mark.live

KNOW = knowledge.load()
ZONES = dnsbl.load_zones(KNOW.providers)


def service() -> EvidenceService:
    servers = _nameservers(os.environ.get("DELISTBOT_LIVE_NAMESERVERS", "1.1.1.1,8.8.8.8"))
    svc = EvidenceService(KNOW, ZONES, DnsResolver(servers, timeout=4.0), {}, deadline=10.0)
    probe = asyncio.run(svc.resolver.query("example.com", "A"))
    if probe.status is not DnsStatus.OK:  # a sandbox, a captive or filtering network
        pytest.skip(f"no working public DNS here: example.com A answered {probe.status} "
                    f"through {', '.join(f'{h}:{p}' for h, p in servers)}")
    return svc


def test_gmail_mx_maps_to_google_gmail():
    mx = asyncio.run(service().mx("gmail.com"))
    assert mx["status"] == "ok" and mx["hosts"], mx
    assert mx["provider"] == "google_gmail", mx


def test_spamhaus_answers_a_public_resolver_with_an_error_code_which_is_unknown():
    """Spamhaus refuses queries through public resolvers with 127.255.255.254 (or .255 when
    over quota), even for its own always-listed test point: never "listed", never "clean"."""
    svc = service()
    zen = next(z for z in ZONES if z.zone == "zen.spamhaus.org")
    planned = next(p for p in dnsbl.plan([zen], dnsbl.parse_target("8.8.8.8").ip, {}).queries)
    answer = asyncio.run(svc.resolver.query(planned.test_listed or "", "A"))
    listing = dnsbl.interpret(zen, answer)
    assert listing.status is ListingStatus.UNKNOWN, listing
    assert listing.code in zen.errors, listing

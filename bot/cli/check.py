"""`delistbot check IP|NETWORK ... [--json]`: are these IPs on a block list right now?

One IP gives the full answer per list; several IPs, or a network (a.b.c.d/nn, at most 256
addresses), are checked at once and answered IP by IP, in full for those listed or unknown.

Exit codes (bot/cli/__init__.py): 0 not listed anywhere (or a non-public address: nothing to
ask), 1 listed on at least one list, 2 an argument is not an IP address or a network of at most
256 addresses (then nothing is asked), or a setting is wrong.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from typing import TYPE_CHECKING, Any

from bot.cli import EXIT_ATTENTION, EXIT_OK, EXIT_USAGE
from bot.config import Settings, load_settings
from bot.core import dnsbl, knowledge
from bot.core.dnsbl import Listing, ListingStatus
from bot.core.knowledge import Knowledge
from bot.core.model import Diagnosis

if TYPE_CHECKING:  # dnspython and asyncio load only when DNS is asked (not for diagnose --no-dns)
    from bot.service.evidence import CheckResult, Evidence, EvidenceService


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "check", help="look IPs up in every current DNS block list",
        description="Look IPv4 or IPv6 addresses (or a network of up to 256) up in every "
                    "current DNS block list and say, per list, listed (and why), not listed, "
                    "or unknown.")
    parser.add_argument("ip", nargs="+", metavar="IP",
                        help="a sending IP address, or a network a.b.c.d/nn of at most 256 "
                             "addresses (an IPv4 /24, an IPv6 /120); several may be given")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    parser.set_defaults(func=run)


def build_service(settings: Settings, know: Knowledge | None = None) -> EvidenceService:
    """Wire the dnspython resolver and the knowledge into the evidence use cases."""
    from bot.adapters.dns import DnsResolver
    from bot.service.evidence import EvidenceService

    know = know or knowledge.load()
    resolver = DnsResolver(settings.nameservers, timeout=settings.dns_timeout,
                           concurrency=settings.dns_concurrency)
    keys = {"dqs": settings.dqs_key, "abusix": settings.abusix_key}
    return EvidenceService(know, dnsbl.load_zones(know.providers), resolver, keys,
                           deadline=settings.dns_deadline)


def run(args: argparse.Namespace) -> int:
    import asyncio

    if len(args.ip) > 1 or "/" in args.ip[0]:
        return run_several(args)
    service = build_service(load_settings())
    result = asyncio.run(service.check_ip(args.ip[0]))
    if args.json:
        print(json.dumps(result.to_json(), indent=2, ensure_ascii=False))
    elif result.problem:
        print(f"delistbot check: {result.problem}", file=sys.stderr)
    else:
        print("\n".join(render_check(result, service.knowledge)))
    if result.problem:
        return EXIT_USAGE
    return EXIT_ATTENTION if result.with_status(ListingStatus.LISTED) else EXIT_OK


def run_several(args: argparse.Namespace) -> int:
    """Several IPs or networks: every address asked at once, one answer per address."""
    import asyncio

    addresses: list[str] = []
    problems: list[str] = []
    for text in args.ip:
        found, problem = dnsbl.parse_sweep(text) if "/" in text else ([text], None)
        problem = problem or next(filter(None, (dnsbl.parse_target(a).problem for a in found)),
                                  None)
        if problem:
            problems.append(problem)
        addresses += found
    if problems:
        for problem in problems:
            print(f"delistbot check: {problem}", file=sys.stderr)
        return EXIT_USAGE
    service = build_service(load_settings())
    results = asyncio.run(service.check_ips(addresses))
    listed = [r for r in results if r.with_status(ListingStatus.LISTED)]
    if args.json:
        print(json.dumps(several_json(args.ip, results), indent=2, ensure_ascii=False))
    else:
        print("\n".join(render_several(results, service.knowledge)))
    return EXIT_ATTENTION if listed else EXIT_OK


def several_json(queries: list[str], results: list[CheckResult]) -> dict[str, Any]:
    return {
        "queries": queries,
        "addresses": len(results),
        "listed": sum(1 for r in results if r.with_status(ListingStatus.LISTED)),
        "unknown": sum(1 for r in results if r.with_status(ListingStatus.UNKNOWN)),
        "private": sum(1 for r in results if r.private),
        "checks": [r.to_json() for r in results],
        "seconds": round(max((r.seconds for r in results), default=0.0), 3),
    }


def render_several(results: list[CheckResult], know: Knowledge) -> list[str]:
    """A summary line, then the full answer for each address listed or with unknown answers."""
    summary = several_json([], results)
    lists = max((len(r.listings) for r in results), default=0)
    lines = [f"{summary['addresses']} addresses checked against {lists} lists: "
             f"{summary['listed']} listed, {summary['unknown']} with unknown answers, "
             f"{summary['private']} not public (nothing asked) ({summary['seconds']:.2f} s)"]
    shown = [r for r in results if r.with_status(ListingStatus.LISTED)
             or r.with_status(ListingStatus.UNKNOWN)]
    for result in shown:
        lines += ["", *render_check(dataclasses.replace(result, notes=()), know)]
    private = [r.private for r in results if r.private]
    if private:
        lines += ["", "NOT PUBLIC (nothing asked)", *(f"  {why}" for why in private)]
    clean = len(results) - len(shown) - summary["private"]
    if shown and clean:
        lines += ["", f"The other {clean} addresses are not listed anywhere."]
    notes = next((r.notes for r in results if r.notes), ())
    for note in notes:
        lines += ["", f"Note: {note}"]
    return lines


def with_dns(service: EvidenceService, diagnosis: Diagnosis) -> tuple[Diagnosis, Evidence]:
    """The diagnosis enriched with DNS evidence (for `diagnose`)."""
    import asyncio

    from bot.service.evidence import enrich

    evidence = asyncio.run(service.gather(diagnosis))
    return enrich(diagnosis, evidence), evidence


def render_check(result: CheckResult, know: Knowledge) -> list[str]:
    """The human answer: listed lists first (with how to get off), then unknown, then the rest."""
    if result.private:
        return [result.private]
    listed = result.with_status(ListingStatus.LISTED)
    unknown = result.with_status(ListingStatus.UNKNOWN)
    clean = result.with_status(ListingStatus.NOT_LISTED)
    lines = [f"{result.ip}: listed on {len(listed)} of {len(result.listings)} lists asked, "
             f"{len(unknown)} unknown, {len(clean)} not listed ({result.seconds:.2f} s)"]
    if listed:
        lines += ["", "LISTED"] + [line for x in listed for line in _listed(x, know)]
    if unknown:
        lines += ["", "UNKNOWN (neither listed nor clean: the list could not be trusted now)"]
        lines += [f"  {x.list} ({x.zone}){_code(x)}: {_unknown_text(x)}" for x in unknown]
    if clean:
        lines += ["", "NOT LISTED", "  " + ", ".join(x.list for x in clean)]
    if result.skipped:
        lines += ["", "NOT ASKED"] + [f"  {s.list} ({s.zone}): {s.why}" for s in result.skipped]
    for note in result.notes:
        lines += ["", f"Note: {note}"]
    return lines


def _code(x: Listing) -> str:
    return f" {x.code}" if x.code else ""


def _unknown_text(x: Listing) -> str:
    return "; ".join(filter(None, [x.meaning, x.detail]))


def _listed(x: Listing, know: Knowledge) -> list[str]:
    lines = [f"  {x.list} ({x.zone}) {x.code}: {x.meaning}"]
    if x.detail:
        lines.append(f"      reason: {x.detail}")
    provider = know.providers.get(x.provider)
    if provider:
        route = provider.route
        where = route.url or route.address or ""
        lines.append(f"      delist: {route.method}{' — ' + where if where else ''}")
    return lines


def render_evidence(evidence: Evidence, know: Knowledge) -> list[str]:
    """DNS evidence for the human output of `diagnose`."""
    lines = ["DNS evidence:"]
    if evidence.check is not None:
        lines += ["  " + line if line else "" for line in render_check(evidence.check, know)]
    if evidence.mx is not None:
        mx = evidence.mx
        hosts = ", ".join(mx["hosts"][:3]) or f"none ({mx['status']})"
        provider = mx["provider"] or "no known provider"
        lines.append(f"  MX of {mx['domain']}: {hosts} -> {provider}")
    if evidence.ptr is not None:
        names = ", ".join(evidence.ptr) or "none"
        confirmed = {True: "forward-confirmed", False: "NOT forward-confirmed",
                     None: "not verified"}[evidence.fcrdns]
        lines.append(f"  reverse DNS: {names} ({confirmed})")
    if evidence.spf is not None:
        s = evidence.spf
        lines.append(f"  SPF of {s.domain}: {s.result}"
                     + (f" (matched {s.matched})" if s.matched else "")
                     + (f": {s.detail}" if s.detail else ""))
    if evidence.dmarc is not None:
        d = evidence.dmarc
        at = f" (at {d.found_at})" if d.found_at and d.found_at != d.domain else ""
        lines.append(f"  DMARC of {d.domain}: {d.policy or d.status}{at}"
                     + (f": {d.detail}" if d.detail else ""))
    lines += [f"  note: {n}" for n in evidence.notes]
    if len(lines) == 1:
        lines.append("  nothing to look up: the bounce names no sending IP and no domain")
    return lines

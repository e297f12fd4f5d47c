"""Ticket commands: the whole delisting loop from a shell.

  delistbot open PATH|-            diagnose a bounce and open a ticket (prints its id, e.g. DL-42);
                                   an IP and list with a ticket not yet closed prints that id
  delistbot sent ID                the request went out: the clock starts
  delistbot update ID PATH|-       feed a provider reply (auto-reply, confirmation, refusal)
  delistbot verified|close|reopen|escalate ID, delistbot snooze ID DURATION
  delistbot ticket ID [--json], delistbot tickets [--all] [--json]
  delistbot draft ID [--fixed TEXT]
  delistbot due [--at TIME] [--json]   exit 0 when nothing is due, 1 when something is
  delistbot recheck [ID] [--json]  DNS look-ups of tickets on DNS lists: a waiting ticket no longer
                                   listed is delisted, a delisted one past its propagation window
                                   verified or still blocked (exit 1 when one is still blocked)

Exit codes follow bot.cli: 3 when the input is not a bounce (or, for update, not a recognisable
reply: it is kept as a note), 4 when it cannot be read, 5 for an unknown ticket or a refused move.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.cli import (
    EXIT_ATTENTION,
    EXIT_NOT_BOUNCE,
    EXIT_OK,
    EXIT_REFUSED,
    EXIT_UNREADABLE,
    EXIT_USAGE,
)
from bot.config import load_settings, parse_duration
from bot.core.errors import ConfigError, DelistbotError
from bot.core.tickets import IllegalMove, PingKind, Ticket

if TYPE_CHECKING:  # SQLite and Jinja2 load only when a ticket command runs
    from bot.adapters.store import OutboxRow
    from bot.service.tickets import TicketService

Handler = Callable[["TicketService", argparse.Namespace], int]


class Unreadable(DelistbotError):
    pass


def read_input(path: str) -> bytes:
    """The bytes of PATH, or of stdin for '-'; Unreadable when missing, empty or binary."""
    try:
        data = sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()
    except OSError as exc:
        raise Unreadable(f"cannot read {path}: {exc.strerror or exc}") from None
    if not data.strip():
        raise Unreadable(f"{'standard input' if path == '-' else path} is empty")
    if b"\x00" in data[:65536]:
        raise Unreadable(f"{path} looks binary (NUL bytes), not a mail")
    return data


def utc_now() -> datetime:
    from bot.service import tickets

    return tickets.utc_now()


def reply_text(data: bytes) -> str:
    from bot.service import tickets

    return tickets.reply_text(data)


def _err(message: str) -> None:
    print(f"delistbot: {message}", file=sys.stderr)


def _run(handler: Handler) -> Callable[[argparse.Namespace], int]:
    """Build the service, run the handler, turn expected failures into exit codes."""

    def run(args: argparse.Namespace) -> int:
        from bot.service.tickets import NotFound, build

        try:
            service = build(load_settings())
        except ConfigError:
            raise  # bot.__main__ reports settings errors with exit 2
        except DelistbotError as exc:
            _err(str(exc))
            return EXIT_USAGE
        try:
            return handler(service, args)
        except Unreadable as exc:
            _err(str(exc))
            return EXIT_UNREADABLE
        except (NotFound, IllegalMove) as exc:
            _err(str(exc))
            return EXIT_REFUSED
        except DelistbotError as exc:  # a broken install or database: say what, no traceback
            _err(str(exc))
            return EXIT_USAGE
        finally:
            service.store.close()

    return run


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else "-"


def _line(service: TicketService, ticket: Ticket) -> str:
    plan = service.schedule(ticket)
    nxt = ""
    if plan.recheck_at:
        nxt = f"re-check {_when(plan.recheck_at)}"
    elif plan.overdue_at and plan.reminder_at:
        nxt = f"reminder {_when(plan.reminder_at)}, overdue {_when(plan.overdue_at)}"
    ids = f" [{', '.join(ticket.provider_ticket_ids)}]" if ticket.provider_ticket_ids else ""
    where = _name(service, ticket)
    return f"{ticket.id:<7} {ticket.state:<12} {ticket.ip:<16} {where}{ids}  {nxt}".rstrip()


def _name(service: TicketService, ticket: Ticket) -> str:
    acting = service.provider(ticket.provider)
    return acting.name if acting else ticket.provider or "an unknown list"


# ---------------------------------------------------------------- handlers


def cmd_open(service: TicketService, args: argparse.Namespace) -> int:
    data = read_input(args.path)
    outcomes = service.open_from_bounce(data, args.path, utc_now())
    code = EXIT_OK
    for outcome in outcomes:
        if outcome.ticket is None:
            _err(f"{outcome.diagnosis.source}: no ticket: {outcome.problem}")
            not_bounce = not outcome.diagnosis.is_bounce
            code = max(code, EXIT_NOT_BOUNCE if not_bounce else EXIT_ATTENTION)
            continue
        ticket = outcome.ticket
        verb = "opened" if outcome.created else "already open; bounce added as evidence to"
        print(ticket.id)
        print(
            f"{verb} {ticket.id}: {ticket.ip} at {_name(service, ticket)}"
            f" — {outcome.diagnosis.summary}",
            file=sys.stderr,
        )
    if not outcomes:
        _err(f"{args.path}: no message found")
        return EXIT_NOT_BOUNCE
    return code


def cmd_sent(service: TicketService, args: argparse.Namespace) -> int:
    ticket = service.mark_sent(args.id, utc_now())
    plan = service.schedule(ticket)
    print(
        f"{ticket.id}: requested; reminder {_when(plan.reminder_at)},"
        f" overdue {_when(plan.overdue_at)}"
    )
    return EXIT_OK


def cmd_update(service: TicketService, args: argparse.Namespace) -> int:
    service.get(args.id)  # unknown id: exit 5 before reading stdin
    text = reply_text(read_input(args.path))
    applied = service.apply_reply(text, utc_now(), ref=args.id)
    if applied.refused:
        _err(applied.message)
        return EXIT_REFUSED
    if not applied.reply.recognised:
        _err(applied.message)
        return EXIT_NOT_BOUNCE
    ids = (
        f" (provider ticket {', '.join(applied.reply.ticket_ids)})"
        if applied.reply.ticket_ids
        else ""
    )
    print(applied.message + ids)
    return EXIT_OK


def _simple(method: str, past: str) -> Handler:
    def handler(service: TicketService, args: argparse.Namespace) -> int:
        ticket = getattr(service, method)(args.id, utc_now(), note=args.note)
        print(f"{ticket.id}: {past}")
        return EXIT_OK

    return handler


def cmd_snooze(service: TicketService, args: argparse.Namespace) -> int:
    now = utc_now()
    until = now + timedelta(seconds=parse_duration(args.duration, "duration"))
    ticket = service.snooze(args.id, until, now)
    print(f"{ticket.id}: no pings before {_when(ticket.snoozed_until)}")
    return EXIT_OK


def cmd_ticket(service: TicketService, args: argparse.Namespace) -> int:
    ticket = service.get(args.id)
    if args.json:
        out = service.to_json(ticket)
        out["events"] = service.store.events(ticket.number or 0)
        out["pings"] = [row.to_json() for row in service.store.pings(ticket.number or 0)]
        print(json.dumps(out, indent=2, ensure_ascii=False))
        return EXIT_OK
    data = service.to_json(ticket)
    for key in (
        "id",
        "state",
        "ip",
        "receiver",
        "blocklist",
        "reason",
        "evidence",
        "provider_ticket_ids",
        "opened_at",
        "requested_at",
        "acknowledged_at",
        "delisted_at",
        "verified_at",
        "closed_at",
        "reminder_at",
        "overdue_at",
        "recheck_at",
    ):
        value = data[key]
        if value not in (None, []):
            print(f"{key:<20} {', '.join(value) if isinstance(value, list) else value}")
    exp = data["expected"]
    learned = (
        f"team median {exp['learned_median_hours']:.1f} h, p90 {exp['learned_p90_hours']:.1f} h"
        f" over {exp['learned_count']} tickets"
        if exp["learned_count"]
        else "no closed tickets yet"
    )
    published = f"published {exp['published_hours']} h ({exp['published_basis']})"
    print(f"{'expected':<20} {published}; {learned}")
    print("events:")
    for event in service.store.events(ticket.number or 0):
        text = (event["text"] or "").strip().splitlines()
        first = f" — {text[0][:80]}" if text else ""
        print(
            f"  {event['at']}  {event['kind']:<13} {event['from_state'] or '':>12} -> "
            f"{event['to_state']:<12} {event['actor']}{first}"
        )
    pings = service.store.pings(ticket.number or 0)
    if pings:
        print("pings:")
    for row in pings:
        print(f"  {_iso(row.due_at)}  {row.kind:<13} {_delivery(row)}")
    return EXIT_OK


def _delivery(row: OutboxRow) -> str:
    if row.sent_at is not None:
        elsewhere = f" ({row.error})" if row.error else ""
        return f"sent {_iso(row.sent_at)}{elsewhere}"
    if row.error:
        return f"NOT DELIVERED: Slack refused it ({row.error})"
    return f"queued, {row.attempts} attempt(s)"


def cmd_tickets(service: TicketService, args: argparse.Namespace) -> int:
    tickets = service.tickets(active_only=not args.all)
    if args.json:
        print(json.dumps([service.to_json(t) for t in tickets], indent=2, ensure_ascii=False))
    else:
        for ticket in tickets:
            print(_line(service, ticket))
    return EXIT_OK


def cmd_draft(service: TicketService, args: argparse.Namespace) -> int:
    draft = service.draft(args.id, fixed=args.fixed)
    sys.stdout.write(draft.text)
    if draft.todo:
        _err(f"not ready to send: fill in {len(draft.todo)} item(s) marked [TODO: …]")
    return EXIT_OK


def _parse_time(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r}") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def cmd_due(service: TicketService, args: argparse.Namespace) -> int:
    now = args.at or utc_now()
    pings = service.due(now)
    # Pings Slack refused for good are listed here until their ticket is closed: none is lost
    # unseen.
    refused = {row.key: row for row in service.undelivered()}
    alone = [row for key, row in refused.items() if key not in {p.key for _, p in pings}]
    if args.json:
        entries = [
            {
                "ticket": t.id,
                "kind": str(p.kind),
                "due_at": _iso(p.due_at),
                "key": p.key,
                "text": p.text,
                "undelivered": refused[p.key].error if p.key in refused else None,
            }
            for t, p in pings
        ]
        entries += [
            {
                "ticket": row.ticket_id,
                "kind": row.kind,
                "due_at": _iso(row.due_at),
                "key": row.key,
                "text": row.text,
                "undelivered": row.error,
            }
            for row in alone
        ]
        print(json.dumps(entries, indent=2))
    else:
        dns_lists = _dns_lists(service) if any(p.kind is PingKind.RECHECK for _, p in pings) else ()
        for ticket, ping in pings:
            hint = ""
            if ping.kind is PingKind.RECHECK and ticket.list_key in dns_lists:
                hint = f" (`delistbot recheck {ticket.id}` asks the list's DNS now.)"
            if ping.key in refused:
                hint += f" [not delivered to Slack: {refused[ping.key].error}]"
            print(f"{ping.kind:<9} {ping.text}{hint}")
        for row in alone:
            print(f"{row.kind:<9} {row.text} [not delivered to Slack: {row.error}]")
    return EXIT_ATTENTION if pings or alone else EXIT_OK


def _dns_lists(service: TicketService) -> frozenset[str]:
    """The lists delistbot can ask over DNS (their operators' provider ids)."""
    from bot.core.dnsbl import load_zones

    return frozenset(z.provider for z in load_zones(service.kb.providers))


def cmd_recheck(service: TicketService, args: argparse.Namespace) -> int:
    from bot.service import recheck

    results = recheck.build(load_settings(), service).run(utc_now(), ref=args.id)
    if args.json:
        print(json.dumps([r.to_json() for r in results], indent=2, ensure_ascii=False))
    elif not results:
        print("nothing to re-check now: no ticket on a DNS list is due for a look-up")
    for result in [] if args.json else results:
        print(result.message)
    return EXIT_ATTENTION if any(r.still_blocked for r in results) else EXIT_OK


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


# ---------------------------------------------------------------- registration


def register(sub: Any) -> None:
    p = sub.add_parser("open", help="diagnose a bounce and open (or join) its ticket")
    p.add_argument("path", metavar="PATH|-")
    p.set_defaults(func=_run(cmd_open))

    p = sub.add_parser("sent", help="the delist request went out: start the clock")
    p.add_argument("id", metavar="ID")
    p.set_defaults(func=_run(cmd_sent))

    p = sub.add_parser("update", help="feed a provider reply to a ticket")
    p.add_argument("id", metavar="ID")
    p.add_argument("path", metavar="PATH|-")
    p.set_defaults(func=_run(cmd_update))

    for name, method, past, text in (
        ("verified", "verify", "verified", "a re-check shows mail flows again"),
        ("close", "close", "closed", "close a ticket"),
        ("reopen", "reopen", "reopened (a new cycle starts at `sent`)", "relisted or not fixed"),
        ("escalate", "escalate", "escalated (the wait restarts)",
         "the request went to the provider's escalation route"),
    ):
        p = sub.add_parser(name, help=text)
        p.add_argument("id", metavar="ID")
        p.add_argument("--note", help="why, for the ticket's log")
        p.set_defaults(func=_run(_simple(method, past)))

    p = sub.add_parser("snooze", help="no pings for a while (e.g. 12h, 2d)")
    p.add_argument("id", metavar="ID")
    p.add_argument("duration", metavar="DURATION")
    p.set_defaults(func=_run(cmd_snooze))

    p = sub.add_parser("ticket", help="one ticket, its due times and its log")
    p.add_argument("id", metavar="ID")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_run(cmd_ticket))

    p = sub.add_parser("tickets", help="tickets not yet closed (--all: every ticket)")
    p.add_argument("--all", action="store_true")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_run(cmd_tickets))

    p = sub.add_parser("draft", help="the delist request (or checklist) for a ticket")
    p.add_argument("id", metavar="ID")
    p.add_argument("--fixed", metavar="TEXT", help="what you fixed, for the draft")
    p.set_defaults(func=_run(cmd_draft))

    p = sub.add_parser(
        "recheck",
        help="look ticket IPs up on their DNS list now: delisted, verified or still blocked",
    )
    p.add_argument("id", metavar="ID", nargs="?", help="this ticket only, whenever last checked")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_run(cmd_recheck))

    p = sub.add_parser("due", help="reminders, overdue tickets and re-checks due now")
    p.add_argument("--at", type=_parse_time, metavar="TIME", help="as of this ISO 8601 time")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_run(cmd_due))

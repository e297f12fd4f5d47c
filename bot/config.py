"""Settings: environment variables plus an optional TOML file. No I/O at import.

Environment (secrets come only from here, never from the file):
  DELISTBOT_DB            SQLite file (default ./delistbot.db)
  DELISTBOT_CONFIG        settings file (default ./delistbot.toml when it exists)
  DELISTBOT_NAMESERVERS   comma-separated host[:port] (default: the system resolver)
  DELISTBOT_DQS_KEY       Spamhaus Data Query Service key (secret)
  DELISTBOT_ABUSIX_KEY    Abusix Mail Intelligence query key (secret; the list has no public zone)
  DELISTBOT_PORT          HTTP port for `serve --http` (default 3000)
  SLACK_BOT_TOKEN, SLACK_APP_TOKEN, SLACK_SIGNING_SECRET   (secrets)
  SLACK_API_BASE_URL      Slack Web API base (default https://slack.com/api/)

The settings file (see README) holds non-secret tuning: per-provider waits, DNS timeouts, the
contact signature used in drafts.
"""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.core.errors import ConfigError

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "": 3600}


def parse_duration(value: str | int | float, setting: str) -> float:
    """'90s', '30m', '24h', '3d' (a bare number is hours) -> seconds."""
    if isinstance(value, bool):
        raise ConfigError(f"{setting}: expected a duration like 30m, 24h or 3d, not {value!r}")
    if isinstance(value, int | float):
        return float(value) * 3600
    match = _DURATION.match(value)
    if not match:
        raise ConfigError(f"{setting}: expected a duration like 90s, 30m, 24h or 3d, not {value!r}")
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]


@dataclass(frozen=True)
class ProviderOverride:
    """Per-provider timer overrides from the settings file, in seconds."""

    reminder: float | None = None
    overdue: float | None = None
    propagation: float | None = None


@dataclass(frozen=True)
class Contact:
    """The signature drafts end with."""

    name: str = ""
    organisation: str = ""
    email: str = ""
    phone: str = ""


@dataclass(frozen=True)
class Settings:
    db_path: Path = Path("delistbot.db")
    config_path: Path | None = None
    nameservers: tuple[tuple[str, int], ...] = ()
    dqs_key: str | None = field(default=None, repr=False)
    abusix_key: str | None = field(default=None, repr=False)
    dns_timeout: float = 2.0
    dns_deadline: float = 6.0
    dns_concurrency: int = 64
    dns_recheck: float = 1800.0  # seconds between DNS re-checks of a waiting ticket's IP
    port: int = 3000
    slack_bot_token: str | None = field(default=None, repr=False)
    slack_app_token: str | None = field(default=None, repr=False)
    slack_signing_secret: str | None = field(default=None, repr=False)
    slack_api_base_url: str = "https://slack.com/api/"
    providers: Mapping[str, ProviderOverride] = field(default_factory=dict)
    contact: Contact = Contact()
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)


def _at_least(seconds: float, minimum: float, setting: str) -> float:
    if seconds < minimum:
        raise ConfigError(f"{setting}: must be at least {minimum:g} s")
    return seconds


def _nameservers(value: str) -> tuple[tuple[str, int], ...]:
    """`host[:port]` items, comma-separated (IPv6 with a port: `[::1]:53`); empty: none."""
    if not value.strip():
        return ()
    out = []
    for item in (v.strip() for v in value.split(",")):
        if not item:
            raise ConfigError(f"DELISTBOT_NAMESERVERS: an empty item in {value!r} (give "
                              "comma-separated addresses, e.g. 127.0.0.1:5353,[::1]:53)")
        host, port_text = item, "53"
        if item.startswith("["):  # [v6] or [v6]:port
            host, bracket, rest = item[1:].partition("]")
            if not bracket or (rest and not rest.startswith(":")):
                raise ConfigError(f"DELISTBOT_NAMESERVERS: {item!r} is not [address]:port")
            port_text = rest[1:] if rest else "53"
        elif item.count(":") == 1:
            host, _, port_text = item.partition(":")
        if not port_text.isdigit():
            raise ConfigError(f"DELISTBOT_NAMESERVERS: bad port in {item!r}")
        port = int(port_text)
        try:
            host = str(ipaddress.ip_address(host))
        except ValueError:
            raise ConfigError(f"DELISTBOT_NAMESERVERS: {host!r} is not an IP address (a "
                              "nameserver is given by address, e.g. 127.0.0.1:5353 or "
                              "[::1]:53)") from None
        if not 0 < port < 65536:
            raise ConfigError(f"DELISTBOT_NAMESERVERS: port {port} out of range in {item!r}")
        out.append((host, port))
    return tuple(out)


DNS_KEYS = frozenset({"timeout", "deadline", "concurrency", "recheck"})


def _dns_table(data: Mapping[str, Any]) -> Mapping[str, Any]:
    dns = data.get("dns", {})
    if not isinstance(dns, dict):
        raise ConfigError("[dns] must be a table")
    unknown = set(dns) - DNS_KEYS
    if unknown:
        raise ConfigError(f"[dns]: unknown key(s) {', '.join(sorted(unknown))} (known: "
                          f"{', '.join(sorted(DNS_KEYS))})")
    return dns


def _dns_seconds(dns: Mapping[str, Any], key: str, default: str, most: float) -> float:
    """A DNS duration: more than 0 and at most `most` seconds (a bare number means hours)."""
    seconds = parse_duration(dns.get(key, default), f"dns.{key}")
    if not 0 < seconds <= most:
        raise ConfigError(f"dns.{key}: must be more than 0 s and at most {most:g} s, not "
                          f"{seconds:g} s (a bare number means hours: write e.g. \"2s\")")
    return seconds


def _dns_concurrency(dns: Mapping[str, Any]) -> int:
    value = dns.get("concurrency", 64)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 10_000:
        raise ConfigError(f"dns.concurrency: must be a whole number from 1 to 10000, not "
                          f"{value!r}")
    return value


def _read_file(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except OSError as exc:
        raise ConfigError(f"cannot read settings file {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"settings file {path}: {exc}") from None


def _overrides(data: Any) -> dict[str, ProviderOverride]:
    if not isinstance(data, dict):
        raise ConfigError("[providers] must hold one table per provider, e.g. [providers.spamhaus]")
    out = {}
    for provider_id, values in data.items():
        if not isinstance(values, dict):
            raise ConfigError(f"[providers.{provider_id}] must be a table")
        unknown = set(values) - {"reminder", "overdue", "propagation"}
        if unknown:
            raise ConfigError(f"[providers.{provider_id}]: unknown key(s) {', '.join(sorted(unknown))}")
        out[provider_id] = ProviderOverride(
            **{k: parse_duration(v, f"providers.{provider_id}.{k}") for k, v in values.items()}
        )
    return out


def _contact(data: Any) -> Contact:
    """The [contact] table: name, organisation, email, phone, each a string."""
    if not isinstance(data, dict):
        raise ConfigError("[contact] must be a table (name, organisation, email, phone)")
    known = Contact.__dataclass_fields__
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise ConfigError(
            f"[contact]: unknown key(s) {', '.join(unknown)} (known: {', '.join(known)})"
        )
    for key, value in data.items():
        if not isinstance(value, str):
            raise ConfigError(f"contact.{key}: expected a string, not {value!r}")
    return Contact(**data)


def load_settings(env: Mapping[str, str] | None = None, cwd: Path | None = None) -> Settings:
    """Read settings from the environment and the settings file; ConfigError on a bad value."""
    env = os.environ if env is None else env
    cwd = Path.cwd() if cwd is None else cwd
    config_path: Path | None = None
    if env.get("DELISTBOT_CONFIG"):
        config_path = Path(env["DELISTBOT_CONFIG"])
    elif (cwd / "delistbot.toml").is_file():
        config_path = cwd / "delistbot.toml"
    data = _read_file(config_path) if config_path else {}
    dns = _dns_table(data)
    port_text = env.get("DELISTBOT_PORT", "3000")
    if not port_text.isdigit():
        raise ConfigError(f"DELISTBOT_PORT must be a port number, not {port_text!r}")
    return Settings(
        db_path=Path(env.get("DELISTBOT_DB") or "delistbot.db"),
        config_path=config_path,
        nameservers=_nameservers(env.get("DELISTBOT_NAMESERVERS", "")),
        dqs_key=env.get("DELISTBOT_DQS_KEY") or None,
        abusix_key=env.get("DELISTBOT_ABUSIX_KEY") or None,
        dns_timeout=_dns_seconds(dns, "timeout", "2s", 60),
        dns_deadline=_dns_seconds(dns, "deadline", "6s", 600),
        dns_concurrency=_dns_concurrency(dns),
        dns_recheck=_at_least(parse_duration(dns.get("recheck", "30m"), "dns.recheck"), 1,
                              "dns.recheck"),
        port=int(port_text),
        slack_bot_token=env.get("SLACK_BOT_TOKEN") or None,
        slack_app_token=env.get("SLACK_APP_TOKEN") or None,
        slack_signing_secret=env.get("SLACK_SIGNING_SECRET") or None,
        slack_api_base_url=env.get("SLACK_API_BASE_URL") or "https://slack.com/api/",
        providers=_overrides(data.get("providers", {})),
        contact=_contact(data.get("contact", {})),
        raw=data,
    )

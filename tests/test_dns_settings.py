"""DNS settings: `DELISTBOT_NAMESERVERS` and the `[dns]` table, read as `load_settings` reads them.

A wrong value is a ConfigError that names the setting (the CLI prints it and exits 2); it never
falls back to something the user did not write.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import load_settings
from bot.core.errors import ConfigError


@pytest.mark.parametrize(("value", "servers"), [
    ("", ()),  # unset: the system resolver's nameservers
    ("   ", ()),
    ("127.0.0.1", (("127.0.0.1", 53),)),
    ("127.0.0.1:5353", (("127.0.0.1", 5353),)),
    ("10.0.0.53, 10.0.0.54:54", (("10.0.0.53", 53), ("10.0.0.54", 54))),
    ("::1", (("::1", 53),)),
    ("[::1]", (("::1", 53),)),
    ("[2001:db8::53]:5300", (("2001:db8::53", 5300),)),
])
def test_nameservers_are_comma_separated_host_and_optional_port(
        value: str, servers: tuple[tuple[str, int], ...], tmp_path: Path) -> None:
    assert load_settings({"DELISTBOT_NAMESERVERS": value}, cwd=tmp_path).nameservers == servers


@pytest.mark.parametrize(("value", "message"), [
    ("127.0.0.1:port", "bad port in '127.0.0.1:port'"),
    ("[::1]:abc", "bad port in '[::1]:abc'"),
    ("[::1", "'[::1' is not [address]:port"),
    ("[::1]53", "'[::1]53' is not [address]:port"),
    ("127.0.0.1:0", "port 0 out of range"),
    ("127.0.0.1:70000", "port 70000 out of range"),
    ("dns.google", "'dns.google' is not an IP address"),
    ("1.2.3.4:53:53", "'1.2.3.4:53:53' is not an IP address"),
    (",,", "an empty item"),
    ("127.0.0.1,", "an empty item"),
])
def test_a_bad_nameserver_is_an_error_naming_the_setting(value: str, message: str,
                                                         tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings({"DELISTBOT_NAMESERVERS": value}, cwd=tmp_path)
    assert "DELISTBOT_NAMESERVERS" in str(err.value) and message in str(err.value)


def settings_file(tmp_path: Path, text: str) -> dict[str, str]:
    path = tmp_path / "delistbot.toml"
    path.write_text(text)
    return {"DELISTBOT_CONFIG": str(path)}


def test_dns_tuning_comes_from_the_settings_file(tmp_path: Path) -> None:
    env = settings_file(tmp_path, '[dns]\ntimeout = "0.5s"\ndeadline = "4s"\nconcurrency = 16\n')
    settings = load_settings(env, cwd=tmp_path)
    assert (settings.dns_timeout, settings.dns_deadline, settings.dns_concurrency) == (0.5, 4, 16)
    (tmp_path / "elsewhere").mkdir()
    defaults = load_settings({}, cwd=tmp_path / "elsewhere")  # no settings file
    assert (defaults.dns_timeout, defaults.dns_deadline, defaults.dns_concurrency) == (2, 6, 64)


@pytest.mark.parametrize(("text", "message"), [
    ('[dns]\nconcurrency = "abc"\n', "dns.concurrency: must be a whole number from 1 to 10000"),
    ("[dns]\nconcurrency = 0\n", "dns.concurrency"),
    ("[dns]\nconcurrency = 1.5\n", "dns.concurrency"),
    ('[dns]\ntimeout = "0s"\n', "dns.timeout: must be more than 0 s"),
    ("[dns]\ntimeout = 2\n", "not 7200 s (a bare number means hours"),
    ('[dns]\ndeadline = "0s"\n', "dns.deadline: must be more than 0 s"),
    ('[dns]\ndeadline = "1h"\n', "at most 600 s"),
    ('[dns]\ntimout = "1s"\n', "[dns]: unknown key(s) timout"),
    ("dns = 5\n", "[dns] must be a table"),
])
def test_a_bad_dns_setting_is_an_error_naming_it(text: str, message: str,
                                                 tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(settings_file(tmp_path, text), cwd=tmp_path)
    assert message in str(err.value)

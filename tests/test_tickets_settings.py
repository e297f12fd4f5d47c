"""The settings file as it tunes tickets: per-provider waits in 90s/30m/24h/3d, the draft
signature, where the file and the database are found, and typos refused by name."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from bot.config import load_settings
from bot.core.errors import ConfigError
from bot.service.tickets import build
from tests.test_tickets_kit import KB, T0, diagnosis

H = timedelta(hours=1)


def settings_file(tmp_path: Path, text: str, name: str = "delistbot.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_each_duration_unit_sets_the_providers_timers(tmp_path: Path) -> None:
    settings_file(
        tmp_path,
        '[providers.microsoft_eop]\nreminder = "90s"\noverdue = "30m"\npropagation = "3d"\n'
        '[providers.spamhaus]\noverdue = "24h"\nreminder = 2\n',  # a bare number is hours
    )
    env = {"DELISTBOT_DB": str(tmp_path / "t.db")}
    svc = build(load_settings(env, cwd=tmp_path), KB)
    svc.open_from_diagnosis(diagnosis(), "b", T0)
    ticket = svc.mark_sent("DL-1", T0)
    plan = svc.schedule(ticket)
    assert (plan.reminder_at, plan.overdue_at) == (T0 + timedelta(seconds=90), T0 + timedelta(minutes=30))
    svc.apply_reply("11.22.33.44 has been removed from our block lists.", T0 + H, ref="DL-1")
    assert svc.schedule(svc.get("DL-1")).recheck_at == T0 + H + 72 * H
    svc.open_from_diagnosis(diagnosis(ip="192.0.2.7", blocklist="spamhaus"), "b", T0)
    spamhaus = svc.schedule(svc.mark_sent("DL-2", T0))
    assert (spamhaus.reminder_at, spamhaus.overdue_at) == (T0 + 2 * H, T0 + 24 * H)
    svc.store.close()


def test_delistbot_config_names_the_file_and_beats_the_one_in_the_working_directory(
    tmp_path: Path,
) -> None:
    settings_file(tmp_path, '[contact]\nname = "From the working directory"\n')
    other = settings_file(tmp_path, '[contact]\nname = "From DELISTBOT_CONFIG"\n', "other.toml")
    assert load_settings({}, cwd=tmp_path).contact.name == "From the working directory"
    named = load_settings({"DELISTBOT_CONFIG": str(other)}, cwd=tmp_path)
    assert (named.contact.name, named.config_path) == ("From DELISTBOT_CONFIG", other)
    assert load_settings({}, cwd=tmp_path / "nowhere").db_path == Path("delistbot.db")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[providers.microsoft_eop]\noverdue = "two days"\n', "expected a duration like 90s"),
        ('[providers.microsoft_eop]\noverdue = "-3h"\n', "expected a duration like 90s"),
        ('[providers.microsoft_eop]\nwait = "3h"\n', "unknown key(s) wait"),
        ("providers = 3\n", "[providers] must hold one table per provider"),
        ('[contact]\nnmae = "Aiko"\n', "[contact]: unknown key(s) nmae"),
        ("[contact]\nphone = 81300000000\n", "contact.phone: expected a string"),
        ('contact = "Aiko"\n', "[contact] must be a table"),
    ],
)
def test_a_bad_value_in_the_settings_file_is_refused_by_name(
    tmp_path: Path, text: str, message: str
) -> None:
    settings_file(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_settings({}, cwd=tmp_path)
    assert message in str(err.value)


def test_a_misspelt_provider_is_refused_with_the_id_it_probably_meant(tmp_path: Path) -> None:
    path = settings_file(tmp_path, '[providers.microsft_eop]\noverdue = "3d"\n')
    settings = load_settings({"DELISTBOT_DB": str(tmp_path / "t.db")}, cwd=tmp_path)
    with pytest.raises(ConfigError) as err:
        build(settings, KB)
    assert str(err.value) == (
        f"[providers.microsft_eop] in {path}: no such provider (did you mean microsoft_eop?)"
    )
    assert not (tmp_path / "t.db").exists()  # refused before the database is touched

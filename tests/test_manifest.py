"""app-manifest.yml is what Slack reads: it must validate and agree with the code and README."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT.parent / "shared" / "reference" / "slack-manifest.schema.json"


@pytest.fixture(scope="module")
def manifest() -> dict[str, Any]:
    return dict(yaml.safe_load((ROOT / "app-manifest.yml").read_text()))


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    if not SCHEMA.is_file():
        pytest.skip(f"Slack's manifest schema is not here: {SCHEMA} (../shared is absent)")
    return dict(json.loads(SCHEMA.read_text()))


def test_manifest_validates_against_slacks_schema(manifest, schema):
    jsonschema.validate(manifest, schema)


def test_http_variant_from_the_readme_validates_too(manifest, schema):
    http = copy.deepcopy(manifest)
    url = "https://delistbot.example.com/slack/events"
    http["settings"]["socket_mode_enabled"] = False
    http["settings"]["event_subscriptions"]["request_url"] = url
    http["settings"]["interactivity"]["request_url"] = url
    http["features"]["slash_commands"][0]["url"] = url
    jsonschema.validate(http, schema)


def test_schema_rejects_what_slack_rejects(manifest, schema):
    broken = copy.deepcopy(manifest)
    broken["features"]["slash_commands"][0]["command"] = "delist"  # no leading slash
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, schema)


def test_socket_mode_is_the_default_and_needs_no_public_url(manifest):
    assert manifest["settings"]["socket_mode_enabled"] is True
    text = (ROOT / "app-manifest.yml").read_text()
    assert not re.search(r"^\s*(url|request_url):", text, re.MULTILINE)


def test_scopes_are_only_those_the_features_need(manifest):
    assert sorted(manifest["oauth_config"]["scopes"]["bot"]) == sorted(
        ["commands", "chat:write", "channels:history", "groups:history", "files:read"]
    )
    assert "user" not in manifest["oauth_config"]["scopes"]


def test_every_event_and_command_in_the_manifest_has_a_listener(manifest):
    listeners = (ROOT / "bot" / "slack" / "listeners.py").read_text()
    for command in manifest["features"]["slash_commands"]:
        assert f'app.command("{command["command"]}")' in listeners
    for event in manifest["settings"]["event_subscriptions"]["bot_events"]:
        name = event.split(".")[0]  # message.channels / message.groups -> the message event
        assert f'app.event("{name}")' in listeners, event


def test_readme_explains_the_manifest_install():
    readme = ROOT / "README.md"
    if not readme.is_file():
        pytest.fail("README.md is missing")
    text = readme.read_text()
    assert "app-manifest.yml" in text
    assert "delistbot serve" in text

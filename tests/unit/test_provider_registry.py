"""The provider registry: every entry's pieces resolve to what they claim, its static
description agrees with the provider, and the gateway asks the entry, never the name."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from providers.plugin import FormLinking, PushRequest
from providers.registry import (
    ProviderOptions,
    entries,
    get_entry,
    push_providers,
    read_extras,
    redirect_providers,
)

ROOT = Path(__file__).resolve().parents[2]
CREDENTIALS = {"google": {"refresh_token": "r", "client_id": "c", "client_secret": "s"},
               "caldav": {"server_url": "https://dav.example.com/", "username": "u",
                          "password": "p"},
               "apple": {"username": "u@example.com", "password": "p"},
               "ics": {"url": "https://example.com/feed.ics"}, "memory": {},
               "cronofy": {"application_calendar_id": "app-cal-1"}}
MICROSOFT = {"refresh_token": "r", "account_id": "o.t", "tenant": "t", "client_id": "c",
             "scopes": "Calendars.ReadWrite"}
# An Outlook.com account is one of Microsoft's consumer tenant (it has no rooms).
CREDENTIALS |= {"office365": MICROSOFT,
                "live_connect": MICROSOFT | {"tenant": "9188040d-6c67-4c5b-b112-36a304b66dad"}}
CREDENTIALS["exchange"] = {"email": "u@example.com", "password": "p"}
CREDENTIALS["exchange_hybrid"] = MICROSOFT | {
    "email": "u@example.com", "ews_url": "https://mail.example.com/EWS/Exchange.asmx",
    "scopes": "https://mail.example.com/EWS.AccessAsUser.All"}


@pytest.mark.parametrize("entry", [e for e in entries() if e.implemented], ids=lambda e: e.name)
def test_the_entry_describes_the_provider_it_opens(entry):
    provider = entry.open(CREDENTIALS[entry.name], ProviderOptions())
    assert provider.capabilities == entry.capabilities
    assert entry.capabilities.native_push == (entry.push != "none")


@pytest.mark.parametrize("entry", [e for e in entries() if e.implemented and e.linking],
                         ids=lambda e: e.name)
def test_linking_resolves_to_its_kind(entry):
    if entry.link == "redirect":
        oauth = entry.upstream_oauth(ProviderOptions())
        assert oauth.vendor and callable(oauth.authorization_url)
    else:
        assert isinstance(entry.form(), FormLinking) and entry.form().fields


def test_the_derived_lists():
    assert redirect_providers() == ("google", "office365", "live_connect", "exchange_hybrid")
    assert push_providers() == ("google", "office365", "live_connect", "exchange",
                                "exchange_hybrid")
    assert push_providers("webhook") == ("google", "office365", "live_connect")
    assert push_providers("pull") == ("exchange", "exchange_hybrid")


def test_an_upstream_that_keeps_its_grant_says_where_to_remove_it():
    """Graph cannot revoke a delegated grant: each Microsoft entry declares where its kind
    of account removes the app; Exchange holds no grant and says nothing is revoked there;
    providers whose grant Calgate gives back declare nothing."""
    assert "https://myapps.microsoft.com" in get_entry("office365").remove_access_note()
    assert "https://account.live.com/consent/Manage" in \
        get_entry("live_connect").remove_access_note()
    assert "nothing is changed on your Exchange server" in \
        get_entry("exchange").remove_access_note()
    assert get_entry("exchange_hybrid").remove_access_note() == \
        get_entry("office365").remove_access_note()  # Microsoft keeps that grant
    assert {e.name for e in entries() if e.remove_access_note()} == {
        "office365", "live_connect", "exchange", "exchange_hybrid"}


def test_a_push_parser_and_a_meeting_recogniser_come_from_the_entry():
    google = get_entry("google")
    parse = google.parse_push()
    assert parse is not None
    receipt = parse(PushRequest({"x-goog-channel-id": "ch", "x-goog-channel-token": "t",
                                 "x-goog-resource-state": "exists"}, b""))
    assert [(n.channel_id, n.token, n.state) for n in receipt.notices] == [("ch", "t", "exists")]
    assert parse(PushRequest({}, b"")).notices == ()
    meet = google.recognise_meeting("https://meet.google.com/abc-defg-hij")
    assert meet is not None and meet.provider_name == "google_meet"
    assert get_entry("caldav").recognise_meeting("https://meet.google.com/x") is None


def test_typed_settings_from_the_declared_values():
    settings = get_entry("google").load_settings({"url": "http://127.0.0.1:9"})
    from providers.google.config import GoogleSettings

    assert isinstance(settings, GoogleSettings)
    assert settings.endpoints.token_uri == "http://127.0.0.1:9/token"
    assert settings.endpoints.api_endpoint == "http://127.0.0.1:9/calendar/v3/"
    assert ProviderOptions(settings={"google": settings}).settings_for(
        "google", GoogleSettings) is settings
    assert ProviderOptions().settings_for("google", GoogleSettings) == GoogleSettings()


def test_importing_the_gateway_loads_no_provider_package():
    code = ("import sys, gateway.app, gateway.cli.main; "
            "print(sorted(m for m in sys.modules if re.match(r'providers\\.(google|caldav)\\.', m)"
            " and not m.endswith(('.push', '.linking', '.config'))))")
    out = subprocess.run([sys.executable, "-c", "import re; " + code], cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_no_gateway_module_names_a_provider():
    quoted = re.compile(r'"(google|microsoft|exchange|caldav|icloud|ics)"', re.IGNORECASE)
    named = re.compile(r"google|microsoft", re.IGNORECASE)
    offenders = []
    for path in (ROOT / "gateway").rglob("*.py"):
        if path.name == "settings.py" or "migrations" in path.parts:
            continue
        text = path.read_text(encoding="utf-8")
        if quoted.search(text) or named.search(text):
            offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []


def test_graph_notifications_handshake_changes_and_lifecycle():
    parse = get_entry("office365").parse_push()
    assert parse is not None
    assert parse(PushRequest({}, b"", {"validationToken": "Validation: hi"})).reply == \
        "Validation: hi"
    body = (b'{"value": [{"subscriptionId": "s1", "clientState": "tok", "changeType": '
            b'"updated"}, {"subscriptionId": "s1", "clientState": "tok", "lifecycleEvent": '
            b'"reauthorizationRequired"}, {"subscriptionId": "s1", "clientState": "tok", '
            b'"lifecycleEvent": "missed"}, {"subscriptionId": "s2"}]}')
    receipt = parse(PushRequest({}, body, {"channel": "ch_1"}))
    assert [(n.channel_id, n.token, n.resource_id, n.state) for n in receipt.notices] == [
        ("ch_1", "tok", "s1", "exists"), ("ch_1", "tok", "s1", "renew"),
        ("ch_1", "tok", "s1", "resync")]
    assert parse(PushRequest({}, body, {})).notices == ()  # no channel: not ours
    assert parse(PushRequest({}, b"not json", {"channel": "ch_1"})).notices == ()
    teams = get_entry("live_connect").recognise_meeting(
        "https://teams.microsoft.com/l/meetup-join/19%3ameeting")
    assert teams is not None and teams.provider_name == "ms_teams"


def test_read_extras_are_declared_by_the_provider_that_has_them():
    assert [(x.flag, x.field) for x in read_extras()] == [
        ("google_event_ids", "google_event_id")]
    google, caldav = get_entry("google"), get_entry("caldav")
    assert google.extra_fields(["google_event_ids"], "series", "series_20250101T090000Z") == {
        "google_event_id": "series_20250101T090000Z"}
    assert google.extra_fields([], "a", "a") == {}  # only when asked for
    assert google.extra_fields(["unknown_flag"], "a", "a") == {}
    assert caldav.extra_fields(["google_event_ids"], "uid", "uid") == {}  # not its field

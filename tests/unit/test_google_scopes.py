"""The one scope table, checked against the discovery document googleapiclient ships: every
Google scope it names must be allowed on every API method its row needs, and every
"covers" claim must hold on those methods."""

from __future__ import annotations

import json
from importlib import resources
from urllib.parse import parse_qs, urlsplit

import pytest

from providers.google import oauth
from providers.google.config import GoogleEndpoints

CALGATE_SCOPES = ("read_account", "list_calendars", "read_events", "read_free_busy",
                  "create_event", "delete_event", "create_calendar",
                  "change_participation_status", "read_resources")


def _methods(resource: dict, prefix: str):
    for name, spec in resource.get("methods", {}).items():
        yield f"{prefix}{name}", frozenset(spec.get("scopes", ()))
    for name, nested in resource.get("resources", {}).items():
        yield from _methods(nested, f"{prefix}{name}.")


def method_scopes() -> dict[str, frozenset[str]]:
    """Calendar v3's methods by ``resource.method``, and the Admin SDK Directory API's
    (read_resources) as ``directory.resources.calendars.list``."""
    found: dict[str, frozenset[str]] = {}
    for document_name, prefix in (("calendar.v3.json", ""),
                                  ("admin.directory_v1.json", "directory.")):
        path = resources.files("googleapiclient").joinpath(
            "discovery_cache", "documents", document_name)
        found |= dict(_methods(json.loads(path.read_text()), prefix))
    return found


def test_the_table_covers_exactly_calgates_scopes():
    assert tuple(rule.calgate_scope for rule in oauth.SCOPE_TABLE) == CALGATE_SCOPES


@pytest.mark.parametrize("rule", oauth.SCOPE_TABLE, ids=lambda r: r.calgate_scope)
def test_each_rule_allows_every_method_it_needs(rule):
    scopes = method_scopes()
    for variant in (rule.owned, rule.any_calendar):
        for method in rule.methods:
            assert set(variant) & scopes[method], (rule.calgate_scope, method, variant)


def test_covers_claims_hold_on_the_methods_calgate_uses():
    scopes = method_scopes()
    used = {m for rule in oauth.SCOPE_TABLE for m in rule.methods} | {"channels.stop"}
    for broad, narrower in oauth.COVERS.items():
        for narrow in narrower:
            for method in used:
                if narrow in scopes[method]:
                    assert broad in scopes[method], (broad, narrow, method)


def test_free_busy_alone_never_reaches_event_contents():
    assert oauth.upstream_scopes(["read_free_busy"]) == (
        oauth.CALENDARLIST_READONLY, oauth.EVENTS_FREEBUSY)
    assert oauth.upstream_scopes(["read_free_busy"], other_calendars=True) == (
        oauth.CALENDARLIST_READONLY, oauth.EVENTS_FREEBUSY)


def test_managed_events_need_only_owned_calendars_unless_asked():
    assert oauth.upstream_scopes(["create_event", "delete_event"]) == (
        oauth.CALENDARLIST_READONLY, oauth.EVENTS_OWNED)
    assert oauth.upstream_scopes(["create_event"], other_calendars=True) == (
        oauth.CALENDARLIST_READONLY, oauth.EVENTS)


def test_a_covered_scope_is_not_asked_for_twice():
    both = oauth.upstream_scopes(["read_events", "read_free_busy", "create_event"])
    assert both == (oauth.CALENDARLIST_READONLY, oauth.EVENTS_FREEBUSY, oauth.EVENTS_OWNED)
    assert oauth.upstream_scopes(["create_calendar"]) == (oauth.APP_CREATED,
                                                          oauth.CALENDARLIST_READONLY)
    assert oauth.upstream_scopes([]) == (oauth.CALENDARLIST_READONLY,)


def test_an_unknown_calgate_scope_is_a_programming_error():
    with pytest.raises(ValueError, match="read_write"):
        oauth.upstream_scopes(["read_write"])


def test_missing_scopes_counts_broader_grants():
    needed = oauth.upstream_scopes(["read_events", "create_event"])
    assert oauth.missing_scopes(needed, needed) == ()
    assert oauth.missing_scopes(needed, [oauth.CALENDARLIST_READONLY]) == (oauth.EVENTS_OWNED,)
    assert oauth.missing_scopes(needed, [oauth.CALENDAR]) == ()
    assert oauth.missing_scopes([oauth.EVENTS_FREEBUSY], [oauth.EVENTS]) == (
        oauth.EVENTS_FREEBUSY,)  # freebusy.query does not take calendar.events


def test_every_scope_has_plain_words():
    for rule in oauth.SCOPE_TABLE:
        for scope in rule.owned + rule.any_calendar:
            assert oauth.describe_scope(scope) != scope


def test_authorization_url_carries_pkce_and_offline_access():
    verifier = oauth.new_code_verifier()
    url = oauth.authorization_url(oauth.GoogleApp("cid", "secret"), GoogleEndpoints(),
                                  "https://gw.example.com/cb", ("a", "b"), "st", verifier,
                                  login_hint="ada@example.com")
    parts = urlsplit(url)
    assert url.startswith("https://accounts.google.com/o/oauth2/v2/auth?")
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    assert query == {"client_id": "cid", "redirect_uri": "https://gw.example.com/cb",
                     "response_type": "code", "scope": "a b", "state": "st",
                     "code_challenge": oauth.code_challenge(verifier),
                     "code_challenge_method": "S256", "access_type": "offline",
                     "include_granted_scopes": "true", "prompt": "consent",
                     "login_hint": "ada@example.com"}
    assert "secret" not in url
    assert 43 <= len(verifier) <= 128


def test_code_challenge_is_rfc7636_s256():
    # RFC 7636 appendix B
    assert oauth.code_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk") == \
        "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


def test_rooms_are_asked_for_only_with_read_resources():
    assert oauth.RESOURCES_READONLY not in oauth.upstream_scopes(
        ["read_account", "list_calendars", "read_events", "create_event", "delete_event",
         "create_calendar", "change_participation_status"])
    assert oauth.upstream_scopes(["read_resources"]) == (
        oauth.RESOURCES_READONLY, oauth.CALENDARLIST_READONLY)
    assert oauth.describe_scope(oauth.RESOURCES_READONLY) == \
        "View calendar resources on your domain"

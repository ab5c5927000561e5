"""Linking through Google's consent screen (the emulator's), with Calgate's oauth helpers:
the authorization URL, the user unticking a scope, the code exchange, and revocation."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest

from providers.errors import Unauthorized
from providers.google import oauth
from providers.google.provider import open_account
from providers.registry import ProviderOptions
from tests.emulators.google.shared import (
    CLIENT_ID,
    CLIENT_SECRET,
    REDIRECT_URI,
    new_email,
    shared_emulator,
)
from tests.support import aio

APP = oauth.GoogleApp(CLIENT_ID, CLIENT_SECRET)


def endpoints(emu) -> oauth.GoogleEndpoints:
    return oauth.endpoints(ProviderOptions(settings=emu.provider_settings))


def consent(emu, url: str, email: str, untick: tuple[str, ...] = (), allow: bool = True):
    """Do what the user does on the consent page; returns the redirect's query."""
    with httpx.Client(follow_redirects=False) as browser:
        page = browser.get(url)
        assert page.status_code == 200
        assert re.search(r'id="app-name">Calgate Tests<', page.text)
        txn = re.search(r'name="txn" value="([^"]+)"', page.text)[1]
        offered = re.findall(r'name="scope" value="([^"]+)" checked', page.text)
        form = [("txn", txn), ("email", email), ("decision", "allow" if allow else "deny")]
        form += [("scope", s) for s in offered if s not in untick]
        answer = browser.post(f"{emu.base_url}/o/oauth2/v2/auth/decision",
                              content=urlencode(form),
                              headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert answer.status_code == 302
    location = answer.headers["location"]
    assert location.startswith(REDIRECT_URI + "?")
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def test_link_with_all_scopes_then_use_the_grant():
    emu = shared_emulator()
    email = emu.add_user(new_email())
    scopes = oauth.upstream_scopes(["read_events", "read_free_busy", "create_event"])
    verifier = oauth.new_code_verifier()
    url = oauth.authorization_url(APP, endpoints(emu), REDIRECT_URI, scopes, "st-1", verifier,
                                  login_hint=email)
    query = parse_qs(urlsplit(url).query)
    assert query["code_challenge_method"] == ["S256"]
    assert query["access_type"] == ["offline"] and query["prompt"] == ["consent"]
    assert query["include_granted_scopes"] == ["true"]
    back = consent(emu, url, email)
    assert back["state"] == "st-1"
    grant = oauth.exchange_code(APP, endpoints(emu), back["code"], REDIRECT_URI, verifier)
    assert grant.granted_scopes == frozenset(scopes)
    assert oauth.missing_scopes(scopes, grant.granted_scopes) == ()
    assert grant.refresh_token and grant.expires_in > 0
    provider = open_account({"refresh_token": grant.refresh_token, "client_id": CLIENT_ID,
                             "client_secret": CLIENT_SECRET},
                            ProviderOptions(settings=emu.provider_settings))
    start = len(emu.requests)
    assert aio.run(provider.verify()).profile_name == email
    # The access token from the exchange is reused: no refresh before the first call.
    assert [r.path for r in emu.requests[start:]] == [
        "/calendar/v3/users/me/calendarList/primary"]
    aio.run(provider.close())
    with pytest.raises(Unauthorized):  # a code is good once
        oauth.exchange_code(APP, endpoints(emu), back["code"], REDIRECT_URI, verifier)


def test_an_unticked_scope_is_reported_missing():
    emu = shared_emulator()
    email = emu.add_user(new_email())
    scopes = oauth.upstream_scopes(["read_free_busy", "create_event"])
    verifier = oauth.new_code_verifier()
    url = oauth.authorization_url(APP, endpoints(emu), REDIRECT_URI, scopes, "st-2", verifier)
    back = consent(emu, url, email, untick=(oauth.EVENTS_OWNED,))
    assert oauth.EVENTS_OWNED not in back["scope"].split()
    grant = oauth.exchange_code(APP, endpoints(emu), back["code"], REDIRECT_URI, verifier)
    assert oauth.missing_scopes(scopes, grant.granted_scopes) == (oauth.EVENTS_OWNED,)
    oauth.revoke_token(endpoints(emu), grant.refresh_token)
    oauth.revoke_token(endpoints(emu), grant.refresh_token)  # already revoked: fine


def test_a_wrong_verifier_or_a_denial_gets_no_tokens():
    emu = shared_emulator()
    email = emu.add_user(new_email())
    scopes = oauth.upstream_scopes(["read_free_busy"])
    verifier = oauth.new_code_verifier()
    url = oauth.authorization_url(APP, endpoints(emu), REDIRECT_URI, scopes, "st-3", verifier)
    back = consent(emu, url, email)
    with pytest.raises(Unauthorized, match="invalid_grant"):
        oauth.exchange_code(APP, endpoints(emu), back["code"], REDIRECT_URI,
                            oauth.new_code_verifier())
    denied = consent(emu, oauth.authorization_url(APP, endpoints(emu), REDIRECT_URI, scopes,
                                                  "st-4", verifier), email, allow=False)
    assert denied == {"error": "access_denied", "state": "st-4", "iss": emu.base_url}
    with pytest.raises(Unauthorized, match="invalid_client"):
        oauth.exchange_code(oauth.GoogleApp(CLIENT_ID, "wrong"), endpoints(emu), "x",
                            REDIRECT_URI, verifier)

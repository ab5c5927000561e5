"""OAUTH.md 1-6: authorization server metadata (RFC 8414)."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from tests.support.oauth import Pkce, authorize, make_client
from tests.support.oauth_extra import custom_gateway, post

WELL_KNOWN = "/.well-known/oauth-authorization-server"


def test_metadata_is_a_json_object(http):
    """OAUTH.md 1."""
    r = http.get(WELL_KNOWN)
    assert r.status_code == 200
    assert r.headers["content-type"].split(";")[0] == "application/json"
    assert isinstance(r.json(), dict)


def test_issuer_is_the_gateway_issuer_byte_for_byte(http, gateway):
    """OAUTH.md 2 (loopback issuer: http is allowed there)."""
    issuer = http.get(WELL_KNOWN).json()["issuer"]
    assert issuer == gateway.settings.issuer == "http://127.0.0.1:8080"
    parts = urlsplit(issuer)
    assert not parts.query and not parts.fragment and not issuer.endswith("/")


def test_https_issuer_is_published_exactly(settings, connector, tmp_path):
    """OAUTH.md 2: with a public https URL the issuer is that URL, nothing added."""
    with custom_gateway(settings, connector, tmp_path / "gw2",
                        public_url="https://calgate.example/") as (gw, client):
        body = client.get(WELL_KNOWN).json()
    assert body["issuer"] == gw.settings.issuer == "https://calgate.example"
    for key in ("authorization_endpoint", "token_endpoint", "revocation_endpoint",
                "introspection_endpoint"):
        assert body[key].startswith("https://calgate.example/")


def test_issuer_must_be_https_without_query_or_fragment(settings):
    """OAUTH.md 2: a non-loopback http, or a path, query or fragment, is refused at start."""
    from gateway.settings import SettingsError

    for url in ("http://calgate.example", "https://calgate.example/?a=1",
                "https://calgate.example/#f", "https://calgate.example/base", "calgate.example"):
        with pytest.raises(SettingsError):
            settings.replace(public_url=url)


def test_only_the_code_flow_is_advertised(http):
    """OAUTH.md 3."""
    body = http.get(WELL_KNOWN).json()
    assert body["response_types_supported"] == ["code"]
    assert set(body["grant_types_supported"]) <= {"authorization_code", "refresh_token"}
    flat = repr(body)
    for forbidden in ("'token'", "implicit", "password", "client_credentials"):
        assert forbidden not in flat


def test_pkce_s256_only(http):
    """OAUTH.md 4."""
    assert http.get(WELL_KNOWN).json()["code_challenge_methods_supported"] == ["S256"]


def test_auth_methods_and_endpoints_are_listed(http):
    """OAUTH.md 5: basic and post; revocation and introspection endpoints listed."""
    body = http.get(WELL_KNOWN).json()
    methods = body["token_endpoint_auth_methods_supported"]
    assert {"client_secret_basic", "client_secret_post"} <= set(methods)
    assert body["revocation_endpoint"] == "http://127.0.0.1:8080/oauth/token/revoke"
    assert body["introspection_endpoint"] == "http://127.0.0.1:8080/oauth/introspect"


def test_none_auth_method_is_real_public_clients_work(http, gateway):
    """OAUTH.md 5: ``none`` is listed because public (PKCE-only) clients are supported."""
    assert "none" in http.get(WELL_KNOWN).json()["token_endpoint_auth_methods_supported"]
    client = make_client(gateway, public=True)
    assert client.secret is None
    pkce = Pkce()
    code = authorize(http, client, pkce=pkce)
    r = post(http, "/oauth/token", {
        "grant_type": "authorization_code", "code": code, "client_id": client.client_id,
        "redirect_uri": client.redirect_uri, "code_verifier": pkce.verifier})
    assert r.status_code == 200, r.text


def test_iss_parameter_supported(http):
    """OAUTH.md 6."""
    assert http.get(WELL_KNOWN).json()["authorization_response_iss_parameter_supported"] is True

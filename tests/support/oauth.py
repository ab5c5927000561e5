"""Drive the authorization flow over HTTP, as a browser without JavaScript would."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

from starlette.testclient import TestClient

from gateway.app import Gateway
from tests.support.memory_connector import PASSWORD

REDIRECT = "https://app.example/cb"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass
class RegisteredClient:
    client_id: str
    secret: str | None
    redirect_uri: str = REDIRECT


@dataclass
class Pkce:
    verifier: str = field(default_factory=lambda: secrets.token_urlsafe(48))

    @property
    def challenge(self) -> str:
        digest = hashlib.sha256(self.verifier.encode()).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def make_client(gateway: Gateway, *, scopes: str = "read_write", public: bool = False,
                legacy_no_pkce: bool = False, name: str = "My Portal App",
                redirect_uri: str = REDIRECT) -> RegisteredClient:
    client, secret = gateway.oauth.registry.create(
        name=name, redirect_uris=[redirect_uri], scopes=scopes.split(), public=public,
        legacy_no_pkce=legacy_no_pkce)
    return RegisteredClient(client.client_id, secret, redirect_uri)


def csrf(html: str) -> str:
    match = CSRF.search(html)
    assert match, "no csrf_token on the page"
    return match.group(1)


def start(http: TestClient, client: RegisteredClient, *, scope: str = "read_account",
          state: str = "xyz", pkce: Pkce | None = None, extra: dict[str, str] | None = None
          ) -> str:
    """GET /oauth/authorize; returns the flow URL the browser is sent to."""
    params = {"response_type": "code", "client_id": client.client_id,
              "redirect_uri": client.redirect_uri, "scope": scope, "state": state}
    if pkce is not None:
        params |= {"code_challenge": pkce.challenge, "code_challenge_method": "S256"}
    params |= extra or {}
    response = http.get("/oauth/authorize", params=params)
    assert response.status_code == 303, response.text
    return str(response.headers["location"])


def connect(http: TestClient, flow_url: str, username: str = "jane@example.com") -> str:
    """Choose the test provider and connect it; returns the consent page HTML."""
    page = http.get(flow_url)
    token = csrf(page.text)
    r = http.post(f"{flow_url}/provider", data={"csrf_token": token, "provider": "memory"})
    assert r.status_code == 303, r.text
    r = http.post(f"{flow_url}/connect", data={"csrf_token": token, "username": username,
                                               "password": PASSWORD})
    assert r.status_code == 303, r.text
    return http.get(flow_url).text


def decide(http: TestClient, flow_url: str, decision: str = "allow") -> dict[str, str]:
    token = csrf(http.get(flow_url).text)
    r = http.post(f"{flow_url}/decision", data={"csrf_token": token, "decision": decision})
    assert r.status_code == 303, r.text
    location = r.headers["location"]
    query = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
    query["_location"] = location
    return query


def authorize(http: TestClient, client: RegisteredClient, *, scope: str = "read_account",
              pkce: Pkce | None = None, username: str = "jane@example.com",
              extra: dict[str, str] | None = None) -> str:
    """The whole journey; returns the authorization code."""
    flow = start(http, client, scope=scope, pkce=pkce, extra=extra)
    connect(http, flow, username)
    return decide(http, flow)["code"]


def exchange(http: TestClient, client: RegisteredClient, code: str, pkce: Pkce | None = None,
             **extra: str) -> dict[str, object]:
    data = {"grant_type": "authorization_code", "code": code,
            "redirect_uri": client.redirect_uri, "client_id": client.client_id}
    if client.secret:
        data["client_secret"] = client.secret
    if pkce is not None:
        data["code_verifier"] = pkce.verifier
    data |= extra
    r = http.post("/oauth/token", data=data)
    return {"_status": r.status_code, **r.json()}

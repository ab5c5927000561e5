"""The consent screen explains a failed link in plain words, never with an exception's text,
and logs the detail for the operator: real Radicale, a closed port, a self-signed TLS server,
a web server that is not CalDAV, and an address the deployment may not reach."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from starlette.testclient import TestClient

from gateway.app import Gateway, create_app
from gateway.secrets.local import LocalSecretStore
from gateway.services import link_errors
from gateway.settings import Settings
from providers.errors import CertificateInvalid, NotCalendarServer, Unauthorized, Unreachable
from tests.conftest import ISSUER
from tests.support.davservers import RadicaleServer
from tests.support.feedserver import FeedServer
from tests.support.oauth import Pkce, RegisteredClient, csrf, make_client, start
from tests.support.processes import free_port

# What an exception or an HTTP exchange looks like; none of it may reach the page.
INTERNALS = ("Error(", " at 0x", "HTTP 401", "HTTP 501", "urllib3", "niquests", "Traceback",
             "principal lookup", "answered HTTP", "current-user-principal", "SSL")


@pytest.fixture(scope="module")
def radicale() -> Iterator[RadicaleServer]:
    with RadicaleServer(users={"alice": "secret"}) as server:
        yield server


@dataclass
class Site:
    http: TestClient
    gateway: Gateway


def _site(settings: Settings, tmp_path: Path, **changes: object) -> Iterator[Site]:
    gateway = Gateway.build(settings.replace(**changes),
                            secrets=LocalSecretStore(tmp_path / "secrets"))
    try:
        with TestClient(create_app(gateway), base_url=ISSUER, follow_redirects=False) as http:
            yield Site(http, gateway)
    finally:
        gateway.close()


@pytest.fixture
def loopback(settings: Settings, tmp_path: Path) -> Iterator[Site]:
    """The default connectors, allowed to reach servers on loopback."""
    yield from _site(settings, tmp_path, outbound_allow_networks="127.0.0.0/8,::1/128")


@pytest.fixture
def guarded(settings: Settings, tmp_path: Path) -> Iterator[Site]:
    """The default connectors, with the default outbound policy (no private networks)."""
    yield from _site(settings, tmp_path)


def _connect(site: Site, server_url: str, password: str) -> httpx.Response:
    http = site.http
    flow = start(http, make_client(site.gateway), pkce=Pkce())
    token = csrf(http.get(flow).text)
    r = http.post(f"{flow}/provider", data={"csrf_token": token, "provider": "caldav"})
    assert r.status_code == 303, r.text
    return http.post(f"{flow}/connect", data={"csrf_token": token, "server_url": server_url,
                                              "username": "alice", "password": password})


def _link(site: Site, server_url: str, password: str = "secret") -> str:
    r = _connect(site, server_url, password)
    assert r.status_code == 200, r.text  # the form again, with the message
    assert 'role="alert"' in r.text
    # The flow's random ids (form action, CSRF token) may hold any letters: leave them out.
    page = re.sub(r'(action|value)="[^"]*"', "", r.text)
    assert not re.search(r"0x[0-9a-f]{6,}", page), "a memory address"
    for fragment in INTERNALS:
        assert fragment not in page, fragment
    assert password not in r.text
    return r.text


def _logged(caplog: pytest.LogCaptureFixture, kind: type[Exception]) -> str:
    lines = [r.getMessage() for r in caplog.records if r.name == "calgate.linking"]
    assert any(kind.__name__ in line for line in lines), lines
    return "\n".join(lines)


def test_wrong_password(loopback, radicale, caplog):
    caplog.set_level(logging.WARNING, "calgate.linking")
    page = _link(loopback, radicale.url, password="wrong")
    assert "did not accept that username and password" in page
    assert "HTTP 401" in _logged(caplog, Unauthorized)  # the operator gets the detail


def test_right_password_links(loopback, radicale):
    assert _connect(loopback, radicale.url, "secret").status_code == 303  # on to the review


def test_closed_port(loopback, caplog):
    caplog.set_level(logging.WARNING, "calgate.linking")
    page = _link(loopback, f"http://127.0.0.1:{free_port()}/")
    assert "could not reach a server at that address" in page
    assert "could not reach 127.0.0.1" in _logged(caplog, Unreachable)


def test_self_signed_certificate(loopback, caplog):
    caplog.set_level(logging.WARNING, "calgate.linking")
    with FeedServer(tls=True) as server:
        page = _link(loopback, server.url("/", scheme="https"))
    assert "security certificate could not be verified" in page
    assert "certificate verification failed" in _logged(caplog, CertificateInvalid)


def test_a_web_server_that_is_not_caldav(loopback, caplog):
    caplog.set_level(logging.WARNING, "calgate.linking")
    with FeedServer() as server:
        server.set_feed("/", "<html>a web site</html>", content_type="text/html")
        page = _link(loopback, server.url("/"))
    assert "it is not a calendar server" in page
    assert "current-user-principal" in _logged(caplog, NotCalendarServer)


def test_an_address_the_deployment_may_not_reach(guarded, radicale, caplog):
    caplog.set_level(logging.WARNING, "calgate.linking")
    page = _link(guarded, radicale.url)
    assert "private or local network" in page
    assert "127.0.0.1" in "\n".join(r.getMessage() for r in caplog.records
                                    if r.name == "calgate.linking")


def test_every_provider_error_has_plain_words():
    from providers import errors

    kinds = [k for k in vars(errors).values()
             if isinstance(k, type) and issubclass(k, errors.ProviderError)]
    for kind in kinds:
        error = kind("principal lookup: 127.0.0.1 answered HTTP 401")
        text = link_errors.user_message(error)
        assert "HTTP" not in text and "127.0.0.1" not in text
    assert link_errors.user_message(errors.CursorExpired("x")) == link_errors.FALLBACK


# -- providers the deployment has not configured are not offered -------------------------------


def _chooser(site: Site, client: RegisteredClient, **extra: str) -> str:
    return site.http.get(start(site.http, client, pkce=Pkce(), extra=extra or None)).text


def test_google_is_offered_only_once_an_app_is_configured(guarded):
    portal = make_client(guarded.gateway, name="Portal")
    other = make_client(guarded.gateway, name="Other")
    page = _chooser(guarded, portal)
    assert 'id="provider-google"' not in page and "Google Calendar" not in page
    assert 'id="provider-caldav"' in page  # form providers need nothing configured
    # Asked for by name, it is not preselected either: the chooser shows instead.
    assert "Choose where your calendar is" in _chooser(guarded, portal, provider_name="google")

    guarded.gateway.apps.configure("google", "own-cid", "own-secret", portal.client_id)
    assert 'id="provider-google"' in _chooser(guarded, portal)  # the client's own app
    assert 'id="provider-google"' not in _chooser(guarded, other)

    guarded.gateway.apps.configure("google", "gw-cid", "gw-secret")  # the deployment's app
    page = _chooser(guarded, other)
    assert 'id="provider-google"' in page and "Not yet available" not in page.split(
        'id="provider-google"')[1].split("</li>")[0]


def test_choosing_an_unconfigured_provider_is_refused(guarded):
    site = guarded
    client = make_client(site.gateway)
    flow = start(site.http, client, pkce=Pkce())
    token = csrf(site.http.get(flow).text)
    r = site.http.post(f"{flow}/provider", data={"csrf_token": token, "provider": "google"})
    assert r.status_code == 200 and "That calendar provider is not available." in r.text

"""GET and POST /v1/calendars through the HTTP API, on both databases.

Accounts are linked with ``gateway.accounts.link`` and tokens minted with the grant store
(see test_api_reads.py for why the consent screen's test connector cannot be used here).
"""

from __future__ import annotations

import asyncio
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from gateway.domain.sealing import DataKeys
from gateway.services.accounts import PendingAccount
from gateway.sync.engine import SyncEngine
from oauth_server.scopes import expand
from providers.memory.provider import WORLD
from tests.support.oauth import REDIRECT, make_client

FIELDS = {"provider_name", "profile_id", "profile_name", "calendar_id", "calendar_name",
          "calendar_readonly", "calendar_deleted", "calendar_primary",
          "calendar_integrated_conferencing_available", "calendar_attachments_available",
          "permission_level", "calendar_color"}


def run(coro):
    """``asyncio.run`` on a thread of its own: when the e2e tests share this process, a
    session-wide event loop (Playwright's) is already running on the main thread."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


@pytest.fixture
def settings(settings):
    """No in-process worker: each test syncs exactly when it says so."""
    return settings.replace(worker_mode="external")


@pytest.fixture
def link(gateway):
    """Link a fresh in-memory upstream account (or an ICS feed); returns (subject, profile)."""
    client = make_client(gateway)
    names: list[str] = []

    def make(provider: str = "memory", scope: str = "read_write") -> tuple[str, str]:
        name = f"cals-{uuid.uuid4().hex[:8]}@example.com"
        if provider == "memory":
            names.append(name)
            WORLD.add_account(name, "pw")
            credentials = {"account": name, "password": "pw"}
        else:
            credentials = {"url": "https://calendar.example/feed.ics"}
        path = gateway.accounts.park_credentials(uuid.uuid4().hex, credentials)
        linked = gateway.accounts.link(client.client_id, PendingAccount(
            provider, provider, name, name, path), None, sorted(expand(scope.split())))
        return linked.subject, linked.profile_id

    def token(subject: str, scope: str = "read_write") -> dict[str, str]:
        store = gateway.oauth.store
        code = store.save_code(client_id=client.client_id, redirect_uri=REDIRECT, scope=scope,
                               subject=subject, linking_profile=None, code_challenge=None)
        issued = store.redeem_code(store.find_code(code, client.client_id))
        return {"Authorization": f"Bearer {issued.access_token}"}

    make.token = token  # type: ignore[attr-defined]
    make.names = names  # type: ignore[attr-defined]
    yield make
    for name in names:
        WORLD.accounts.pop(name, None)


def sync(gateway, profile_id: str) -> None:
    engine = SyncEngine(gateway.engine, gateway.secrets, DataKeys(gateway.engine,
                                                                  gateway.secrets))
    assert run(engine.sync_profile(profile_id)).error is None


def test_list_calendars_has_exactly_the_cronofy_fields(http, gateway, link):
    subject, profile_id = link()
    sync(gateway, profile_id)
    r = http.get("/v1/calendars", headers=link.token(subject, "list_calendars"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["sub"] == subject
    (calendar,) = body["calendars"]
    assert set(calendar) == FIELDS
    assert calendar["calendar_id"].startswith("cal_")
    assert calendar | {"calendar_id": None} == {
        "provider_name": "memory", "profile_id": profile_id, "profile_name": calendar[
            "profile_name"], "calendar_id": None, "calendar_name": "Calendar",
        "calendar_readonly": False, "calendar_deleted": False, "calendar_primary": True,
        "calendar_integrated_conferencing_available": False,
        "calendar_attachments_available": False, "permission_level": "sandbox",
        "calendar_color": None}


def test_list_calendars_needs_its_scope_and_shows_only_this_account(http, gateway, link):
    subject, profile_id = link()
    _other, other_profile = link()
    sync(gateway, profile_id)
    sync(gateway, other_profile)
    assert http.get("/v1/calendars", headers=link.token(subject, "read_events")
                    ).status_code == 403
    listed = http.get("/v1/calendars", headers=link.token(subject)).json()["calendars"]
    assert {c["profile_id"] for c in listed} == {profile_id}


def test_create_calendar_then_list_it(http, gateway, link):
    subject, profile_id = link()
    auth = link.token(subject)
    r = http.post("/v1/calendars", json={"profile_id": profile_id, "name": "Mentoring",
                                         "color": "#49BED8"}, headers=auth)
    assert r.status_code == 200, r.text
    created = r.json()["calendar"]
    assert set(created) == FIELDS
    assert created["calendar_name"] == "Mentoring" and created["calendar_color"] == "#49BED8"
    assert created["profile_id"] == profile_id and created["calendar_readonly"] is False
    sync(gateway, profile_id)  # the sync engine adopts the row instead of adding another
    listed = http.get("/v1/calendars", headers=auth).json()["calendars"]
    names = sorted(c["calendar_name"] for c in listed)
    assert names == ["Calendar", "Mentoring"]
    assert created["calendar_id"] in {c["calendar_id"] for c in listed}


def test_duplicate_name_is_the_422_pycronofy_parses(http, link):
    subject, profile_id = link()
    auth = link.token(subject)
    body = {"profile_id": profile_id, "name": "Calendar"}
    r = http.post("/v1/calendars", json=body, headers=auth)
    assert r.status_code == 422
    assert r.json()["errors"]["name"][0]["key"] == "errors.duplicate_calendar_name"


def test_form_encoded_body_and_validation(http, link):
    subject, profile_id = link()
    auth = link.token(subject)
    r = http.post("/v1/calendars", data={"profile_id": profile_id, "name": "Form made"},
                  headers=auth)
    assert r.status_code == 200 and r.json()["calendar"]["calendar_name"] == "Form made"
    r = http.post("/v1/calendars", json={"profile_id": profile_id}, headers=auth)
    assert r.status_code == 422
    assert r.json()["errors"]["name"][0]["key"] == "errors.required"


def test_unknown_or_foreign_profile_is_404_json(http, link):
    subject, _ = link()
    _, foreign_profile = link()
    auth = link.token(subject)
    for profile_id in ("pro_nope", foreign_profile):
        r = http.post("/v1/calendars", json={"profile_id": profile_id, "name": "X"},
                      headers=auth)
        assert r.status_code == 404 and r.json() == {"error": "not_found"}


def test_provider_without_create_calendar_is_422_not_supported(http, link):
    subject, profile_id = link("ics")
    r = http.post("/v1/calendars", json={"profile_id": profile_id, "name": "X"},
                  headers=link.token(subject))
    assert r.status_code == 422
    assert r.json()["errors"]["name"][0]["key"] == "errors.not_supported"


def test_create_calendar_needs_its_scope(http, link):
    subject, profile_id = link()
    r = http.post("/v1/calendars", json={"profile_id": profile_id, "name": "X"},
                  headers=link.token(subject, "read_only"))
    assert r.status_code == 403 and r.json()["required_scope"] == "create_calendar"


def test_upstream_refusing_credentials_is_423(http, link):
    subject, profile_id = link()
    (upstream,) = [a for a in WORLD.accounts.values() if a.name == link.names[-1]]
    upstream.password = "changed upstream"
    r = http.post("/v1/calendars", json={"profile_id": profile_id, "name": "X"},
                  headers=link.token(subject))
    assert r.status_code == 423 and r.json() == {"error": "relink_required"}

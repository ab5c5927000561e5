"""POST /v1/permissions, its page, and event_uid writes (API.md s6.3), on both databases:
the page's token is single-use, expires and cannot be forged; the answer needs the page's
CSRF cookie; approval never pretends; external writes go through the outbox (an outage
delays them, a refusal is reported on the event's read)."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from gateway.persistence.tables import (
    calendars,
    external_writes,
    managed_events,
    permission_requests,
)
from gateway.services.accounts import PendingAccount
from providers.memory.provider import WORLD
from providers.model import Event
from tests.integration.test_caldav_sync_api import sync
from tests.support import aio
from tests.support.oauth import REDIRECT, make_client

WRITE = "read_events list_calendars create_event delete_event"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
def account(http, gateway):
    """A memory account with an external event, a recurring instance, and a token."""
    name = f"x-{uuid.uuid4().hex[:8]}@example.com"
    upstream = WORLD.add_account(name, "pw")
    calendar = next(iter(upstream.calendars))
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=2)
    WORLD.put(name, calendar, "ext-1", [Event(
        resource_id="ext-1", instance_id="ext-1", start=start, end=start + timedelta(hours=1),
        summary="Standup", description="Owner's notes")])
    WORLD.put(name, calendar, "series-1", [Event(
        resource_id="series-1", instance_id="series-1@1", start=start + timedelta(hours=3),
        end=start + timedelta(hours=4), summary="Weekly", recurring=True)])
    yield name, calendar, start
    WORLD.accounts.pop(name, None)
    WORLD.down = False


def linked(http, gateway, account, scope=WRITE):
    name, *_ = account
    parked = gateway.accounts.park_credentials(uuid.uuid4().hex,
                                               {"account": name, "password": "pw"})
    profile = gateway.accounts.link("cli_x", PendingAccount("memory", "memory", name, name,
                                                            parked), None, scope.split())
    sync(gateway, profile.profile_id)
    client = make_client(gateway)
    code = gateway.oauth.store.save_code(client_id=client.client_id,
                                         redirect_uri=client.redirect_uri, scope=scope,
                                         subject=profile.subject, linking_profile=None,
                                         code_challenge=None)
    issued = gateway.oauth.store.redeem_code(gateway.oauth.store.find_code(
        code, client.client_id))
    headers = {"Authorization": f"Bearer {issued.access_token}"}
    calendar_id = http.get("/v1/calendars", headers=headers).json()["calendars"][0][
        "calendar_id"]
    return headers, calendar_id, profile


def ask(http, headers, calendar_id, redirect_uri=REDIRECT):
    return http.post("/v1/permissions", headers=headers, json={
        "permissions": [{"calendar_id": calendar_id, "permission_level": "unrestricted"}],
        "redirect_uri": redirect_uri})


def page_path(http, headers, calendar_id) -> str:
    r = ask(http, headers, calendar_id)
    assert r.status_code == 200, r.text
    url = r.json()["permissions_request"]["url"]
    assert re.fullmatch(r"https?://[^/]+/permissions/[A-Za-z0-9_-]{43}", url), url
    return "/" + url.split("/", 3)[3]


def approve(http, path, decision="approve"):
    page = http.get(path)
    assert page.status_code == 200, page.text
    assert page.headers["cache-control"] == "no-store"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    token = CSRF.search(page.text).group(1)
    return http.post(path, data={"csrf_token": token, "decision": decision},
                     follow_redirects=False)


def level(http, headers, calendar_id) -> str:
    listed = http.get("/v1/calendars", headers=headers).json()["calendars"]
    return next(c for c in listed if c["calendar_id"] == calendar_id)["permission_level"]


def events_by_summary(http, headers):
    listed = http.get("/v1/events", headers=headers, params={"tzid": "Etc/UTC"}).json()
    return {e["summary"]: e for e in listed["events"]}


def apply_external(gateway):
    external = gateway.worker.external
    return [aio.run(external.apply(write_id)) for write_id in external.due()]


def test_request_validation(http, gateway, account):
    headers, calendar_id, _ = linked(http, gateway, account)
    r = ask(http, headers, calendar_id, redirect_uri="https://attacker.example/cb")
    assert r.status_code == 422 and list(r.json()["errors"]) == ["redirect_uri"]
    assert ask(http, headers, "cal_unknown").status_code == 404
    r = http.post("/v1/permissions", headers=headers, json={"redirect_uri": REDIRECT,
                  "permissions": [{"calendar_id": calendar_id, "permission_level": "all"}]})
    assert r.status_code == 422 and list(r.json()["errors"]) == ["permissions"]
    r = http.post("/v1/permissions", headers=headers, json={"redirect_uri": REDIRECT})
    assert r.status_code == 422 and list(r.json()["errors"]) == ["permissions"]
    assert http.post("/v1/permissions", json={}).status_code == 401


def test_forged_expired_reused_and_cross_site_answers_are_refused(http, gateway, account):
    headers, calendar_id, _ = linked(http, gateway, account)
    forged = "/permissions/" + "A" * 43
    assert http.get(forged).status_code == 404
    assert http.post(forged, data={"csrf_token": "x", "decision": "approve"}).status_code \
        in (403, 404)

    expired = page_path(http, headers, calendar_id)
    with gateway.engine.begin() as conn:
        conn.execute(update(permission_requests).values(
            expires_at=datetime.now(UTC) - timedelta(seconds=1)))
    assert http.get(expired).status_code == 410

    path = page_path(http, headers, calendar_id)
    token = CSRF.search(http.get(path).text).group(1)
    http.cookies.clear()  # another site's form: no cookie of the page
    r = http.post(path, data={"csrf_token": token, "decision": "approve"})
    assert r.status_code == 403 and level(http, headers, calendar_id) == "sandbox"

    token = CSRF.search(http.get(path).text).group(1)
    r = http.post(path, data={"csrf_token": token, "decision": "approve"},
                  follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == REDIRECT
    assert level(http, headers, calendar_id) == "unrestricted"
    assert http.get(path).status_code == 410  # single use, even with the page's cookie
    http.cookies.set("calgate_permissions", token)
    assert http.post(path, data={"csrf_token": token, "decision": "decline"}).status_code \
        == 410
    assert level(http, headers, calendar_id) == "unrestricted"
    with gateway.engine.connect() as conn:  # only the token's digest is stored
        stored = conn.execute(select(permission_requests.c.token_hash)).scalars().all()
    assert path.rsplit("/", 1)[1] not in stored


def test_decline_redirects_with_access_denied(http, gateway, account):
    headers, calendar_id, _ = linked(http, gateway, account)
    r = approve(http, page_path(http, headers, calendar_id), decision="decline")
    assert r.status_code == 303 and r.headers["location"] == f"{REDIRECT}?error=access_denied"
    assert level(http, headers, calendar_id) == "sandbox"


def test_approval_never_pretends(http, gateway, account):
    headers, calendar_id, _ = linked(http, gateway, account, "read_events list_calendars")
    r = ask(http, headers, calendar_id)  # linked read-only: no upstream write access
    assert r.status_code == 422 and r.json()["errors"]["permissions"][0]["key"] == \
        "errors.not_writable"

    headers, calendar_id, _ = linked(http, gateway, account)
    path = page_path(http, headers, calendar_id)
    with gateway.engine.begin() as conn:  # the upstream made it read-only meanwhile
        conn.execute(update(calendars).where(calendars.c.id == calendar_id).values(
            readonly=True))
    page = http.get(path)
    assert page.status_code == 200 and 'id="refused"' in page.text
    assert 'id="approve"' not in page.text
    with gateway.engine.begin() as conn:
        conn.execute(update(calendars).where(calendars.c.id == calendar_id).values(
            readonly=False))
        conn.execute(update(calendars).where(calendars.c.id == calendar_id).values(
            deleted=True))
    # A form answered before the page said so (its cookie is the CSRF token) is refused too.
    r = http.post(path, data={"csrf_token": http.cookies.get("calgate_permissions"),
                              "decision": "approve"}, follow_redirects=False)
    assert r.status_code == 200 and 'id="refused"' in r.text
    with gateway.engine.connect() as conn:
        assert conn.execute(select(calendars.c.permission_level).where(
            calendars.c.id == calendar_id)).scalar() == "sandbox"


def test_external_writes_through_the_outbox(http, gateway, account):
    name, upstream_calendar, _start = account
    headers, calendar_id, _ = linked(http, gateway, account)
    found = events_by_summary(http, headers)
    uid, series_uid = found["Standup"]["event_uid"], found["Weekly"]["event_uid"]
    base = f"/v1/calendars/{calendar_id}/events"
    r = http.post(base, headers=headers, json={"event_uid": uid, "summary": "Renamed"})
    assert r.status_code == 403 and r.json()["error"] == "insufficient_permission"

    assert approve(http, page_path(http, headers, calendar_id)).status_code == 303
    found = events_by_summary(http, headers)
    assert found["Standup"]["options"] == {"update": True, "delete": True,
                                           "change_participation_status": False}
    assert found["Weekly"]["options"]["update"] is False  # an instance of a series

    r = http.post(base, headers=headers, json={"event_uid": series_uid, "summary": "No"})
    assert r.status_code == 422 and r.json()["errors"]["event_uid"][0]["key"] == \
        "errors.not_editable"
    r = http.post(base, headers=headers, json={"event_uid": "evt_external_nope",
                                               "summary": "No"})
    assert r.status_code == 404
    r = http.post(base, headers=headers, json={"event_uid": uid, "attendees": {
        "invite": [{"email": "x@example.com"}]}})
    assert r.status_code == 422 and list(r.json()["errors"]) == ["attendees"]

    # An outage delays the write; it is applied once the upstream is back.
    WORLD.down = True
    r = http.post(base, headers=headers, json={"event_uid": uid, "summary": "Renamed"})
    assert r.status_code == 202 and r.content == b""
    assert [a.ok for a in apply_external(gateway)] == [False]
    assert events_by_summary(http, headers)["Standup"]["calgate_write"]["status"] == \
        "retrying"
    WORLD.down = False
    with gateway.engine.begin() as conn:
        conn.execute(update(external_writes).values(next_attempt_at=datetime.now(UTC)))
    assert [a.ok for a in apply_external(gateway)] == [True]
    (changed,) = WORLD.accounts[name].calendars[upstream_calendar].resources["ext-1"]
    assert changed.summary == "Renamed" and changed.description == "Owner's notes"

    # event_id beats event_uid: that is the app's own event, created.
    r = http.post(base, headers=headers, json={
        "event_id": "mine-1", "event_uid": uid, "summary": "Own",
        "start": "2030-01-01T09:00:00Z", "end": "2030-01-01T10:00:00Z"})
    assert r.status_code == 202
    with gateway.engine.connect() as conn:
        assert conn.execute(select(managed_events.c.event_id)).scalars().all() == ["mine-1"]

    sync(gateway, _profile_of(gateway, calendar_id))
    r = http.request("DELETE", base, headers=headers, json={"event_uid": uid})
    assert r.status_code == 202
    assert [a.ok for a in apply_external(gateway)] == [True]
    assert "ext-1" not in WORLD.accounts[name].calendars[upstream_calendar].resources
    assert "Renamed" not in events_by_summary(http, headers)


def test_a_write_that_can_never_succeed_is_reported(http, gateway, account):
    name, upstream_calendar, _start = account
    headers, calendar_id, _ = linked(http, gateway, account)
    assert approve(http, page_path(http, headers, calendar_id)).status_code == 303
    uid = events_by_summary(http, headers)["Standup"]["event_uid"]
    WORLD.remove(name, upstream_calendar, "ext-1")  # gone upstream, not yet synced
    r = http.post(f"/v1/calendars/{calendar_id}/events", headers=headers,
                  json={"event_uid": uid, "description": ""})
    assert r.status_code == 202
    assert [a.ok for a in apply_external(gateway)] == [False]
    write = events_by_summary(http, headers)["Standup"]["calgate_write"]
    assert write["status"] == "failed" and write["error"]
    assert gateway.worker.external.due() == []  # not retried for ever


def test_userinfo_lists_profile_calendars_with_their_level(http, gateway, account):
    headers, calendar_id, _ = linked(http, gateway, account)
    assert approve(http, page_path(http, headers, calendar_id)).status_code == 303
    (profile,) = http.get("/v1/userinfo", headers=headers).json()["cronofy.data"]["profiles"]
    assert [(c["calendar_id"], c["permission_level"]) for c in profile["profile_calendars"]
            ] == [(calendar_id, "unrestricted")]


def _profile_of(gateway, calendar_id: str) -> str:
    with gateway.engine.connect() as conn:
        return str(conn.execute(select(calendars.c.profile_id).where(
            calendars.c.id == calendar_id)).scalar())


def test_batch_entries_edit_and_delete_external_events(http, gateway, account):
    name, upstream_calendar, _start = account
    headers, calendar_id, _ = linked(http, gateway, account)
    found = events_by_summary(http, headers)
    uid, series_uid = found["Standup"]["event_uid"], found["Weekly"]["event_uid"]
    url = f"/v1/calendars/{calendar_id}/events"

    def batch(*entries):
        r = http.post("/v1/batch", headers=headers, json={"batch": [
            {"method": method, "relative_url": url, "data": data}
            for method, data in entries]})
        assert r.status_code == 207, r.text
        return r.json()

    refused = batch(("POST", {"event_uid": uid, "summary": "Renamed"}))
    assert refused["batch"][0]["status"] == 403
    assert refused["batch"][0]["data"]["error"] == "insufficient_permission"

    assert approve(http, page_path(http, headers, calendar_id)).status_code == 303
    answer = batch(("POST", {"event_uid": uid, "summary": "Renamed"}),
                   ("POST", {"event_uid": series_uid, "summary": "No"}),
                   ("DELETE", {"event_uid": "evt_external_nope"}),
                   ("POST", {"event_uid": uid, "reminders": [{"minutes": 5}]}))
    assert [e["status"] for e in answer["batch"]] == [202, 422, 404, 422]
    assert answer["batch"][1]["data"]["errors"]["event_uid"][0]["key"] == \
        "errors.not_editable"
    assert list(answer["batch"][3]["data"]["errors"]) == ["reminders"]
    state = http.get(f"/v1/batch/{answer['batch_id']}", headers=headers).json()["batch"]
    assert (state["accepted"], state["rejected"], state["pending"]) == (1, 3, 1)
    assert [a.ok for a in apply_external(gateway)] == [True]
    state = http.get(f"/v1/batch/{answer['batch_id']}", headers=headers).json()["batch"]
    assert (state["applied"], state["pending"], state["failed"]) == (1, 0, 0)
    (changed,) = WORLD.accounts[name].calendars[upstream_calendar].resources["ext-1"]
    assert changed.summary == "Renamed" and changed.description == "Owner's notes"

    sync(gateway, _profile_of(gateway, calendar_id))
    gone = batch(("DELETE", {"event_uid": uid}))
    assert gone["batch"] == [{"status": 202}]
    assert [a.ok for a in apply_external(gateway)] == [True]
    assert "ext-1" not in WORLD.accounts[name].calendars[upstream_calendar].resources
    state = http.get(f"/v1/batch/{gone['batch_id']}", headers=headers).json()["batch"]
    assert (state["accepted"], state["applied"]) == (1, 1)

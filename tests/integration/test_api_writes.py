"""POST/DELETE /v1/calendars/{id}/events and DELETE /v1/events (API.md s6), on both databases."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from gateway.domain.desired import DesiredEvent
from gateway.domain.managed import managed_context
from gateway.domain.sealing import unseal
from gateway.persistence.tables import calendars, managed_events
from gateway.services.accounts import PendingAccount
from providers.memory.provider import WORLD
from tests.integration.test_caldav_sync_api import bearer_for, sync
from tests.support import aio

WRITE = "read_events list_calendars create_event delete_event"


@pytest.fixture
def setup(http, gateway):
    name = f"w-{uuid.uuid4().hex[:8]}@example.com"
    upstream = WORLD.add_account(name, "pw")
    parked = gateway.accounts.park_credentials(uuid.uuid4().hex, {"account": name,
                                                                  "password": "pw"})
    profile = gateway.accounts.link("cli_x", PendingAccount("memory", "memory", name, name,
                                                            parked), None, WRITE.split())
    sync(gateway, profile.profile_id)
    headers = bearer_for(http, gateway, profile.subject, WRITE)
    calendar_id = http.get("/v1/calendars", headers=headers).json()["calendars"][0][
        "calendar_id"]
    yield headers, calendar_id, name, next(iter(upstream.calendars)), profile
    WORLD.accounts.pop(name, None)


def stamp(days: float) -> str:
    moment = datetime.now(UTC).replace(microsecond=0) + timedelta(days=days)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def body(**changes):
    return {"event_id": "e1", "summary": "Session", "start": stamp(1), "end": stamp(1.05),
            **changes}


def errors_of(r):
    assert r.status_code == 422, r.text
    return {field: [e["key"] for e in items] for field, items in r.json()["errors"].items()}


@pytest.mark.parametrize(("changes", "field", "key"), [
    ({"summary": None}, "summary", "errors.required"),
    ({"end": stamp(0.5)}, "end", "errors.end_before_start"),
    ({"tzid": "Mars/Olympus"}, "tzid", "errors.invalid_tzid"),
    ({"start": {"time": stamp(1), "tzid": "Nowhere/City"}}, "start", "errors.invalid_tzid"),
    ({"start": stamp(1).replace("Z", ".250Z")}, "start", "errors.invalid_time"),
    ({"start": "2027-01-01"}, "end", "errors.mismatched_types"),
    ({"event_id": None}, "event_id", "errors.required"),
])
def test_bad_input_is_a_422_in_cronofys_shape(http, setup, changes, field, key):
    headers, calendar_id, *_ = setup
    payload = {k: v for k, v in body(**changes).items() if v is not None}
    r = http.post(f"/v1/calendars/{calendar_id}/events", headers=headers, json=payload)
    assert errors_of(r) == {field: [key]}


def test_bulk_delete_with_both_forms_is_refused(http, setup):
    headers, calendar_id, *_ = setup
    r = http.request("DELETE", "/v1/events", headers=headers,
                     json={"delete_all": True, "calendar_ids": [calendar_id]})
    assert "delete_all" in errors_of(r)
    assert "calendar_ids" in errors_of(http.request("DELETE", "/v1/events", headers=headers,
                                                    json={}))


def test_unknown_calendar_404_read_only_403_missing_scope_403(http, gateway, setup):
    headers, calendar_id, _name, _cal, profile = setup
    r = http.post("/v1/calendars/cal_nope/events", headers=headers, json=body())
    assert r.status_code == 404 and r.json() == {"error": "not_found"}
    with gateway.engine.begin() as conn:
        conn.execute(update(calendars).values(readonly=True))
    r = http.post(f"/v1/calendars/{calendar_id}/events", headers=headers, json=body())
    assert r.status_code == 403
    reader = bearer_for(http, gateway, profile.subject, "read_events")
    r = http.post(f"/v1/calendars/{calendar_id}/events", headers=reader, json=body())
    assert r.status_code == 403 and r.json()["required_scope"] == "create_event"


def test_upsert_is_idempotent_and_prefer_wait_returns_the_event(http, gateway, setup):
    headers, calendar_id, name, upstream_cal, _profile = setup
    r = http.post(f"/v1/calendars/{calendar_id}/events", headers=headers, json=body())
    assert r.status_code == 202 and r.content == b""
    r = http.post(f"/v1/calendars/{calendar_id}/events", headers=headers, json=body())
    with gateway.engine.connect() as conn:
        assert len(conn.execute(select(managed_events)).all()) == 1

    stop = threading.Event()

    def work():  # the worker, as it runs in the server
        from tests.support import aio

        while not stop.is_set():
            for managed_id in gateway.worker.outbox.due():
                aio.run(gateway.worker.outbox.apply(managed_id))
            stop.wait(0.05)

    runner = threading.Thread(target=work)
    runner.start()
    try:
        r = http.post(f"/v1/calendars/{calendar_id}/events",
                      headers={**headers, "Prefer": "wait=10"},
                      json=body(summary="Moved", location={"description": "Room 4"}))
    finally:
        stop.set()
        runner.join()
    assert r.status_code == 200, r.text
    event = r.json()["event"]
    assert event["event_id"] == "e1" and event["summary"] == "Moved"
    assert event["location"] == {"description": "Room 4"}
    assert r.headers["preference-applied"] == "wait=10"
    upstream = WORLD.accounts[name].calendars[upstream_cal].resources
    assert [e.summary for evs in upstream.values() for e in evs] == ["Moved"]


def test_pycronofy_style_bulk_delete_in_the_query(http, gateway, setup):
    headers, calendar_id, *_ = setup
    http.post(f"/v1/calendars/{calendar_id}/events", headers=headers, json=body())
    r = http.request("DELETE", f"/v1/events?calendar_ids%5B%5D={calendar_id}",
                     headers={**headers, "Content-Type": "application/json"}, content=b"{}")
    assert r.status_code == 202
    with gateway.engine.connect() as conn:
        (row,) = conn.execute(select(managed_events)).all()
    assert row.desired is None and row.version == 2
    r = http.request("DELETE", "/v1/events?delete_all=True", headers=headers, content=b"{}")
    assert r.status_code == 202


def test_deleting_an_unknown_event_is_still_202(http, setup):
    headers, calendar_id, *_ = setup
    r = http.request("DELETE", f"/v1/calendars/{calendar_id}/events", headers=headers,
                     json={"event_id": "never-made"})
    assert r.status_code == 202


def test_external_event_edits_need_elevated_permission(http, setup):
    headers, calendar_id, *_ = setup
    payload = body()
    payload.pop("event_id")
    r = http.post(f"/v1/calendars/{calendar_id}/events", headers=headers,
                  json={**payload, "event_uid": "evt_external_x"})
    assert r.status_code == 403 and r.json()["error"] == "insufficient_permission"


def test_concurrent_partial_upserts_of_one_event_lose_nothing(http, gateway, setup):
    """Each request invites one more person: merged inside the row's transaction, every
    one of them is on the event afterwards, whichever order the requests landed in."""
    headers, calendar_id, *_ = setup
    assert http.post(f"/v1/calendars/{calendar_id}/events", headers=headers,
                     json=body(description="Agenda")).status_code == 202
    answers: list[int] = []

    def invite(n: int) -> None:
        r = http.post(f"/v1/calendars/{calendar_id}/events", headers=headers, json=body(
            attendees={"invite": [{"email": f"p{n}@example.org"}]}))
        answers.append(r.status_code)

    threads = [threading.Thread(target=invite, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert answers == [202] * 8
    key = gateway.writes.keys.key(setup[4].subject)
    with gateway.engine.connect() as conn:
        row = conn.execute(select(managed_events)).one()
    stored = DesiredEvent.from_stored(unseal(key, row.desired,
                                             managed_context(calendar_id, "e1")))
    assert sorted(a.email for a in stored.attendees) == [f"p{n}@example.org" for n in range(8)]
    assert stored.description == "Agenda" and row.version == 9


def test_a_re_upsert_through_the_memory_provider_keeps_the_rest(http, gateway, setup):
    headers, calendar_id, *_ = setup
    first = body(description="Agenda", url="https://app.example/1", event_private=True,
                 attendees={"invite": [{"email": "a@example.org"}, {"email": "b@example.org"}]})
    assert http.post(f"/v1/calendars/{calendar_id}/events", headers=headers,
                     json=first).status_code == 202
    assert http.post(f"/v1/calendars/{calendar_id}/events", headers=headers, json=body(
        summary="Renamed", attendees={"reject": [{"email": "b@example.org"}]})
    ).status_code == 202
    for managed_id in gateway.worker.outbox.due():
        assert aio.run(gateway.worker.outbox.apply(managed_id)).ok
    (event,) = http.get("/v1/events", headers=headers, params={
        "tzid": "Etc/UTC", "only_managed": "true"}).json()["events"]
    assert (event["summary"], event["description"], event["url"]) == (
        "Renamed", "Agenda", "https://app.example/1")
    assert event["event_private"] is True and event["transparency"] == "opaque"
    assert [a["email"] for a in event["attendees"]] == ["a@example.org"]


ZOOM = {"profile_id": "explicit", "provider_description": "Zoom",
        "join_url": "https://zoom.example/j/123?pwd=abc"}


@pytest.mark.parametrize(("conferencing", "field", "key"), [
    ({"profile_id": "explicit", "join_url": ZOOM["join_url"]},
     "conferencing.provider_description", "errors.required"),
    ({"profile_id": "explicit", "provider_description": "Zoom"},
     "conferencing.join_url", "errors.required"),
    (ZOOM | {"join_url": "http://zoom.example/j/123"}, "conferencing.join_url",
     "errors.invalid"),
    (ZOOM | {"join_url": "javascript:alert(1)"}, "conferencing.join_url", "errors.invalid"),
    (ZOOM | {"join_url": "https://zoom.example/j/1 2"}, "conferencing.join_url",
     "errors.invalid"),
    (ZOOM | {"provider_description": "Zoom\nInc"}, "conferencing.provider_description",
     "errors.invalid"),
    (ZOOM | {"provider_description": 7}, "conferencing.provider_description",
     "errors.required"),
    ({"profile_id": "pro_zoom_1"}, "conferencing", "errors.unsupported"),
])
def test_explicit_conferencing_needs_a_description_and_an_https_link(
        http, setup, conferencing, field, key):
    headers, calendar_id, *_ = setup
    r = http.post(f"/v1/calendars/{calendar_id}/events", headers=headers,
                  json=body(conferencing=conferencing))
    assert errors_of(r) == {field: [key]}


def test_explicit_conferencing_is_written_and_read_back(http, gateway, setup):
    headers, calendar_id, name, upstream_cal, profile = setup
    r = http.post(f"/v1/calendars/{calendar_id}/events", headers=headers,
                  json=body(conferencing=ZOOM))
    assert r.status_code == 202, r.text
    from tests.support import aio

    for managed_id in gateway.worker.outbox.due():
        assert aio.run(gateway.worker.outbox.apply(managed_id)).ok
    (written,) = [e for evs in WORLD.accounts[name].calendars[upstream_cal].resources.values()
                  for e in evs]
    assert (written.meeting_url, written.conference_name, written.location) == (
        ZOOM["join_url"], "Zoom", ZOOM["join_url"])  # no location given: the link is it
    sync(gateway, profile.profile_id)
    (event,) = http.get("/v1/events", headers=headers, params={
        "tzid": "Etc/UTC", "include_managed": "true"}).json()["events"]
    assert event["conferencing"] == {"provider_name": "Zoom", "join_url": ZOOM["join_url"]}
    assert event["meeting_url"] == ZOOM["join_url"]
    assert event["location"] == {"description": ZOOM["join_url"]}

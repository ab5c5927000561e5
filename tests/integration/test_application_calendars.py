"""Application calendars (API.md s2.2, s3.2, s11): ``POST /v1/application_calendars``
provisions a calendar the client app owns, kept by Calgate with no upstream; events are
written through the outbox like any other and live in the mirror, which is erased with the
account when the authorization is revoked.

pycronofy 2.1.1, unmodified, drives the journey against a real uvicorn server in this
process; the outbox and sync run in-process, as the worker would run them.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from pycronofy.exceptions import PyCronofyRequestError
from sqlalchemy import func, select, update

from gateway.app import create_app, provider_options
from gateway.persistence.tables import accounts, calendars, events, managed_events, profiles
from gateway.services.application_calendars import ApplicationCalendars
from tests.support import aio
from tests.support.oauth import make_client
from tests.support.oauth_extra import api, creds, post, refresh, revoke
from tests.support.served import sdk, serving

SOON = datetime.now(UTC).replace(microsecond=0) + timedelta(days=2)


def when(hours: float) -> str:
    return (SOON + timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture
def served(gateway) -> Iterator[str]:
    with serving(create_app(gateway)) as url:
        yield url


def apply_writes(gateway) -> None:
    """What the worker does with due writes: put them through the provider into the mirror."""
    outbox = gateway.worker.outbox
    for managed_id in outbox.due():
        assert aio.run(outbox.apply(managed_id)).ok


def sync(gateway, subject: str) -> None:
    with gateway.engine.begin() as conn:
        profile_id = conn.execute(select(profiles.c.id)
                                  .where(profiles.c.account_id == subject)).scalar_one()
        conn.execute(update(profiles).where(profiles.c.id == profile_id)
                     .values(next_sync_at=datetime.now(UTC)))
    outcome = aio.run(gateway.worker.sync.sync_profile(profile_id))
    assert outcome.ran and outcome.error is None, outcome


def rows_of(gateway, subject: str) -> int:
    """The account's rows: account, profiles, calendars, events and writes."""
    with gateway.engine.connect() as conn:
        owned = select(calendars.c.id).join(profiles, profiles.c.id == calendars.c.profile_id) \
            .where(profiles.c.account_id == subject)
        counts = [
            conn.execute(select(func.count()).select_from(accounts)
                         .where(accounts.c.id == subject)).scalar_one(),
            conn.execute(select(func.count()).select_from(profiles)
                         .where(profiles.c.account_id == subject)).scalar_one(),
            conn.execute(select(func.count()).select_from(events)
                         .where(events.c.calendar_id.in_(owned))).scalar_one(),
            conn.execute(select(func.count()).select_from(managed_events)
                         .where(managed_events.c.account_id == subject)).scalar_one(),
        ]
    return sum(counts)


def test_pycronofy_application_calendar_journey(http, gateway, served):
    client = make_client(gateway, scopes="read_account")  # the app calendar needs no scope
    app = sdk(served, client.client_id, client.secret)
    got = app.application_calendar("tutor-bookings")
    assert got["sub"].startswith("apc_") and got["application_calendar_id"] == "tutor-bookings"
    assert got["access_token"] and got["refresh_token"]

    listed = app.list_calendars()  # at once, before any sync
    assert [(c["provider_name"], c["calendar_primary"], c["calendar_readonly"])
            for c in listed] == [("cronofy", True, False)]
    calendar_id = listed[0]["calendar_id"]
    info = app.userinfo()
    assert info["sub"] == got["sub"] and info["cronofy.type"] == "application_calendar"
    assert info["application_calendar_id"] == "tutor-bookings"
    assert info["cronofy.data"]["application_calendar"] == {
        "application_calendar_id": "tutor-bookings"}
    assert [(p["provider_name"], p["provider_service"])
            for p in info["cronofy.data"]["profiles"]] == [("cronofy", "cronofy")]
    assert info["cronofy.data"]["authorization"]["scope"] == "read_write"

    app.upsert_event(calendar_id, {"event_id": "lesson-1", "summary": "Algebra",
                                   "description": "Chapter 3", "start": when(0),
                                   "end": when(1)})
    apply_writes(gateway)
    sync(gateway, got["sub"])  # the worker's first sync keeps what the store holds
    read = list(app.read_events(calendar_ids=(calendar_id,), from_date=when(-24)[:10],
                                to_date=when(48)[:10], only_managed=True))
    assert [(e["event_id"], e["summary"], e["description"], e["start"], e["end"])
            for e in read] == [("lesson-1", "Algebra", "Chapter 3", when(0), when(1))]
    busy = list(app.read_free_busy(calendar_ids=(calendar_id,), from_date=when(-24)[:10],
                                   to_date=when(48)[:10]))
    assert [(b["start"], b["end"], b["free_busy_status"]) for b in busy] == \
        [(when(0), when(1), "busy")]

    with pytest.raises(PyCronofyRequestError) as refused:
        app.upsert_event(calendar_id, {"event_id": "lesson-2", "summary": "Group",
                                       "start": when(2), "end": when(3),
                                       "attendees": {"invite": [{"email": "a@example.com"}]}})
    assert refused.value.response.status_code == 422
    assert list(refused.value.response.json()["errors"]) == ["attendees"]

    again = sdk(served, client.client_id, client.secret).application_calendar("tutor-bookings")
    assert again["sub"] == got["sub"] and again["access_token"] != got["access_token"]

    app.upsert_event(calendar_id, {"event_id": "lesson-1", "summary": "Algebra II",
                                   "start": when(0), "end": when(2)})
    apply_writes(gateway)
    assert [(e["summary"], e["end"]) for e in app.read_events(
        calendar_ids=(calendar_id,), from_date=when(-24)[:10], to_date=when(48)[:10],
        only_managed=True)] == [("Algebra II", when(2))]
    app.delete_event(calendar_id, "lesson-1")
    apply_writes(gateway)
    sync(gateway, got["sub"])
    assert list(app.read_events(calendar_ids=(calendar_id,), from_date=when(-24)[:10],
                                to_date=when(48)[:10], only_managed=True)) == []

    assert rows_of(gateway, got["sub"]) > 0
    app.revoke_authorization()
    assert rows_of(gateway, got["sub"]) == 0
    assert api(http, again["access_token"], "/v1/calendars").status_code == 401


def test_the_mirror_keeps_the_events_through_a_full_resync(http, gateway):
    """The store is the mirror: a resync from scratch (no cursor) must not tombstone the
    events, as it would for an upstream that no longer lists them."""
    client = make_client(gateway)
    body = post(http, "/v1/application_calendars",
                creds(client) | {"application_calendar_id": "rooms"}, as_json=True).json()
    headers = {"Authorization": f"Bearer {body['access_token']}"}
    calendar_id = http.get("/v1/calendars", headers=headers).json()["calendars"][0][
        "calendar_id"]
    r = http.post(f"/v1/calendars/{calendar_id}/events", headers=headers, json={
        "event_id": "r1", "summary": "Room", "start": when(0), "end": when(1)})
    assert r.status_code == 202, r.text
    apply_writes(gateway)
    with gateway.engine.begin() as conn:
        conn.execute(update(calendars).where(calendars.c.id == calendar_id)
                     .values(cursor=None))
    sync(gateway, body["sub"])
    read = http.get("/v1/events", headers=headers, params={
        "tzid": "Etc/UTC", "from": when(-24)[:10], "to": when(48)[:10], "only_managed": "true"})
    assert [e["event_id"] for e in read.json()["events"]] == ["r1"]


def test_tokens_refresh_and_revoke_by_sub(http, gateway):
    """The tokens are a confidential client's: the refresh token is kept. Revoking by
    ``sub`` ends it; another client cannot revoke or reach it."""
    client, other = make_client(gateway), make_client(gateway)
    body = post(http, "/v1/application_calendars",
                creds(client) | {"application_calendar_id": "a"}).json()
    assert body["scope"] == "read_write" and body["linking_profile"]["provider_name"] == \
        "cronofy"
    renewed = refresh(http, client, body["refresh_token"])
    assert renewed.status_code == 200 and renewed.json()["refresh_token"] == body["refresh_token"]
    theirs = post(http, "/v1/application_calendars",
                  creds(other) | {"application_calendar_id": "a"}).json()
    assert theirs["sub"] != body["sub"]  # the same id names each client's own calendar
    assert revoke(http, other, sub=body["sub"]).status_code == 200
    assert api(http, body["access_token"], "/v1/account").status_code == 200
    assert revoke(http, client, sub=body["sub"]).status_code == 200
    assert api(http, body["access_token"], "/v1/account").status_code == 401
    assert rows_of(gateway, body["sub"]) == 0
    fresh = post(http, "/v1/application_calendars",
                 creds(client) | {"application_calendar_id": "a"}).json()
    assert fresh["sub"] != body["sub"]  # a new, empty calendar


@pytest.mark.parametrize(("data", "status", "error"), [
    ({"application_calendar_id": ""}, 422, "application_calendar_id"),
    ({}, 422, "application_calendar_id"),
    ({"application_calendar_id": "x" * 201}, 422, "application_calendar_id"),
    ({"application_calendar_id": "a", "client_secret": "wrong"}, 401, "invalid_client"),
])
def test_bad_requests(http, gateway, data, status, error):
    client = make_client(gateway)
    r = post(http, "/v1/application_calendars", creds(client) | data, as_json=True)
    assert r.status_code == status, r.text
    assert error in (r.json().get("errors") or {r.json()["error"]: None})


def test_a_public_client_cannot_have_one(http, gateway):
    client = make_client(gateway, public=True)
    r = post(http, "/v1/application_calendars",
             creds(client) | {"application_calendar_id": "a"})
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"


def test_simultaneous_first_calls_make_one_account(gateway):
    """Several first calls for the same calendar at once (an app's retries, two of its
    servers) all get the one account, with its one profile and calendar."""
    service = ApplicationCalendars(gateway.engine, gateway.accounts,
                                   provider_options(gateway.settings))
    client = make_client(gateway)
    callers = 6
    for attempt in range(3):  # each round is a fresh calendar: a fresh race
        name = f"bookings-{attempt}"
        start = threading.Barrier(callers)

        def first_call(name: str = name, start: threading.Barrier = start):
            start.wait()
            return service.provision(client.client_id, name, ["read_events"])

        with ThreadPoolExecutor(callers) as pool:
            made = [f.result() for f in [pool.submit(first_call) for _ in range(callers)]]
        assert len({(m.subject, m.profile_id) for m in made}) == 1, made
        with gateway.engine.connect() as conn:
            subjects = conn.execute(select(accounts.c.id).where(
                accounts.c.client_id == client.client_id)).scalars().all()
            listed = conn.execute(select(func.count()).select_from(calendars).join(
                profiles, profiles.c.id == calendars.c.profile_id).where(
                profiles.c.account_id == made[0].subject)).scalar_one()
        assert len(subjects) == attempt + 1 and made[0].subject in subjects
        assert listed == 1

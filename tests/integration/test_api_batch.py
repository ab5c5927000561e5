"""POST /v1/batch (API.md s11), its progress (GET /v1/batch/{id}), and the outbox holding a
profile's writes back when its upstream says "slow down"; on both databases."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from gateway.domain.desired import DesiredEvent
from gateway.persistence.tables import batch_entries, batches, calendars, managed_events
from gateway.services.accounts import PendingAccount
from providers.google import oauth as google_oauth
from providers.google.mapping import MANAGED_KEY
from providers.memory.provider import WORLD
from tests.conftest import ISSUER
from tests.emulators.google import GoogleEmulator
from tests.emulators.google.shared import new_email
from tests.integration.test_caldav_sync_api import sync
from tests.support import aio

WRITE = "list_calendars read_events create_event delete_event"


def stamp(hours: float) -> str:
    moment = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    return (moment + timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M:%SZ")


def upsert(calendar_id: str, event_id: str | None, n: int = 1, **changes) -> dict:
    data = {"event_id": event_id, "summary": f"Session {n}", "start": stamp(24 + n),
            "end": stamp(25 + n)} | changes
    return {"method": "POST", "relative_url": f"/v1/calendars/{calendar_id}/events",
            "data": {k: v for k, v in data.items() if v is not None}}


def delete(calendar_id: str, event_id: str) -> dict:
    return {"method": "DELETE", "relative_url": f"/v1/calendars/{calendar_id}/events",
            "data": {"event_id": event_id}}


def drain(outbox) -> None:
    async def go():
        for _ in range(3):
            for managed_id in outbox.due():
                await outbox.apply(managed_id)
    aio.run(go())


def summaries(account) -> list[str]:
    resources = WORLD.accounts[account.upstream].calendars[account.upstream_calendar].resources
    return sorted(e.summary for evs in resources.values() for e in evs)


def progress(http, headers, batch_id: str) -> dict:
    r = http.get(f"/v1/batch/{batch_id}", headers=headers)
    assert r.status_code == 200, r.text
    return r.json()["batch"]


def counts(body: dict) -> tuple[int, ...]:
    return tuple(body[k] for k in ("entries", "accepted", "rejected", "applied", "pending",
                                   "failed"))


@pytest.fixture
def account(link):
    linked = link(WRITE)
    linked.sync()
    return linked


def test_a_mixed_batch_answers_207_entry_by_entry(http, gateway, account):
    headers, cal = account.token(WRITE), account.calendar_id
    r = http.post(f"/v1/calendars/{cal}/events", headers=headers, json=upsert(cal, "old")["data"])
    assert r.status_code == 202
    drain(gateway.worker.outbox)
    assert summaries(account) == ["Session 1"]

    r = http.post("/v1/batch", headers=headers, json={"batch": [
        upsert(cal, "e1", 2), upsert(cal, "e2", 3), delete(cal, "old"),
        upsert(cal, None, 4),                                    # no event_id
        upsert("cal_nope", "e3", 5),                             # not this account's calendar
        {**upsert(cal, "e4", 6), "method": "PUT"},
        {**upsert(cal, "e5", 7), "relative_url": "/v1/availability_rules"},
        upsert(cal, "e6", 8, summary=None, end=stamp(20)),       # two problems, first reported
        delete(cal, "never-made"),                               # a no-op: still 202
    ]})
    assert r.status_code == 207, r.text
    body = r.json()
    assert set(body) == {"batch", "batch_id"} and body["batch_id"].startswith("bat_")
    assert r.headers["location"] == f"{ISSUER}/v1/batch/{body['batch_id']}"
    entries = body["batch"]
    assert [e["status"] for e in entries] == [202, 202, 202, 422, 404, 422, 422, 422, 202]
    assert [e for e in entries if e["status"] == 202] == [{"status": 202}] * 4  # no data key
    assert entries[3]["data"] == {"errors": {"event_id": [
        {"key": "errors.required", "description": "event_id must be specified"}]}}
    assert entries[4]["data"] == {"error": "not_found"}
    assert entries[5]["data"]["errors"]["method"][0]["key"] == "errors.unsupported"
    assert entries[6]["data"]["errors"]["relative_url"][0]["key"] == "errors.unsupported"
    assert list(entries[7]["data"]["errors"]) == ["summary"]

    before = progress(http, headers, body["batch_id"])
    assert counts(before) == (9, 4, 5, 1, 3, 0)  # the no-op delete has nothing to wait for
    assert before["failures"] == [] and before["created_at"].endswith("Z")
    datetime.strptime(before["created_at"], "%Y-%m-%dT%H:%M:%SZ")
    drain(gateway.worker.outbox)
    assert counts(progress(http, headers, body["batch_id"])) == (9, 4, 5, 4, 0, 0)
    assert summaries(account) == ["Session 2", "Session 3"]

    with gateway.engine.connect() as conn:
        rows = conn.execute(select(batch_entries).order_by(batch_entries.c.position)).all()
        mine = dict(conn.execute(select(managed_events.c.event_id, managed_events.c.id)).all())
    assert [(r.position, r.status) for r in rows] == list(enumerate(
        [202, 202, 202, 422, 404, 422, 422, 422, 202]))
    assert [(r.managed_id, r.version) for r in rows[:3]] == [
        (mine["e1"], 1), (mine["e2"], 1), (mine["old"], 2)]
    assert all(r.managed_id is None and r.version is None for r in rows[3:])


def test_more_than_50_entries_are_refused_and_50_are_not(http, gateway, account):
    headers, cal = account.token(WRITE), account.calendar_id
    r = http.post("/v1/batch", headers=headers,
                  json={"batch": [upsert(cal, f"e{n}", n) for n in range(51)]})
    assert r.status_code == 422
    (error,) = r.json()["errors"]["batch"]
    assert error["key"] == "errors.too_long" and "50" in error["description"]
    assert set(r.json()) == {"errors"}
    for empty in ({}, {"batch": []}, {"batch": "x"}):
        r = http.post("/v1/batch", headers=headers, json=empty)
        assert r.status_code == 422 and "batch" in r.json()["errors"], empty
    with gateway.engine.connect() as conn:
        assert conn.execute(select(managed_events)).all() == []
        assert conn.execute(select(batches)).all() == []

    r = http.post("/v1/batch", headers=headers,
                  json={"batch": [upsert(cal, f"e{n}", n) for n in range(50)]})
    assert r.status_code == 207
    assert [e["status"] for e in r.json()["batch"]] == [202] * 50
    drain(gateway.worker.outbox)
    assert counts(progress(http, headers, r.json()["batch_id"])) == (50, 50, 0, 50, 0, 0)
    assert len(summaries(account)) == 50


def test_each_entry_needs_its_own_scope(http, gateway, account):
    cal = account.calendar_id
    writer = account.token("list_calendars create_event")
    r = http.post("/v1/batch", headers=writer, json={"batch": [
        upsert(cal, "e1"), delete(cal, "e1"), upsert(cal, "e2", 2)]})
    assert r.status_code == 207
    assert r.json()["batch"] == [
        {"status": 202},
        {"status": 403, "data": {"error": "insufficient_scope",
                                 "required_scope": "delete_event"}},
        {"status": 202}]
    reader = account.token("read_events")
    r = http.post("/v1/batch", headers=reader, json={"batch": [upsert(cal, "e3", 3)]})
    assert r.status_code == 207
    assert r.json()["batch"][0]["data"]["required_scope"] == "create_event"
    # Any token of the account reads the progress.
    assert counts(progress(http, reader, r.json()["batch_id"])) == (1, 0, 1, 0, 0, 0)
    with gateway.engine.connect() as conn:
        assert sorted(conn.execute(select(managed_events.c.event_id)).scalars()) == ["e1", "e2"]
    assert http.post("/v1/batch", json={"batch": [upsert(cal, "e4")]}).status_code == 401


def test_read_only_calendars_and_external_events_are_403_entries(http, gateway, account):
    headers, cal = account.token(WRITE), account.calendar_id
    external = upsert(cal, None, event_uid="evt_external_1")
    # A sandbox calendar (no elevated permissions): external edits are refused as the single
    # endpoint refuses them (tests/integration/test_api_elevated.py covers the approved case).
    r = http.post("/v1/batch", headers=headers, json={"batch": [external]})
    assert r.status_code == 207
    assert r.json()["batch"] == [
        {"status": 403, "data": {"error": "insufficient_permission", "description": (
            "changing events the app did not create needs elevated permissions for this "
            "calendar (POST /v1/permissions)")}}]
    with gateway.engine.begin() as conn:
        conn.execute(update(calendars).where(calendars.c.id == cal).values(readonly=True))
    r = http.post("/v1/batch", headers=headers, json={"batch": [upsert(cal, "e1"), external]})
    assert r.status_code == 207
    assert r.json()["batch"] == [{"status": 403, "data": {"error": "calendar_readonly"}}] * 2


def test_a_batch_is_visible_to_its_own_account_only(http, gateway, link, account):
    headers, cal = account.token(WRITE), account.calendar_id
    batch_id = http.post("/v1/batch", headers=headers,
                         json={"batch": [upsert(cal, "e1")]}).json()["batch_id"]
    other = link(WRITE)
    r = http.get(f"/v1/batch/{batch_id}", headers=other.token(WRITE))
    assert r.status_code == 404 and r.json() == {"error": "not_found"}
    assert http.get("/v1/batch/bat_unknown", headers=headers).status_code == 404
    assert http.get(f"/v1/batch/{batch_id}").status_code == 401
    assert progress(http, headers, batch_id)["batch_id"] == batch_id


def test_writes_the_upstream_refuses_are_reported_as_failed(http, gateway, account):
    headers, cal = account.token(WRITE), account.calendar_id
    upstream = WORLD.accounts[account.upstream].calendars[account.upstream_calendar]
    r = http.post("/v1/batch", headers=headers, json={"batch": [
        upsert(cal, "e1", 1), upsert(cal, "e2", 2)]})
    batch_id = r.json()["batch_id"]
    upstream.calendar = replace(upstream.calendar, readonly=True)  # the owner shares it away
    drain(gateway.worker.outbox)
    body = progress(http, headers, batch_id)
    assert counts(body) == (2, 2, 0, 0, 0, 2)
    assert body["failures"] == [{"position": 0, "error": "read-only calendar"},
                                {"position": 1, "error": "read-only calendar"}]


# -- the outbox: a throttled or failing upstream holds back its profile's writes -----------

def rows_of(gateway) -> dict[int, tuple[datetime, int, str | None]]:
    with gateway.engine.connect() as conn:
        rows = conn.execute(select(managed_events.c.id, managed_events.c.next_attempt_at,
                                   managed_events.c.attempts, managed_events.c.last_error))
        return {r.id: (r.next_attempt_at.replace(tzinfo=UTC), r.attempts, r.last_error)
                for r in rows}


def test_an_unavailable_upstream_holds_back_that_profiles_writes_only(http, gateway, link):
    busy, calm = link(WRITE), link(WRITE)
    busy.sync()
    calm.sync()
    r = http.post("/v1/batch", headers=busy.token(WRITE), json={"batch": [
        upsert(busy.calendar_id, f"b{n}", n) for n in range(5)]})
    assert r.status_code == 207
    r = http.post("/v1/batch", headers=calm.token(WRITE),
                  json={"batch": [upsert(calm.calendar_id, "c0")]})
    with gateway.engine.connect() as conn:
        ids = dict(conn.execute(select(managed_events.c.event_id, managed_events.c.id)).all())
    outbox = gateway.worker.outbox
    WORLD.down = True  # 503 from the upstream (here: every in-memory account)
    try:
        assert not aio.run(outbox.apply(ids["b0"])).ok
    finally:
        WORLD.down = False

    rows = rows_of(gateway)
    retry_at, attempts, error = rows[ids["b0"]]
    assert attempts == 1 and "down" in error and retry_at > datetime.now(UTC)
    for n in range(1, 5):  # held back to the same moment, neither tried nor failed
        assert rows[ids[f"b{n}"]] == (retry_at, 0, None)
    assert outbox.due() == [ids["c0"]]  # the other profile's write goes ahead
    drain(outbox)
    assert summaries(calm) == ["Session 1"] and summaries(busy) == []

    with gateway.engine.begin() as conn:  # the retry time comes
        conn.execute(update(managed_events).values(next_attempt_at=datetime.now(UTC)))
    drain(outbox)
    assert summaries(busy) == [f"Session {n}" for n in range(5)]


GOOGLE = "read_account list_calendars read_events create_event delete_event"
EVENTS = r"/calendar/v3/calendars/[^/]+/events$"


@pytest.fixture(scope="module")
def emu():
    """An emulator of this module's own: its faults and request counts are no other's."""
    with GoogleEmulator.running() as emulator:
        emulator.register_app("bt-cid", "bt-secret", "Calgate", ["http://127.0.0.1:9/cb"])
        yield emulator


class TestRateLimitedGoogle:
    @pytest.fixture
    def settings(self, settings, emu):
        return settings.replace(google_url=emu.base_url)

    @pytest.fixture
    def google(self, gateway, emu):
        gateway.apps.configure("google", "bt-cid", "bt-secret")
        email = emu.add_user(new_email("bt"))
        refresh = emu.issue_refresh_token(email, "bt-cid",
                                          google_oauth.upstream_scopes(GOOGLE.split()))
        parked = gateway.accounts.park_credentials(uuid.uuid4().hex, {
            "refresh_token": refresh, "app": "default"})
        profile = gateway.accounts.link("cli_g", PendingAccount(
            "google", "google", email, email, parked), None, GOOGLE.split())
        sync(gateway, profile.profile_id)
        with gateway.engine.connect() as conn:
            calendar_id = conn.execute(select(calendars.c.id).where(
                calendars.c.profile_id == profile.profile_id, calendars.c.primary)).scalar_one()
        yield email, profile.subject, calendar_id
        emu.clear_faults()

    def test_retry_after_holds_the_profiles_writes_until_then(self, http, gateway, emu,
                                                              google, link):
        email, subject, calendar_id = google
        other = link(WRITE)
        other.sync()
        written = [gateway.writes.upsert(subject, calendar_id, f"g{n}", DesiredEvent.from_stored({
            "summary": f"Session {n}", "start": stamp(30 + n)[:-1] + "+00:00",
            "end": stamp(31 + n)[:-1] + "+00:00"}))[0] for n in range(6)]
        calm, _ = gateway.writes.upsert(other.subject, other.calendar_id, "c0",
                                        DesiredEvent.from_stored({
            "summary": "Calm", "start": stamp(30)[:-1] + "+00:00",
            "end": stamp(31)[:-1] + "+00:00"}))
        # Past the provider's own retry budget (60 s of sleep per call): handed to the outbox.
        emu.inject_fault(EVENTS, method="POST", status=429, retry_after=120, times=1)
        emu.clear_requests()
        outbox = gateway.worker.outbox
        for managed_id in outbox.due():  # the worker's sweep: the first write is throttled
            aio.run(outbox.apply(managed_id))

        assert emu.count(method="POST", path="/events") == 1  # Google was asked once only
        rows = rows_of(gateway)
        retry_at, attempts, _error = rows[written[0]]
        assert attempts == 1
        assert 110 < (retry_at - datetime.now(UTC)).total_seconds() <= 120
        assert {rows[i][0] for i in written[1:]} == {retry_at}
        assert all(rows[i][1:] == (0, None) for i in written[1:])
        assert outbox.due() == [] and gateway.writes.applied(calm, 1)

        with gateway.engine.begin() as conn:  # two minutes later
            conn.execute(update(managed_events).values(next_attempt_at=datetime.now(UTC)))
        drain(outbox)
        upstream = [e for e in emu.events(email) if e["summary"].startswith("Session ")]
        keys = [e["extendedProperties"]["private"][MANAGED_KEY] for e in upstream]
        assert len(upstream) == 6 and len(set(keys)) == 6

"""POST /v1/calendars/{id}/events/{event_uid}/participation_status (API.md s6.5): queued like
any write and sent upstream by the worker."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from gateway.services.accounts import PendingAccount
from providers.memory.provider import WORLD
from providers.model import Event, Person
from tests.integration.test_caldav_sync_api import bearer_for, sync
from tests.support import aio

SCOPE = "read_events list_calendars change_participation_status"


@pytest.fixture
def invited(http, gateway):
    name = f"p-{uuid.uuid4().hex[:8]}@example.com"
    upstream = WORLD.add_account(name, "pw")
    calendar = next(iter(upstream.calendars))
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=2)
    WORLD.put(name, calendar, "invite-1", [Event(
        resource_id="invite-1", instance_id="invite-1", start=start,
        end=start + timedelta(hours=1), summary="Board meeting",
        participation_status="needs_action",
        attendees=(Person(name, "Owner"), Person("boss@example.com", "Boss")))])
    parked = gateway.accounts.park_credentials(uuid.uuid4().hex,
                                               {"account": name, "password": "pw"})
    profile = gateway.accounts.link("cli_x", PendingAccount("memory", "memory", name, name,
                                                            parked), None, SCOPE.split())
    sync(gateway, profile.profile_id)
    headers = bearer_for(http, gateway, profile.subject, SCOPE)
    (event,) = http.get("/v1/events", headers=headers, params={"tzid": "Etc/UTC"}).json()[
        "events"]
    yield headers, event, name, calendar, profile
    WORLD.accounts.pop(name, None)


def test_answer_is_queued_then_sent_upstream(http, gateway, invited):
    headers, event, name, calendar, _profile = invited
    assert event["participation_status"] == "needs_action"
    assert event["options"]["change_participation_status"] is True
    url = (f"/v1/calendars/{event['calendar_id']}/events/{event['event_uid']}"
           "/participation_status")
    r = http.post(url, headers=headers, json={"status": "accepted"})
    assert r.status_code == 202 and r.content == b""
    answers = gateway.worker.answers
    for answer_id in answers.due():
        assert aio.run(answers.apply(answer_id)).ok
    (upstream,) = WORLD.accounts[name].calendars[calendar].resources["invite-1"]
    assert upstream.participation_status == "accepted"
    assert answers.due() == []


def test_bad_status_unknown_event_and_missing_scope(http, gateway, invited):
    headers, event, _name, _calendar, profile = invited
    base = f"/v1/calendars/{event['calendar_id']}/events"
    r = http.post(f"{base}/{event['event_uid']}/participation_status", headers=headers,
                  json={"status": "maybe"})
    assert r.status_code == 422 and "status" in r.json()["errors"]
    r = http.post(f"{base}/evt_external_nope/participation_status", headers=headers,
                  json={"status": "declined"})
    assert r.status_code == 404
    reader = bearer_for(http, gateway, profile.subject, "read_events")
    r = http.post(f"{base}/{event['event_uid']}/participation_status", headers=reader,
                  json={"status": "declined"})
    assert r.status_code == 403
    assert r.json()["required_scope"] == "change_participation_status"

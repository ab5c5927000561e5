"""Read your own writes (issue 13): an accepted upsert or delete shows in the app's next
read at once, before the worker has applied it upstream, with a stable ``event_uid``."""

from __future__ import annotations

from dataclasses import replace

from gateway.persistence.tables import profiles
from providers.memory.provider import WORLD
from tests.integration import test_api_writes
from tests.integration.test_api_writes import body, stamp
from tests.integration.test_caldav_sync_api import sync
from tests.support import aio
from tests.support.openapi_check import conforms

setup = test_api_writes.setup  # the linked memory account with one calendar (a fixture)
MANAGED = "/v1/events?tzid=Etc/UTC&include_managed=true"
EVENTS = "/v1/calendars/{calendar_id}/events"


def apply_writes(gateway) -> None:
    """What the worker does with accepted writes."""
    for managed_id in gateway.worker.outbox.due():
        aio.run(gateway.worker.outbox.apply(managed_id))


def managed(http, headers, query: str = MANAGED) -> dict[str, dict]:
    return {e["event_id"]: e for e in http.get(query, headers=headers).json()["events"]
            if "event_id" in e}


def test_an_upsert_shows_at_once_and_keeps_its_event_uid(http, gateway, setup):
    headers, calendar_id, name, upstream_cal, profile = setup
    sent = body()
    r = http.post(f"/v1/calendars/{calendar_id}/events", headers=headers, json=sent)
    assert r.status_code == 202
    pending = managed(http, headers)["e1"]
    assert pending["summary"] == "Session" and pending["calendar_id"] == calendar_id
    assert (pending["start"], pending["end"]) == (sent["start"], sent["end"])
    assert pending["calgate_write"] == {"status": "pending"}
    assert pending["deleted"] is False and pending["event_uid"].startswith("evt_managed_")
    assert not WORLD.accounts[name].calendars[upstream_cal].resources  # not upstream yet

    apply_writes(gateway)
    applied = managed(http, headers)["e1"]
    assert "calgate_write" not in applied
    assert applied["event_uid"] == pending["event_uid"]
    sync(gateway, profile.profile_id)
    synced = managed(http, headers)
    assert list(synced) == ["e1"] and synced["e1"]["event_uid"] == pending["event_uid"]

    http.post(f"/v1/calendars/{calendar_id}/events", headers=headers,
              json=body(summary="Moved"))
    moved = managed(http, headers)["e1"]
    assert moved["summary"] == "Moved" and moved["calgate_write"] == {"status": "pending"}
    assert moved["event_uid"] == pending["event_uid"]
    sync(gateway, profile.profile_id)  # the upstream's older copy does not win meanwhile
    assert managed(http, headers)["e1"]["summary"] == "Moved"


def test_a_delete_disappears_at_once(http, gateway, setup):
    headers, calendar_id, name, upstream_cal, profile = setup
    http.post(f"/v1/calendars/{calendar_id}/events", headers=headers, json=body())
    apply_writes(gateway)
    uid = managed(http, headers)["e1"]["event_uid"]
    r = http.request("DELETE", f"/v1/calendars/{calendar_id}/events", headers=headers,
                     json={"event_id": "e1"})
    assert r.status_code == 202
    assert managed(http, headers) == {}
    gone = managed(http, headers, MANAGED + "&include_deleted=true")["e1"]
    assert gone["deleted"] is True and gone["event_uid"] == uid
    assert gone["calgate_write"] == {"status": "pending"}
    assert WORLD.accounts[name].calendars[upstream_cal].resources  # still upstream
    sync(gateway, profile.profile_id)
    assert managed(http, headers) == {}  # the upstream's copy does not come back
    apply_writes(gateway)
    assert not WORLD.accounts[name].calendars[upstream_cal].resources
    assert "calgate_write" not in managed(http, headers, MANAGED + "&include_deleted=true")["e1"]


def test_only_managed_last_modified_and_free_busy_see_the_pending_write(http, setup):
    headers, calendar_id, *_ = setup
    before = http.get(MANAGED, headers=headers).json()["events"]
    since = stamp(-0.001)
    sent = body()
    http.post(f"/v1/calendars/{calendar_id}/events", headers=headers, json=sent)
    assert set(managed(http, headers, "/v1/events?tzid=Etc/UTC&only_managed=true")) == {"e1"}
    changed = managed(http, headers, f"{MANAGED}&last_modified={since}")
    assert set(changed) == {"e1"}
    blocks = http.get("/v1/free_busy?tzid=Etc/UTC&include_managed=true",
                      headers=headers).json()["free_busy"]
    assert {"calendar_id": calendar_id, "start": sent["start"], "end": sent["end"],
            "free_busy_status": "busy"} in blocks
    assert len(http.get(MANAGED, headers=headers).json()["events"]) == len(before) + 1
    plain = http.get("/v1/events?tzid=Etc/UTC", headers=headers).json()["events"]
    assert all("event_id" not in e for e in plain)  # managed events stay opt-in


def test_a_create_refused_for_good_stops_showing_as_pending(http, gateway, setup):
    headers, calendar_id, name, upstream_cal, _profile = setup
    cal = WORLD.accounts[name].calendars[upstream_cal]
    cal.calendar = replace(cal.calendar, readonly=True)  # the upstream will refuse it
    http.post(f"/v1/calendars/{calendar_id}/events", headers=headers, json=body())
    apply_writes(gateway)
    assert managed(http, headers) == {}
    refused = managed(http, headers, MANAGED + "&include_deleted=true")["e1"]
    assert refused["deleted"] is True
    assert refused["calgate_write"]["status"] == "failed"


def test_an_update_refused_for_good_shows_the_upstream_again(http, gateway, setup):
    headers, calendar_id, name, upstream_cal, profile = setup
    http.post(f"/v1/calendars/{calendar_id}/events", headers=headers, json=body())
    apply_writes(gateway)
    cal = WORLD.accounts[name].calendars[upstream_cal]
    cal.calendar = replace(cal.calendar, readonly=True)
    http.post(f"/v1/calendars/{calendar_id}/events", headers=headers,
              json=body(summary="Never"))
    assert managed(http, headers)["e1"]["summary"] == "Never"
    apply_writes(gateway)
    with gateway.engine.connect() as conn:  # the refusal made the profile due for a resync
        assert conn.execute(profiles.select()).first().next_sync_at is not None
    sync(gateway, profile.profile_id)
    event = managed(http, headers)["e1"]
    assert event["summary"] == "Session" and event["calgate_write"]["status"] == "failed"


def test_include_userinfo_embeds_userinfo_in_the_write_answer(http, setup):
    headers, calendar_id, *_ = setup
    userinfo = http.get("/v1/userinfo", headers=headers).json()
    r = conforms(http.post(f"/v1/calendars/{calendar_id}/events", headers=headers,
                           json=body(include_userinfo=True)), "POST", EVENTS)
    assert r.status_code == 200 and r.json() == {"userinfo": userinfo}
    assert "preference-applied" not in r.headers  # recorded, not applied yet
    assert managed(http, headers)["e1"]["calgate_write"] == {"status": "pending"}
    r = conforms(http.request(
        "DELETE", f"/v1/calendars/{calendar_id}/events?include_userinfo=true",
        headers=headers, json={"event_id": "e1"}), "DELETE", EVENTS)
    assert r.status_code == 200 and r.json() == {"userinfo": userinfo}
    r = http.post(f"/v1/calendars/{calendar_id}/events", headers=headers,
                  json=body(include_userinfo=False))
    assert r.status_code == 202 and r.content == b""

"""GET /v1/events and /v1/free_busy through the HTTP API, over a mirror filled by the real
sync engine from the in-memory upstream, on both databases.

Accounts are linked with ``gateway.accounts.link`` and tokens minted with the grant store:
the test connector parks ``{"username", "password"}`` while the in-memory provider opens
``{"account", "password"}``, so an account linked through the consent screen cannot sync.
"""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import pytest

from gateway.domain.desired import DesiredEvent
from gateway.domain.managed import managed_key
from providers.memory.provider import WORLD
from providers.model import Person
from tests.conftest import ISSUER
from tests.support.linked import Linked, get, hour, run

BERLIN = ZoneInfo("Europe/Berlin")


@pytest.fixture
def settings(settings):
    """No in-process worker: each test syncs exactly when it says so."""
    return settings.replace(worker_mode="external")


def test_paging_across_120_events_follows_next_page_verbatim(http, link):
    account = link()
    for i in range(120):
        account.put(f"e{i:03}", hour(24 + i))
    account.sync()
    auth = account.token("read_events")
    first = get(http, "/v1/events", auth)
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["pages"]["current"] == 1 and body["pages"]["total"] == 2
    next_page = body["pages"]["next_page"]
    parts = urlsplit(next_page)
    assert next_page.startswith(f"{ISSUER}/v1/events/pages/") and not parts.query
    assert len(body["events"]) == 100
    second = http.get(next_page, headers=auth).json()
    assert second["pages"] == {"current": 2, "total": 2}
    uids = [e["event_uid"] for e in body["events"] + second["events"]]
    assert len(set(uids)) == 120
    starts = [e["start"] for e in body["events"] + second["events"]]
    assert starts == sorted(starts)
    # Node appends leftover options to the page URL: they are ignored.
    again = http.get(next_page + "?tzid=Mars%2FOlympus&calendar_ids%5B%5D=nope", headers=auth)
    assert again.status_code == 200 and again.json()["events"] == second["events"]


def test_page_urls_are_tamper_proof_and_bound_to_the_account(http, link):
    account = link()
    for i in range(101):
        account.put(f"e{i:03}", hour(24 + i))
    account.sync()
    auth = account.token("read_events")
    next_page = get(http, "/v1/events", auth).json()["pages"]["next_page"]
    token = next_page.rsplit("/", 1)[1]
    # A character inside the token: the last one may carry only base64 padding bits.
    middle = len(next_page) - len(token) // 2
    tampered = next_page[:middle] + ("A" if next_page[middle] != "A" else "B") \
        + next_page[middle + 1:]
    for url, headers in [(tampered, auth), (next_page, link().token("read_events"))]:
        r = http.get(url, headers=headers)
        assert r.status_code == 404 and r.json() == {"error": "not_found"}
    # A free/busy page token never opens an events page, and the other way round.
    r = http.get(next_page.replace("/v1/events/", "/v1/free_busy/"), headers=auth)
    assert r.status_code == 404
    assert http.get(next_page).status_code == 401


def test_last_modified_after_an_upstream_edit(http, link):
    account = link()
    account.put("a", hour(24))
    account.put("b", hour(48))
    account.sync()
    since = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=1)
    time.sleep(max(0.0, (since - datetime.now(UTC)).total_seconds()) + 0.01)
    account.put("a", hour(24), summary="Moved and renamed")
    account.sync()
    auth = account.token("read_events")
    r = get(http, "/v1/events", auth, last_modified=since.strftime("%Y-%m-%d %H:%M:%SZ"))
    events = r.json()["events"]
    assert [e["summary"] for e in events] == ["Moved and renamed"]
    assert events[0]["updated"] >= since.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert len(get(http, "/v1/events", auth).json()["events"]) == 2


def test_include_deleted_reports_an_upstream_removal(http, link):
    account = link()
    account.put("keep", hour(24))
    account.put("gone", hour(30))
    account.sync()
    WORLD.remove(account.upstream, account.upstream_calendar, "gone")
    account.sync()
    auth = account.token("read_events")
    live = get(http, "/v1/events", auth).json()["events"]
    assert [e["summary"] for e in live] == ["Event keep"]
    everything = get(http, "/v1/events", auth, include_deleted="true").json()["events"]
    deleted = [e for e in everything if e["deleted"]]
    assert len(everything) == 2 and len(deleted) == 1
    assert "summary" not in deleted[0]  # a tombstone keeps no text


def write_managed(account: Linked, event_id: str, start: datetime) -> None:
    """The app's own event, through the real write path: desired state, outbox, upstream."""
    gateway = account.gateway
    managed_id, _ = gateway.writes.upsert(
        account.subject, account.calendar_id, event_id, DesiredEvent.from_stored({
            "summary": f"Managed {event_id}", "description": "ours",
            "start": start.isoformat(), "end": (start + timedelta(hours=1)).isoformat()}))
    assert run(gateway.worker.outbox.apply(managed_id)).ok


def test_managed_events_are_excluded_unless_asked_for(http, link):
    account = link()
    account.put("theirs", hour(24))
    account.sync()
    write_managed(account, "booking-1", hour(30))
    account.sync()
    auth = account.token("read_events")
    plain = get(http, "/v1/events", auth).json()["events"]
    assert [e["summary"] for e in plain] == ["Event theirs"]
    both = get(http, "/v1/events", auth, include_managed="True").json()["events"]
    managed = [e for e in both if "event_id" in e]
    assert len(both) == 2 and managed[0]["event_id"] == "booking-1"
    assert managed[0]["options"] == {"delete": True, "update": True,
                                     "change_participation_status": False}
    theirs = next(e for e in both if "event_id" not in e)
    assert theirs["options"]["update"] is False and theirs["options"]["delete"] is False
    only = get(http, "/v1/events", auth, only_managed="true").json()["events"]
    assert [e["event_id"] for e in only] == ["booking-1"]
    assert managed_key(account.subject, account.calendar_id, "booking-1")  # same key upstream


def test_only_managed_with_a_write_only_token(http, link):
    account = link("read_write")
    account.put("theirs", hour(24))
    account.sync()
    write_managed(account, "mine", hour(26))
    auth = account.token("write_only")
    assert get(http, "/v1/events", auth).status_code == 403
    r = get(http, "/v1/events", auth, only_managed="True")
    assert r.status_code == 200, r.text
    (event,) = r.json()["events"]
    assert event["event_id"] == "mine" and event["summary"] == "Managed mine"
    # Paging re-checks the scope with the sealed query: still only the app's own events.
    assert r.json()["pages"] == {"current": 1, "total": 1}


def test_free_busy_only_token_sees_blocks_and_never_text(http, link):
    account = link("read_write")  # the mirror keeps text; this token must still not see it
    account.put("busy", hour(24), summary="Therapy")
    account.put("maybe", hour(26), summary="Interview", status="tentative")
    account.put("free", hour(28), summary="Lunch", transparency="transparent")
    account.put("off", hour(30), summary="Cancelled", status="cancelled")
    account.sync()
    auth = account.token("read_free_busy")
    r = get(http, "/v1/events", auth)
    assert r.status_code == 403 and r.json()["error"] == "insufficient_scope"
    r = get(http, "/v1/free_busy", auth)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["pages"] == {"current": 1, "total": 1}
    assert [b["free_busy_status"] for b in body["free_busy"]] == ["busy", "tentative"]
    assert set(body["free_busy"][0]) == {"calendar_id", "start", "end", "free_busy_status"}
    for word in ("summary", "Therapy", "Interview", "secret", "description"):
        assert word not in r.text


def test_free_busy_pages_too_with_equal_start_times(http, link):
    account = link()
    for i in range(105):  # one start time for all: the row id breaks the tie
        account.put(f"e{i:03}", hour(24), hour(24) + timedelta(minutes=i + 1))
    account.sync()
    auth = account.token("read_free_busy")
    first = get(http, "/v1/free_busy", auth).json()
    assert first["pages"]["next_page"].startswith(f"{ISSUER}/v1/free_busy/pages/")
    second = http.get(first["pages"]["next_page"], headers=auth).json()
    assert len(first["free_busy"]) == 100 and len(second["free_busy"]) == 5
    ends = {b["end"] for b in first["free_busy"] + second["free_busy"]}
    assert len(ends) == 105  # each block exactly once


def test_page_urls_expire(http, link, monkeypatch):
    account = link()
    for i in range(101):
        account.put(f"e{i:03}", hour(24 + i))
    account.sync()
    auth = account.token("read_events")
    monkeypatch.setattr("gateway.api.events.PAGE_TTL", -1)
    next_page = get(http, "/v1/events", auth).json()["pages"]["next_page"]
    assert http.get(next_page, headers=auth).status_code == 404


def test_all_day_events_are_dates_with_an_exclusive_end(http, link):
    account = link()
    day = (datetime.now(UTC) + timedelta(days=3)).date()
    account.put("holiday", day, day + timedelta(days=2))
    account.sync()
    auth = account.token("read_events")
    (event,) = get(http, "/v1/events", auth, tzid="Europe/Berlin").json()["events"]
    assert event["start"] == day.isoformat()
    assert event["end"] == (day + timedelta(days=2)).isoformat()
    localized = get(http, "/v1/events", auth, tzid="Europe/Berlin",
                    localized_times="true").json()["events"][0]
    assert localized["start"] == {"time": day.isoformat(), "tzid": "Europe/Berlin"}
    # Dates are days in tzid: the day after the event's exclusive end finds nothing.
    after = get(http, "/v1/events", auth, tzid="Pacific/Kiritimati",
                **{"from": (day + timedelta(days=2)).isoformat()}).json()["events"]
    assert after == []


def next_dst_change(now: datetime) -> date:
    """The next last-Sunday-of-March or -October at least two days ahead."""
    for year in (now.year, now.year + 1):
        for month in (3, 10):
            last = date(year, month, 31)
            sunday = last - timedelta(days=(last.weekday() + 1) % 7)
            if sunday > now.date() + timedelta(days=2):
                return sunday
    raise AssertionError("unreachable")


def test_localized_times_across_a_dst_change(http, link):
    account = link()
    change = next_dst_change(datetime.now(UTC))
    before = datetime(change.year, change.month, change.day, 9, tzinfo=UTC) - timedelta(days=1)
    after = before + timedelta(days=2)
    account.put("before", before, start_tzid="Europe/Berlin", end_tzid="Europe/Berlin")
    account.put("after", after)  # no zone of its own: the request's tzid is used
    account.sync()
    auth = account.token("read_events")
    events = get(http, "/v1/events", auth, tzid="Europe/Berlin",
                 localized_times="True").json()["events"]
    got = {e["summary"]: e["start"] for e in events}
    for name, start in (("Event before", before), ("Event after", after)):
        assert got[name] == {"time": start.astimezone(BERLIN).isoformat(),
                             "tzid": "Europe/Berlin"}
    offsets = {got[n]["time"][-6:] for n in got}
    assert offsets == {"+01:00", "+02:00"}
    plain = get(http, "/v1/events", auth, tzid="Europe/Berlin").json()["events"]
    assert plain[0]["start"] == before.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_from_and_to_window_with_to_exclusive(http, link):
    account = link()
    start = hour(48)
    account.put("inside", start)
    account.put("at-to", start + timedelta(hours=5))
    account.put("ended-before", start - timedelta(hours=2))
    account.sync()
    auth = account.token("read_events")
    z = "%Y-%m-%dT%H:%M:%SZ"
    events = get(http, "/v1/events", auth, **{
        "from": start.strftime(z), "to": (start + timedelta(hours=5)).strftime(z)}
    ).json()["events"]
    assert [e["summary"] for e in events] == ["Event inside"]


@pytest.mark.parametrize("params, field, key", [
    ({}, "tzid", "errors.required"),
    ({"tzid": "Mars/Olympus"}, "tzid", "errors.invalid_tzid"),
    ({"tzid": "Etc/UTC", "from": "2026-01-01T10:00:00.250Z"}, "from", "errors.invalid_time"),
])
def test_validation_errors_are_422_bodies(http, link, params, field, key):
    auth = link().token("read_events")
    for path in ("/v1/events", "/v1/free_busy"):
        r = http.get(path, params=params, headers=auth)
        assert r.status_code == 422
        (error,) = r.json()["errors"][field]
        assert error["key"] == key and error["description"]


def test_a_calendar_of_another_account_is_404(http, link):
    mine, theirs = link(), link()
    mine.sync()
    theirs.sync()
    auth = mine.token("read_events")
    for path in ("/v1/events", "/v1/free_busy"):
        r = http.get(path, params={"tzid": "Etc/UTC", "calendar_ids[]": theirs.calendar_id},
                     headers=auth)
        assert r.status_code == 404 and r.json() == {"error": "not_found"}
    ok = http.get("/v1/events", params={"tzid": "Etc/UTC",
                                        "calendar_ids[]": mine.calendar_id}, headers=auth)
    assert ok.status_code == 200


def test_pycronofy_style_request(http, link):
    account = link()
    account.put("a", hour(24), attendees=(Person("x@example.com", "X", "accepted"),),
                organizer=Person("boss@example.com", "Boss"), location="Room 1",
                participation_status="needs_action")
    account.sync()
    auth = account.token("read_only")
    query = ("tzid=Etc%2FUTC&include_managed=True&include_deleted=False&include_moved=False"
             "&include_geo=False&localized_times=False&only_managed=False"
             f"&calendar_ids%5B%5D={account.calendar_id}&unknown_flag=1")
    r = http.request("GET", f"/v1/events?{query}", content=b"{}",
                     headers=auth | {"Content-Type": "application/json"})
    assert r.status_code == 200, r.text
    (event,) = r.json()["events"]
    assert event["location"] == {"description": "Room 1"}
    assert event["organizer"] == {"email": "boss@example.com", "display_name": "Boss"}
    assert event["attendees"] == [{"email": "x@example.com", "display_name": "X",
                                   "status": "accepted"}]
    assert event["participation_status"] == "needs_action"
    assert event["options"]["change_participation_status"] is True
    assert set(event) >= {"calendar_id", "event_uid", "summary", "description", "start",
                          "end", "deleted", "created", "updated", "transparency", "status",
                          "categories", "recurring", "event_private", "options"}
    assert "event_id" not in event


def test_include_moved_with_last_modified_ignores_the_window(http, link):
    account = link()
    account.put("a", hour(24))
    account.sync()
    since = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=1)
    time.sleep(max(0.0, (since - datetime.now(UTC)).total_seconds()) + 0.01)
    account.put("a", hour(24 * 30))  # moved a month later
    account.sync()
    auth = account.token("read_events")
    z = "%Y-%m-%dT%H:%M:%SZ"
    window = {"from": hour(0).strftime(z), "to": hour(24 * 7).strftime(z),
              "last_modified": since.strftime(z)}
    assert get(http, "/v1/events", auth, **window).json()["events"] == []
    moved = get(http, "/v1/events", auth, include_moved="true", **window).json()["events"]
    assert [e["summary"] for e in moved] == ["Event a"]


def test_managed_events_ignore_only_the_default_window(http, link):
    account = link()
    account.sync()
    write_managed(account, "far", hour(24 * 300))  # beyond the 201-day default window
    auth = account.token("read_events")
    events = get(http, "/v1/events", auth, include_managed="true").json()["events"]
    assert [e["event_id"] for e in events] == ["far"]
    bounded = get(http, "/v1/events", auth, include_managed="true",
                  to=(datetime.now(UTC) + timedelta(days=30)).date().isoformat())
    assert bounded.json()["events"] == []
    blocks = get(http, "/v1/free_busy", auth, include_managed="true").json()["free_busy"]
    assert len(blocks) == 1
    assert get(http, "/v1/free_busy", auth).json()["free_busy"] == []


def test_free_busy_include_ids_and_include_free(http, link):
    account = link("read_write")
    account.put("busy", hour(24), summary="Therapy")
    account.put("free", hour(28), summary="Lunch", transparency="transparent")
    account.put("off", hour(30), summary="Cancelled", status="cancelled")
    account.sync()
    write_managed(account, "booking-7", hour(32))
    account.sync()
    auth = account.token("read_free_busy")
    uids = {e["summary"]: e["event_uid"] for e in get(
        http, "/v1/events", account.token("read_events"), include_managed="true"
    ).json()["events"]}
    plain = get(http, "/v1/free_busy", auth).json()["free_busy"]
    assert [b["free_busy_status"] for b in plain] == ["busy"]
    assert "event_uid" not in plain[0]
    r = get(http, "/v1/free_busy", auth, include_ids="True", include_free="True",
            include_managed="true")
    assert r.status_code == 200, r.text
    blocks = r.json()["free_busy"]
    assert [(b["free_busy_status"], b["event_uid"]) for b in blocks] == [
        ("busy", uids["Therapy"]), ("free", uids["Lunch"]),
        ("busy", uids["Managed booking-7"])]
    assert "event_id" not in blocks[0] and blocks[2]["event_id"] == "booking-7"
    assert "Therapy" not in r.text and "summary" not in r.text and "ours" not in r.text
    # Only the flag asked for: free blocks without ids, and a page keeps both flags.
    free = get(http, "/v1/free_busy", auth, include_free="true").json()["free_busy"]
    assert [b["free_busy_status"] for b in free] == ["busy", "free"]
    assert all("event_uid" not in b for b in free)
    bad = get(http, "/v1/free_busy", auth, include_ids="maybe")
    assert bad.status_code == 422 and "include_ids" in bad.json()["errors"]


def test_free_busy_flags_survive_paging(http, link):
    account = link()
    for i in range(101):
        account.put(f"e{i:03}", hour(24 + i), transparency="transparent")
    account.sync()
    auth = account.token("read_free_busy")
    assert get(http, "/v1/free_busy", auth).json()["free_busy"] == []
    first = get(http, "/v1/free_busy", auth, include_free="true", include_ids="true").json()
    second = http.get(first["pages"]["next_page"], headers=auth).json()
    assert len(first["free_busy"]) == 100 and len(second["free_busy"]) == 1
    assert second["free_busy"][0]["free_busy_status"] == "free"
    assert second["free_busy"][0]["event_uid"].startswith("evt_external_")

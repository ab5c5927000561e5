"""Pure parts of the Google provider: event mapping both ways, managed ids, free/busy
pieces, the sync cursor and the grouping of listings into ChangeSets, the error table and
the backoff."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import httplib2
import pytest
from googleapiclient.errors import HttpError

from providers.errors import (
    Conflict,
    CursorExpired,
    Forbidden,
    InvalidInput,
    NotFound,
    RateLimited,
    Unauthorized,
    Unavailable,
)
from providers.google import mapping, sync
from providers.google.config import RetryPolicy
from providers.google.errors import Duplicate, Throttled, Transient, translate
from providers.google.retry import delay_for, with_retries
from providers.model import (
    ConferenceLink,
    EventDraft,
    FreeBusyBlock,
    Person,
    SyncCursor,
    TimeWindow,
)
from tests.support import aio

WINDOW = TimeWindow(datetime(2027, 3, 1, tzinfo=UTC), datetime(2027, 4, 1, tzinfo=UTC))


def google_event(**fields):
    base = {"id": "abc123", "status": "confirmed", "etag": '"1"',
            "updated": "2027-01-02T03:04:05.678Z",
            "start": {"dateTime": "2027-03-10T10:00:00+01:00", "timeZone": "Europe/Berlin"},
            "end": {"dateTime": "2027-03-10T11:00:00+01:00", "timeZone": "Europe/Berlin"}}
    return {**base, **fields}


def test_a_timed_event_becomes_utc_with_its_zone():
    event = mapping.event_from_google(google_event(summary="Review"), "UTC")
    assert (event.resource_id, event.instance_id) == ("abc123", "abc123")
    assert event.start == datetime(2027, 3, 10, 9, tzinfo=UTC)
    assert (event.start_tzid, event.summary, event.recurring) == ("Europe/Berlin", "Review",
                                                                  False)
    assert event.upstream_updated == datetime(2027, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)


def test_an_instance_belongs_to_its_series():
    event = mapping.event_from_google(google_event(
        id="ser_20270310T090000Z", recurringEventId="ser",
        originalStartTime={"dateTime": "2027-03-10T10:00:00+01:00"}), "UTC")
    assert (event.resource_id, event.instance_id, event.recurring) == (
        "ser", "ser_20270310T090000Z", True)


def test_all_day_dates_and_the_calendar_zone_as_fallback():
    event = mapping.event_from_google(google_event(
        start={"date": "2027-03-24"}, end={"date": "2027-03-26"}), "UTC")
    assert (event.start, event.end, event.all_day) == (date(2027, 3, 24), date(2027, 3, 26),
                                                       True)
    timed = mapping.event_from_google(google_event(
        start={"dateTime": "2027-03-10T10:00:00Z"}, end={"dateTime": "2027-03-10T11:00:00Z"}),
        "America/Chicago")
    assert timed.start_tzid == "America/Chicago"


def test_the_owners_answer_organiser_meet_and_managed_key():
    event = mapping.event_from_google(google_event(
        attendees=[{"email": "Boss@Example.com", "organizer": True,
                    "responseStatus": "accepted"},
                   {"email": "me@example.com", "self": True, "responseStatus": "tentative"}],
        organizer={"email": "boss@example.com", "displayName": "Boss"},
        hangoutLink="https://meet.google.com/abc-defg-hij",
        extendedProperties={"private": {"calgateKey": "cg1.acc.1"}},
        visibility="private", transparency="transparent",
        source={"url": "https://app.example.com/1", "title": "x"}), "UTC")
    assert event.participation_status == "tentative"
    assert event.attendees[0] == Person("boss@example.com", None, "accepted")
    assert event.organizer == Person("boss@example.com", "Boss", "needs_action")
    assert event.meeting_url == "https://meet.google.com/abc-defg-hij"
    assert (event.managed_key, event.private, event.transparency, event.url) == (
        "cg1.acc.1", True, "transparent", "https://app.example.com/1")
    mine = mapping.event_from_google(google_event(organizer={"email": "me@x", "self": True}),
                                     "UTC")
    assert mine.participation_status == "accepted"
    assert mapping.event_from_google(google_event(), "UTC").participation_status == "unknown"
    video = {"conferenceData": {"entryPoints": [{"entryPointType": "phone", "uri": "tel:1"},
                                                {"entryPointType": "video",
                                                 "uri": "https://meet.example/x"}]}}
    assert mapping.meeting_url(google_event(**video)) == "https://meet.example/x"


def test_a_draft_becomes_the_full_patch_body():
    draft = EventDraft(managed_key="cg1.a.e1", summary="S", start=datetime(
        2027, 3, 20, 13, tzinfo=UTC), end=datetime(2027, 3, 20, 14, tzinfo=UTC),
        start_tzid="Europe/Berlin", end_tzid="Europe/Berlin",
        attendees=(Person("x@example.org", "X"),), reminders_minutes=(5, 99999, 5, 1, 2, 3, 4),
        conferencing=True)
    body = mapping.body_from_draft(draft)
    assert body["start"] == {"dateTime": "2027-03-20T14:00:00+01:00",
                             "timeZone": "Europe/Berlin"}
    assert body["description"] is None and body["location"] is None  # cleared on patch
    assert body["attendees"] == [{"email": "x@example.org", "displayName": "X"}]
    # Cronofy's priority order, never sorted: the first five distinct (clamped to 4 weeks).
    assert [o["minutes"] for o in body["reminders"]["overrides"]] == [5, 40320, 1, 2, 3]
    assert body["extendedProperties"] == {"private": {"calgateKey": "cg1.a.e1",
                                                      "calgateGeo": ""}}
    assert body["conferenceData"]["createRequest"]["conferenceSolutionKey"] == {
        "type": "hangoutsMeet"}
    assert mapping.send_updates(draft) == "all"
    insert = mapping.insert_body(draft)
    assert None not in insert.values() and insert["id"] == mapping.managed_event_id("cg1.a.e1")


def test_managed_ids_are_stable_base32hex_and_distinct():
    first = mapping.managed_event_id("cg1.acc.evt1")
    assert first == mapping.managed_event_id("cg1.acc.evt1")
    assert first != mapping.managed_event_id("cg1.acc.evt2")
    assert 5 <= len(first) <= 1024 and set(first) <= set("0123456789abcdefghijklmnopqrstuv")


def test_a_mixed_all_day_draft_is_refused():
    with pytest.raises(InvalidInput):
        mapping.body_from_draft(EventDraft(managed_key="k", summary="s",
                                           start=date(2027, 1, 1),
                                           end=datetime(2027, 1, 2, tzinfo=UTC)))


def test_answers_map_both_ways():
    assert mapping.answer_of("needs_action") == "needsAction"
    with pytest.raises(InvalidInput):
        mapping.answer_of("unknown")


def test_free_busy_pieces_and_joining():
    pieces = mapping.chunks(TimeWindow(datetime(2027, 1, 1, tzinfo=UTC),
                                       datetime(2027, 7, 20, tzinfo=UTC)), timedelta(days=90))
    assert [(p.end - p.start).days for p in pieces] == [90, 90, 20]
    t = datetime(2027, 1, 1, tzinfo=UTC)
    blocks = [FreeBusyBlock(t + timedelta(hours=5), t + timedelta(hours=6)),
              FreeBusyBlock(t, t + timedelta(hours=2)),
              FreeBusyBlock(t + timedelta(hours=2), t + timedelta(hours=3))]
    assert [(b.start, b.end) for b in mapping.join(blocks)] == [
        (t, t + timedelta(hours=3)), (t + timedelta(hours=5), t + timedelta(hours=6))]


def test_the_cursor_round_trips_and_refuses_strangers():
    state = sync.decode(sync.encode("CP123", WINDOW))
    assert (state.token, state.window) == ("CP123", WINDOW)
    for value in ("not json", "{}", '{"v": 2, "t": "x", "w": []}', '[1]'):
        with pytest.raises(CursorExpired):
            sync.decode(SyncCursor(value))


def test_incremental_items_group_into_changes_deletions_and_series_to_relist():
    inside = google_event(id="single1")
    outside = google_event(id="single2", start={"dateTime": "2027-05-01T10:00:00Z"},
                           end={"dateTime": "2027-05-01T11:00:00Z"})
    items = [inside, outside, {"id": "gone01", "status": "cancelled"},
             {"id": "ser_20270310T090000Z", "status": "cancelled", "recurringEventId": "ser"},
             google_event(id="ser2_20270311T090000Z", recurringEventId="ser2"),
             {"id": "ser3", "status": "cancelled"},
             google_event(id="ser3_20270312T090000Z", recurringEventId="ser3")]
    delta = sync.plan_incremental(items, WINDOW, "UTC")
    assert [e.instance_id for e in delta.changed["single1"]] == ["single1"]
    assert delta.changed["single2"] == []
    assert delta.deleted == {"gone01", "ser3"}
    assert delta.series == {"ser", "ser2"}


def test_a_full_listing_groups_instances_by_series_and_skips_cancelled():
    items = [google_event(id="a_1", recurringEventId="a"),
             google_event(id="a_2", recurringEventId="a"),
             google_event(id="b", status="cancelled"), google_event(id="c")]
    grouped = sync.group_full(items, WINDOW, "UTC")
    assert {k: [e.instance_id for e in v] for k, v in grouped.items()} == {
        "a": ["a_1", "a_2"], "c": ["c"]}


def http_error(status: int, reason: str = "", retry_after: str | None = None) -> HttpError:
    headers = {"status": str(status)}
    if retry_after is not None:
        headers["retry-after"] = retry_after
    body = {"error": {"code": status, "message": "m", "errors": [{"reason": reason}]}}
    return HttpError(httplib2.Response(headers), json.dumps(body).encode())


@pytest.mark.parametrize(("status", "reason", "kind"), [
    (400, "invalid", InvalidInput), (401, "authError", Unauthorized),
    (403, "insufficientPermissions", Forbidden), (403, "requiredAccessLevel", Forbidden),
    (403, "rateLimitExceeded", Throttled), (403, "userRateLimitExceeded", Throttled),
    (403, "quotaExceeded", RateLimited), (429, "rateLimitExceeded", Throttled),
    (404, "notFound", NotFound), (409, "duplicate", Duplicate), (409, "", Conflict),
    (410, "fullSyncRequired", CursorExpired), (410, "deleted", NotFound),
    (412, "conditionNotMet", Conflict), (500, "backendError", Transient),
    (503, "", Transient),
])
def test_google_errors_map_onto_the_tree(status, reason, kind):
    error = translate(http_error(status, reason), "events.list")
    assert type(error) is kind or (isinstance(error, kind) and kind in (NotFound, Conflict))
    assert str(error).startswith(f"events.list: Google answered {status}")


def test_retry_after_is_read_and_quota_is_not_retried():
    error = translate(http_error(429, "rateLimitExceeded", "7"), "x")
    assert isinstance(error, RateLimited) and error.retry_after == 7
    daily = translate(http_error(403, "quotaExceeded"), "x")
    assert not isinstance(daily, Throttled | Transient)


def test_transport_failures_are_transient_and_others_unavailable():
    assert isinstance(translate(ConnectionResetError("reset"), "x"), Transient)
    assert isinstance(translate(TimeoutError(), "x"), Transient)
    odd = translate(RuntimeError("?"), "x")
    assert isinstance(odd, Unavailable) and not isinstance(odd, Transient)


def test_backoff_is_full_jitter_capped_and_at_least_retry_after():
    policy = RetryPolicy(attempts=5, base_delay=1.0, max_delay=8.0, max_wait=60.0)
    assert [delay_for(policy, n, None, 0.999999) for n in range(5)] == pytest.approx(
        [1, 2, 4, 8, 8], rel=1e-3)
    assert delay_for(policy, 0, None, 0.0) == 0.0
    assert delay_for(policy, 0, 3.0, 0.5) == 3.0


def run_retries(policy, failures):
    slept = []
    calls = iter(failures)

    async def call():
        failure = next(calls)
        if failure is not None:
            raise failure
        return "ok"

    async def sleep(seconds):
        slept.append(seconds)

    return aio.run(with_retries(policy, call, sleep=sleep, draw=lambda: 0.5)), slept


def test_retries_until_success_within_bounds():
    policy = RetryPolicy(attempts=4, base_delay=1.0, max_delay=8.0, max_wait=60.0)
    result, slept = run_retries(policy, [Transient("a"), Throttled("b", 5.0), None])
    assert result == "ok" and slept == [0.5, 5.0]
    with pytest.raises(Unavailable):
        run_retries(policy, [Transient("a")] * 4)
    with pytest.raises(RateLimited) as caught:  # Retry-After past the budget: give up now
        run_retries(RetryPolicy(max_wait=10.0), [Throttled("b", 30.0), None])
    assert caught.value.retry_after == 30.0
    with pytest.raises(NotFound):  # not retried
        run_retries(policy, [NotFound("x"), None])


def test_an_explicit_conference_link_is_the_location_and_private_properties():
    link = ConferenceLink("https://zoom.example/j/1", "Zoom")
    draft = EventDraft(managed_key="cg1.a.e1", summary="S", start=datetime(
        2027, 3, 20, 13, tzinfo=UTC), end=datetime(2027, 3, 20, 14, tzinfo=UTC),
        conference_link=link)
    body = mapping.insert_body(draft)
    assert body["location"] == link.join_url and "conferenceData" not in body
    assert body["extendedProperties"]["private"] == {
        "calgateKey": "cg1.a.e1", mapping.GEO_KEY: "", mapping.CONFERENCE_URL: link.join_url,
        mapping.CONFERENCE_NAME: "Zoom"}
    event = mapping.event_from_google(google_event(**body), None)
    assert (event.meeting_url, event.conference_name, event.location) == (
        link.join_url, "Zoom", link.join_url)
    # The app's own location stays; a Meet the owner added later is the meeting link then.
    body = mapping.body_from_draft(EventDraft(**{**_fields(draft), "location": "Room 4"}))
    assert body["location"] == "Room 4"
    met = mapping.event_from_google(google_event(
        **body, hangoutLink="https://meet.google.com/abc-defg-hij"), None)
    assert (met.meeting_url, met.conference_name) == (
        "https://meet.google.com/abc-defg-hij", None)


def _fields(draft: EventDraft) -> dict:
    return {name: getattr(draft, name) for name in EventDraft.__dataclass_fields__}

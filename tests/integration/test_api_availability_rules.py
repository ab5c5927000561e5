"""Availability rules and available periods (issue 15, API.md s8.3): the API's shapes, the
422s naming the field, paging, isolation between accounts, and what the stored managed
availability answers, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from gateway.services.availability_rules import PAGE_SIZE, Limits
from gateway.services.managed_availability import StoredManagedAvailability
from tests.support.aio import run

RULE = {
    "availability_rule_id": "default",
    "tzid": "America/Chicago",
    "weekly_periods": [
        {"day": "monday", "start_time": "09:30", "end_time": "12:30"},
        {"day": "monday", "start_time": "14:00", "end_time": "17:00"},
        {"day": "wednesday", "start_time": "09:30", "end_time": "12:30"},
    ],
}


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


def field_error(response) -> str:
    assert response.status_code == 422, response.text
    (field,) = response.json()["errors"]
    return field


def test_rule_lifecycle(http, link):
    user = link()
    user.sync()  # its calendars
    auth = user.token("read_account")  # no particular scope: any token of the account
    rule = RULE | {"calendar_ids": [user.calendar_id]}
    r = http.post("/v1/availability_rules", json=rule, headers=auth)
    assert r.status_code == 200, r.text
    assert r.json() == {"availability_rule": rule}
    assert http.get("/v1/availability_rules/default", headers=auth).json() == {
        "availability_rule": rule}
    # An upsert by the same id replaces it; calendar_ids left out means every calendar.
    changed = RULE | {"tzid": "Europe/London", "weekly_periods": [
        {"day": "friday", "start_time": "08:00", "end_time": "24:00"}]}
    assert http.post("/v1/availability_rules", json=changed, headers=auth).status_code == 200
    second = RULE | {"availability_rule_id": "houston-office"}
    assert http.post("/v1/availability_rules", json=second, headers=auth).status_code == 200
    listed = http.get("/v1/availability_rules", headers=auth).json()["availability_rules"]
    assert listed == [changed, second]
    # Another account sees none of them.
    other = link().token("read_account")
    assert http.get("/v1/availability_rules", headers=other).json() == {
        "availability_rules": []}
    assert http.get("/v1/availability_rules/default", headers=other).status_code == 404
    assert http.delete("/v1/availability_rules/default", headers=other).status_code == 404
    # Delete (the Node SDK sends the id in the body as well).
    r = http.request("DELETE", "/v1/availability_rules/default", headers=auth,
                     json={"availability_rule_id": "default"})
    assert r.status_code == 202 and r.content == b""
    assert http.get("/v1/availability_rules/default", headers=auth).status_code == 404
    assert http.delete("/v1/availability_rules/default", headers=auth).status_code == 404
    assert http.get("/v1/availability_rules").status_code == 401


@pytest.mark.parametrize("change,field", [
    ({"availability_rule_id": ""}, "availability_rule_id"),
    ({"availability_rule_id": "x" * 65}, "availability_rule_id"),
    ({"availability_rule_id": "café"}, "availability_rule_id"),
    ({"tzid": "Mars/Olympus"}, "tzid"),
    ({"tzid": None}, "tzid"),
    ({"weekly_periods": []}, "weekly_periods"),
    ({"weekly_periods": "monday"}, "weekly_periods"),
    ({"weekly_periods": [{"day": "funday", "start_time": "09:00", "end_time": "10:00"}]},
     "weekly_periods[0].day"),
    ({"weekly_periods": [{"day": "monday", "start_time": "25:00", "end_time": "26:00"}]},
     "weekly_periods[0].start_time"),
    ({"weekly_periods": [{"day": "monday", "start_time": "09:00", "end_time": "9pm"}]},
     "weekly_periods[0].end_time"),
    ({"weekly_periods": [{"day": "monday", "start_time": "17:00", "end_time": "09:00"}]},
     "weekly_periods[0].end_time"),
    ({"weekly_periods": [{"day": "monday", "start_time": "24:00", "end_time": "24:00"}]},
     "weekly_periods[0].start_time"),
    ({"weekly_periods": ["monday"]}, "weekly_periods[0]"),
    ({"weekly_periods": [{"day": "monday", "start_time": "09:00", "end_time": "10:00"}] * 101},
     "weekly_periods"),
    ({"calendar_ids": []}, "calendar_ids"),
    ({"calendar_ids": ["cal_not_mine"]}, "calendar_ids"),
    ({"calendar_ids": [3]}, "calendar_ids"),
])
def test_bad_rules_answer_422_naming_the_field(http, link, change, field):
    auth = link().token("read_account")
    r = http.post("/v1/availability_rules", json=RULE | change, headers=auth)
    assert field_error(r) == field
    assert http.get("/v1/availability_rules", headers=auth).json()["availability_rules"] == []


def test_a_calendar_of_another_account_is_refused(http, link):
    mine, theirs = link(), link()
    theirs.sync()
    r = http.post("/v1/availability_rules", json=RULE | {"calendar_ids": [theirs.calendar_id]},
                  headers=mine.token("read_account"))
    assert field_error(r) == "calendar_ids"


def test_available_periods_lifecycle_and_paging(http, link):
    auth = link().token("read_account")
    for n in range(PAGE_SIZE + 5):
        start = utc(2026, 3, 1, 9) + timedelta(days=n)
        r = http.post("/v1/available_periods", headers=auth, json={
            "available_period_id": f"p{n:03d}", "start": start.isoformat(),
            "end": (start + timedelta(hours=2)).isoformat()})
        assert r.status_code == 202 and r.content == b"", r.text
    first = http.get("/v1/available_periods", headers=auth).json()
    assert first["pages"]["current"] == 1 and first["pages"]["total"] == 2
    assert first["available_periods"][0] == {
        "available_period_id": "p000", "start": "2026-03-01T09:00:00Z",
        "end": "2026-03-01T11:00:00Z"}
    second = http.get(first["pages"]["next_page"], headers=auth).json()
    assert second["pages"] == {"current": 2, "total": 2}
    ids = [p["available_period_id"] for p in first["available_periods"]
           + second["available_periods"]]
    assert ids == [f"p{n:03d}" for n in range(PAGE_SIZE + 5)]
    # A page URL is bound to its account.
    other = link().token("read_account")
    assert http.get(first["pages"]["next_page"], headers=other).status_code == 404
    # from/to are Dates in tzid (to exclusive); localized_times writes the zone's offset.
    r = http.get("/v1/available_periods", headers=auth, params={
        "from": "2026-03-29", "to": "2026-03-31", "tzid": "Europe/Paris",
        "localized_times": "true"})
    assert r.json()["available_periods"] == [
        {"available_period_id": "p028", "start": "2026-03-29T11:00:00+02:00",
         "end": "2026-03-29T13:00:00+02:00"},
        {"available_period_id": "p029", "start": "2026-03-30T11:00:00+02:00",
         "end": "2026-03-30T13:00:00+02:00"}]
    # Upsert by id moves it; the {time, tzid} form is accepted.
    r = http.post("/v1/available_periods", headers=auth, json={
        "available_period_id": "p028", "start": {"time": "2026-06-01T08:00:00Z",
                                                 "tzid": "Europe/Paris"},
        "end": {"time": "2026-06-01T09:00:00Z", "tzid": "Europe/Paris"}})
    assert r.status_code == 202
    r = http.get("/v1/available_periods", headers=auth, params={
        "from": "2026-03-29", "to": "2026-03-31"})
    assert [p["available_period_id"] for p in r.json()["available_periods"]] == ["p029"]
    # Delete one, then all.
    r = http.request("DELETE", "/v1/available_periods", headers=auth,
                     json={"available_period_id": "p029"})
    assert r.status_code == 202
    r = http.get("/v1/available_periods", headers=auth, params={
        "from": "2026-03-29", "to": "2026-03-31"})
    assert r.json()["available_periods"] == []
    assert http.request("DELETE", "/v1/available_periods", headers=auth,
                        json={"delete_all": True}).status_code == 202
    assert http.get("/v1/available_periods", headers=auth).json() == {
        "pages": {"current": 1, "total": 1}, "available_periods": []}


@pytest.mark.parametrize("body,field", [
    ({"start": "2026-03-01T09:00:00Z", "end": "2026-03-01T10:00:00Z"}, "available_period_id"),
    ({"available_period_id": "a", "end": "2026-03-01T10:00:00Z"}, "start"),
    ({"available_period_id": "a", "start": "2026-03-01T09:00:00Z", "end": "tomorrow"}, "end"),
    ({"available_period_id": "a", "start": "2026-03-01T10:00:00Z",
      "end": "2026-03-01T09:00:00Z"}, "end"),
    ({"available_period_id": "a", "start": "2026-03-01T10:00:00Z",
      "end": "2026-03-01T10:00:00Z"}, "end"),
    ({"available_period_id": "a", "start": {"time": "2026-03-01T09:00:00Z", "tzid": "Nope/No"},
      "end": "2026-03-01T10:00:00Z"}, "start.tzid"),
    ({"available_period_id": "a", "start": {"tzid": "Etc/UTC"},
      "end": "2026-03-01T10:00:00Z"}, "start.time"),
    ({"available_period_id": "a", "start": "2026-03-01T09:00:00Z",
      "end": "2300-03-01T10:00:00Z"}, "end"),
])
def test_bad_available_periods_answer_422_naming_the_field(http, link, body, field):
    auth = link().token("read_account")
    assert field_error(http.post("/v1/available_periods", json=body, headers=auth)) == field


def test_bad_period_queries_and_deletes(http, link):
    auth = link().token("read_account")
    r = http.get("/v1/available_periods", headers=auth, params={"tzid": "Mars/Olympus"})
    assert field_error(r) == "tzid"
    r = http.get("/v1/available_periods", headers=auth, params={"from": "2026-02-30"})
    assert field_error(r) == "from"
    r = http.get("/v1/available_periods", headers=auth,
                 params={"from": "2026-03-02", "to": "2026-03-01"})
    assert field_error(r) == "to"
    r = http.get("/v1/available_periods", headers=auth, params={"localized_times": "maybe"})
    assert field_error(r) == "localized_times"
    assert field_error(http.request("DELETE", "/v1/available_periods", headers=auth,
                                    json={})) == "available_period_id"
    assert field_error(http.request("DELETE", "/v1/available_periods", headers=auth, json={
        "available_period_id": "a", "delete_all": True})) == "available_period_id"
    assert http.get("/v1/available_periods/pages/forged", headers=auth).status_code == 404


def test_too_many_rules_and_periods(gateway, http, link):
    assert gateway.availability_rules.limits == Limits(rules=50, periods=5000)
    gateway.availability_rules.limits = Limits(rules=1, periods=2)
    auth = link().token("read_account")
    for n in range(2):
        assert http.post("/v1/available_periods", headers=auth, json={
            "available_period_id": f"p{n}", "start": "2026-03-01T09:00:00Z",
            "end": "2026-03-01T10:00:00Z"}).status_code == 202
    r = http.post("/v1/available_periods", headers=auth, json={
        "available_period_id": "p9", "start": "2026-03-01T09:00:00Z",
        "end": "2026-03-01T10:00:00Z"})
    assert field_error(r) == "available_period_id"
    # Updating an existing one is still fine.
    assert http.post("/v1/available_periods", headers=auth, json={
        "available_period_id": "p1", "start": "2026-03-02T09:00:00Z",
        "end": "2026-03-02T10:00:00Z"}).status_code == 202
    assert http.post("/v1/availability_rules", json=RULE, headers=auth).status_code == 200
    r = http.post("/v1/availability_rules", json=RULE | {"availability_rule_id": "b"},
                  headers=auth)
    assert field_error(r) == "availability_rule_id"
    assert http.post("/v1/availability_rules", json=RULE, headers=auth).status_code == 200


def test_stored_managed_availability(gateway, http, link):
    user = link()
    user.sync()
    auth = user.token("read_account")
    managed = StoredManagedAvailability(gateway.availability_rules)
    window = (utc(2026, 3, 23), utc(2026, 4, 6))  # two weeks around London's change (29th)
    assert run(managed.intervals(user.subject, *window, None)) == []  # nothing: unavailable
    london = {"availability_rule_id": "london", "tzid": "Europe/London",
              "calendar_ids": [user.calendar_id],
              "weekly_periods": [{"day": "monday", "start_time": "09:00", "end_time": "17:00"}]}
    assert http.post("/v1/availability_rules", json=london, headers=auth).status_code == 200
    got = run(managed.intervals(user.subject, *window, None))
    # 09:00-17:00 London on both Mondays: GMT, then BST.
    assert got == [(utc(2026, 3, 23, 9), utc(2026, 3, 23, 17)),
                   (utc(2026, 3, 30, 8), utc(2026, 3, 30, 16))]
    # An available period adds a Saturday, and one touching Monday's hours joins them.
    for pid, start, end in (("sat", utc(2026, 3, 28, 10), utc(2026, 3, 28, 12)),
                            ("eve", utc(2026, 3, 23, 17), utc(2026, 3, 23, 19))):
        assert http.post("/v1/available_periods", headers=auth, json={
            "available_period_id": pid, "start": start.isoformat(),
            "end": end.isoformat()}).status_code == 202
    got = run(managed.intervals(user.subject, *window, None))
    assert got == [(utc(2026, 3, 23, 9), utc(2026, 3, 23, 19)),
                   (utc(2026, 3, 28, 10), utc(2026, 3, 28, 12)),
                   (utc(2026, 3, 30, 8), utc(2026, 3, 30, 16))]
    # Naming rules: only those count (an unknown id adds nothing); periods still do.
    nyc = {"availability_rule_id": "nyc", "tzid": "America/New_York",
           "weekly_periods": [{"day": "tuesday", "start_time": "09:00", "end_time": "10:00"}]}
    assert http.post("/v1/availability_rules", json=nyc, headers=auth).status_code == 200
    only_nyc = run(managed.intervals(user.subject, *window, ["nyc", "missing"]))
    assert (utc(2026, 3, 24, 13), utc(2026, 3, 24, 14)) in only_nyc
    assert (utc(2026, 3, 30, 8), utc(2026, 3, 30, 16)) not in only_nyc
    assert (utc(2026, 3, 28, 10), utc(2026, 3, 28, 12)) in only_nyc
    # The calendars that count: a rule's calendar_ids; None (every one) if any rule has none.
    assert run(managed.busy_calendars(user.subject, ["london"])) == {user.calendar_id}
    assert run(managed.busy_calendars(user.subject, None)) is None
    assert run(managed.busy_calendars(user.subject, ["nyc"])) is None
    # Clipped to the window.
    short = run(managed.intervals(user.subject, utc(2026, 3, 23, 10), utc(2026, 3, 23, 11),
                                  None))
    assert short == [(utc(2026, 3, 23, 10), utc(2026, 3, 23, 11))]


def test_availability_query_honours_managed_availability(http, link):
    """POST /v1/availability with managed_availability: the stored rules and periods say
    when the member may be booked, and a rule's calendar_ids which calendars count."""
    from zoneinfo import ZoneInfo

    from providers.memory.provider import WORLD, MemoryCalendar
    from providers.model import Calendar

    user = link()
    side = f"{user.upstream}/side"
    WORLD.accounts[user.upstream].calendars[side] = MemoryCalendar(Calendar(side, "Side"))
    york = ZoneInfo("America/New_York")
    today = datetime.now(UTC).astimezone(york).date()
    monday = today + timedelta(days=7 - today.weekday())  # the next Monday, in New York

    def at(hour: int, day: int = 0) -> datetime:
        local = datetime.combine(monday + timedelta(days=day), datetime.min.time(), york)
        return (local + timedelta(hours=hour)).astimezone(UTC)

    user.put("main", at(10), at(11))
    WORLD.put(user.upstream, side, "side", [user_event("side", at(13), at(14))])
    user.sync()
    ids = {c["calendar_name"]: c["calendar_id"] for c in http.get(
        "/v1/calendars", headers=user.token("read_write")).json()["calendars"]}
    auth = user.token("read_write")

    def ask(member: dict[str, object], **extra: object) -> list[tuple[datetime, datetime]]:
        body = {"participants": [{"members": [{"sub": user.subject} | member]}],
                "required_duration": {"minutes": 60},
                "query_periods": [{"start": z(at(0)), "end": z(at(24 + 12))}]} | extra
        r = http.post("/v1/availability", headers=auth, json=body)
        assert r.status_code == 200, r.text
        return [(parse(p["start"]), parse(p["end"])) for p in r.json()["available_periods"]]

    managed = {"managed_availability": True}
    assert ask(managed) == []  # neither rules nor periods: nowhere
    rule = {"availability_rule_id": "work", "tzid": "America/New_York",
            "calendar_ids": [ids["Calendar"]],
            "weekly_periods": [{"day": "monday", "start_time": "09:00", "end_time": "17:00"}]}
    assert http.post("/v1/availability_rules", json=rule, headers=auth).status_code == 200
    # The rule's hours, minus the event of the calendar it names (the side one is ignored).
    assert ask(managed) == [(at(9), at(10)), (at(11), at(17))]
    # A member naming its calendars keeps them.
    assert ask(managed | {"calendar_ids": [ids["Side"]]}) == [(at(9), at(13)), (at(14), at(17))]
    # A rule naming no calendars counts them all.
    del rule["calendar_ids"]
    assert http.post("/v1/availability_rules", json=rule, headers=auth).status_code == 200
    assert ask(managed) == [(at(9), at(10)), (at(11), at(13)), (at(14), at(17))]
    # An available period adds Tuesday morning; naming only another rule leaves just it.
    assert http.post("/v1/available_periods", headers=auth, json={
        "available_period_id": "tue", "start": z(at(8, 1)), "end": z(at(10, 1))}
        ).status_code == 202
    assert ask(managed)[-1] == (at(8, 1), at(10, 1))
    assert ask(managed | {"availability_rule_ids": ["other"]}) == [(at(8, 1), at(10, 1))]
    # Without managed availability the whole query period counts.
    assert ask({})[0] == (at(0), at(10))


def user_event(uid: str, start: datetime, end: datetime):
    from providers.model import Event

    return Event(resource_id=uid, instance_id=uid, start=start, end=end, summary=uid)


def z(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse(value: str) -> datetime:
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)

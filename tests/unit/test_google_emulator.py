"""The Google emulator answers like Google: requests are checked against the discovery
document (parameters, types, enums, bodies), tokens and their scopes, ids, preconditions
and limits, each refusal in Google's error shape; the OAuth endpoints validate like
Google's. Raw HTTP here, so what is sent is exactly what is tested."""

from __future__ import annotations

import base64
import hashlib
import re
import time
from collections.abc import Iterator
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest

from tests.emulators.google import GoogleEmulator

CAL = "https://www.googleapis.com/auth/calendar"
APP = ("cid.apps.googleusercontent.com", "s3cret")
REDIRECT = "http://127.0.0.1:9/cb"
USER = "ada@example.com"


@pytest.fixture(scope="module")
def emu() -> Iterator[GoogleEmulator]:
    with GoogleEmulator.running() as emulator:
        emulator.register_app(*APP, "My Portal App", [REDIRECT])
        emulator.add_user(USER, tz="Europe/Berlin")
        yield emulator


@pytest.fixture(scope="module")
def http(emu) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=emu.base_url, follow_redirects=False) as client:
        yield client


def bearer(emu, http, scopes=(CAL,)) -> dict[str, str]:
    refresh = emu.issue_refresh_token(USER, APP[0], scopes)
    answer = http.post("/token", data={"grant_type": "refresh_token", "refresh_token": refresh,
                                       "client_id": APP[0], "client_secret": APP[1]})
    assert answer.status_code == 200
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


def error_of(answer: httpx.Response) -> tuple[int, str]:
    body = answer.json()["error"]
    assert body["code"] == answer.status_code and body["message"]
    return answer.status_code, body["errors"][0]["reason"]


EVENTS = f"/calendar/v3/calendars/{USER}/events"


@pytest.mark.parametrize(("query", "reason"), [
    ({"bogus": "1"}, "invalid"),  # unknown parameter
    ({"maxResults": "abc"}, "invalid"),  # not an integer
    ({"maxResults": "0"}, "invalid"),  # below the document's minimum
    ({"orderBy": "random"}, "invalid"),  # not in the enum
    ({"singleEvents": "yes"}, "invalid"),  # not a boolean
    ({"timeMin": "2027-01-01"}, "invalid"),  # not an RFC 3339 date-time
    ({"timeMin": "2027-01-01T00:00:00"}, "invalid"),  # no offset
    ({"syncToken": "x", "timeMin": "2027-01-01T00:00:00Z"}, "invalid"),
    ({"syncToken": "x", "showDeleted": "false"}, "invalid"),
    ({"orderBy": "startTime"}, "invalid"),  # needs singleEvents
    ({"syncToken": "never-issued"}, "fullSyncRequired"),
])
def test_list_parameters_are_checked_against_the_discovery_document(emu, http, query, reason):
    answer = http.get(EVENTS, params=query, headers=bearer(emu, http))
    assert error_of(answer) == ((410 if reason == "fullSyncRequired" else 400), reason)


def test_repeated_only_where_the_document_says_so(emu, http):
    auth = bearer(emu, http)
    once = http.get(f"{EVENTS}?maxResults=1&maxResults=2", headers=auth)
    assert error_of(once) == (400, "invalid")
    many = http.get(f"{EVENTS}?privateExtendedProperty=a%3D1&privateExtendedProperty=b%3D2",
                    headers=auth)
    assert many.status_code == 200 and many.json()["items"] == []


def test_required_query_parameters_and_unknown_paths(emu, http):
    auth = bearer(emu, http)
    move = http.post(f"{EVENTS}/abcde12345/move", headers=auth)
    assert error_of(move) == (400, "required")  # events.move needs ?destination=
    assert error_of(http.get("/calendar/v3/nothing/here", headers=auth)) == (404, "notFound")


def test_access_tokens_expire():
    with GoogleEmulator.running(access_token_ttl=0.3) as short, httpx.Client(
            base_url=short.base_url) as client:
        short.register_app(*APP, "App", [])
        short.add_user(USER)
        auth = bearer(short, client)
        assert client.get("/calendar/v3/users/me/calendarList", headers=auth).status_code == 200
        time.sleep(0.4)
        expired = client.get("/calendar/v3/users/me/calendarList", headers=auth)
        assert error_of(expired) == (401, "authError")


def test_bodies_are_checked_against_the_schema(emu, http):
    auth = bearer(emu, http)
    start, end = {"dateTime": "2027-03-01T10:00:00Z"}, {"dateTime": "2027-03-01T11:00:00Z"}
    unknown = http.post(EVENTS, json={"start": start, "end": end, "colour": "red"},
                        headers=auth)
    assert error_of(unknown) == (400, "invalid") and "colour" in unknown.json()["error"][
        "message"]
    wrong_type = http.post(EVENTS, json={"start": start, "end": end, "summary": 5},
                           headers=auth)
    assert error_of(wrong_type) == (400, "invalid")
    no_end = http.post(EVENTS, json={"start": start}, headers=auth)
    assert error_of(no_end) == (400, "required")
    backwards = http.post(EVENTS, json={"start": end, "end": start}, headers=auth)
    assert error_of(backwards) == (400, "timeRangeEmpty")
    bad_id = http.post(EVENTS, json={"id": "UPPER-case", "start": start, "end": end},
                       headers=auth)
    assert error_of(bad_id) == (400, "invalid")
    made = http.post(EVENTS, json={"id": "abcde12345", "start": start, "end": end},
                     headers=auth)
    assert made.status_code == 200 and made.json()["iCalUID"] == "abcde12345@google.com"
    again = http.post(EVENTS, json={"id": "abcde12345", "start": start, "end": end},
                      headers=auth)
    assert error_of(again) == (409, "duplicate")


def test_tokens_and_scopes_are_enforced(emu, http):
    missing = http.get("/calendar/v3/users/me/calendarList")
    assert error_of(missing) == (401, "authError")
    assert missing.json()["error"]["status"] == "UNAUTHENTICATED"
    forged = http.get("/calendar/v3/users/me/calendarList",
                      headers={"Authorization": "Bearer ya29.forged"})
    assert error_of(forged) == (401, "authError")
    list_only = bearer(emu, http, (f"{CAL}.calendarlist.readonly",))
    assert http.get("/calendar/v3/users/me/calendarList", headers=list_only).status_code == 200
    refused = http.get(EVENTS, headers=list_only)
    assert error_of(refused) == (403, "insufficientPermissions")
    assert "insufficient_scope" in refused.headers["www-authenticate"]
    owned = bearer(emu, http, (f"{CAL}.events.owned",))
    other = emu.add_user("bob@example.com")
    team = emu.add_calendar(other, "Team")
    emu.share_calendar(team, USER, "writer")
    write = http.post(f"/calendar/v3/calendars/{team}/events", headers=owned, json={
        "start": {"date": "2027-03-01"}, "end": {"date": "2027-03-02"}})
    assert error_of(write) == (403, "insufficientPermissions")  # owned only: not Bob's
    assert error_of(http.get("/calendar/v3/calendars/nobody%40x/events", headers=owned)) == (
        404, "notFound")


def test_free_busy_scope_sees_times_but_no_contents(emu, http):
    emu.add_event(USER, "primary", {"id": "secret01", "summary": "Secret", "location": "X",
                                    "start": {"dateTime": "2027-03-02T10:00:00Z"},
                                    "end": {"dateTime": "2027-03-02T11:00:00Z"}})
    busy = bearer(emu, http, (f"{CAL}.events.freebusy",))
    items = http.get(EVENTS, headers=busy).json()["items"]
    (item,) = [i for i in items if i["id"] == "secret01"]
    assert "summary" not in item and "location" not in item and item["start"]


def test_if_match_and_deleted_events(emu, http):
    auth = bearer(emu, http)
    made = http.post(EVENTS, headers=auth, json={
        "start": {"dateTime": "2027-03-03T10:00:00Z"},
        "end": {"dateTime": "2027-03-03T11:00:00Z"}}).json()
    url = f"{EVENTS}/{made['id']}"
    stale = http.patch(url, json={"summary": "x"}, headers={**auth, "If-Match": '"stale"'})
    assert error_of(stale) == (412, "conditionNotMet")
    fresh = http.patch(url, json={"summary": "x"}, headers={**auth, "If-Match": made["etag"]})
    assert fresh.status_code == 200 and fresh.json()["etag"] != made["etag"]
    assert http.delete(url, headers=auth).status_code == 204
    assert error_of(http.delete(url, headers=auth)) == (410, "deleted")
    assert http.get(url, headers=auth).json()["status"] == "cancelled"


def test_sync_tokens_report_changes_and_tombstones(emu, http):
    auth = bearer(emu, http)
    first = http.get(EVENTS, headers=auth, params={"maxResults": "1"}).json()
    token = None
    page = first
    while "nextPageToken" in page:
        page = http.get(EVENTS, headers=auth, params={"pageToken": page["nextPageToken"]}
                        ).json()
    token = page["nextSyncToken"]
    emu.add_event(USER, "primary", {"id": "late0001", "start": {"date": "2027-03-05"},
                                    "end": {"date": "2027-03-06"}})
    emu.cancel_event(USER, "primary", "late0001")
    changed = http.get(EVENTS, headers=auth, params={"syncToken": token}).json()
    assert [(i["id"], i["status"]) for i in changed["items"]] == [("late0001", "cancelled")]
    assert set(changed["items"][0]) <= {"kind", "etag", "id", "status", "updated"}
    emu.expire_sync_tokens()
    gone = http.get(EVENTS, headers=auth, params={"syncToken": changed["nextSyncToken"]})
    assert error_of(gone) == (410, "fullSyncRequired")


def test_recurrence_is_expanded_in_the_events_zone_across_dst(emu, http):
    emu.add_event(USER, "primary", {
        "id": "dst00001", "start": {"dateTime": "2027-03-22T09:00:00",
                                    "timeZone": "Europe/Berlin"},
        "end": {"dateTime": "2027-03-22T10:00:00", "timeZone": "Europe/Berlin"},
        "recurrence": ["RRULE:FREQ=WEEKLY;COUNT=3"]})
    answer = http.get(f"{EVENTS}/dst00001/instances", headers=bearer(emu, http)).json()
    assert [(i["id"], i["start"]["dateTime"]) for i in answer["items"]] == [
        ("dst00001_20270322T080000Z", "2027-03-22T09:00:00+01:00"),
        ("dst00001_20270329T070000Z", "2027-03-29T09:00:00+02:00"),
        ("dst00001_20270405T070000Z", "2027-04-05T09:00:00+02:00")]
    assert all(i["recurringEventId"] == "dst00001" for i in answer["items"])


def test_free_busy_limits(emu, http):
    auth = bearer(emu, http)
    long = http.post("/calendar/v3/freeBusy", headers=auth, json={
        "timeMin": "2027-01-01T00:00:00Z", "timeMax": "2027-04-02T00:00:00Z",
        "items": [{"id": USER}]})
    assert error_of(long) == (400, "timeRangeTooLong")
    emu.add_group("team@example.com", [f"m{i}@example.com" for i in range(101)])
    answer = http.post("/calendar/v3/freeBusy", headers=auth, json={
        "timeMin": "2027-01-01T00:00:00Z", "timeMax": "2027-01-02T00:00:00Z",
        "items": [{"id": "team@example.com"}, {"id": "nobody@example.com"}]}).json()
    assert answer["groups"]["team@example.com"]["errors"][0]["reason"] == "groupTooBig"
    assert answer["calendars"]["nobody@example.com"]["errors"][0]["reason"] == "notFound"


def test_faults_answer_in_googles_shape_and_are_logged(emu, http):
    auth = bearer(emu, http)
    emu.inject_fault("/users/me/calendarList", status=403, reason="userRateLimitExceeded",
                     retry_after=2, times=1)
    emu.inject_fault("/users/me/calendarList", status=429, times=1)
    first = http.get("/calendar/v3/users/me/calendarList", headers=auth)
    assert error_of(first) == (403, "userRateLimitExceeded")
    assert first.headers["retry-after"] == "2"
    assert error_of(http.get("/calendar/v3/users/me/calendarList", headers=auth)) == (
        429, "rateLimitExceeded")
    assert http.get("/calendar/v3/users/me/calendarList", headers=auth).status_code == 200
    assert [r.status for r in emu.requests if r.path.endswith("calendarList")][-3:] == [
        403, 429, 200]


# -- OAuth ----------------------------------------------------------------------------------

def challenge(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(
        b"=").decode()


VERIFIER = "v" * 50


def authorize(**changes: str) -> str:
    params = {"client_id": APP[0], "redirect_uri": REDIRECT, "response_type": "code",
              "scope": f"{CAL}.events.owned {CAL}.calendarlist.readonly", "state": "xyz",
              "code_challenge": challenge(VERIFIER), "code_challenge_method": "S256",
              "access_type": "offline", "include_granted_scopes": "true"}
    params.update(changes)
    return "/o/oauth2/v2/auth?" + urlencode({k: v for k, v in params.items() if v})


@pytest.mark.parametrize(("changes", "status", "code"), [
    ({"client_id": "unknown"}, 401, "invalid_client"),
    ({"redirect_uri": "https://evil.example/cb"}, 400, "redirect_uri_mismatch"),
    ({"response_type": "token"}, 400, "invalid_request"),
    ({"code_challenge_method": ""}, 400, "invalid_request"),
    ({"code_challenge": "short"}, 400, "invalid_request"),
    ({"access_type": "forever"}, 400, "invalid_request"),
    ({"scope": "https://www.googleapis.com/auth/nothing"}, 400, "invalid_scope"),
])
def test_the_consent_page_refuses_bad_requests_without_redirecting(http, changes, status,
                                                                   code):
    answer = http.get(authorize(**changes))
    assert answer.status_code == status and "location" not in answer.headers
    assert f'id="error-code">{code}<' in answer.text


def consent(http, email: str, ticked: list[str], **changes: str) -> dict[str, str]:
    page = http.get(authorize(login_hint=email, **changes))
    assert 'id="app-name">My Portal App<' in page.text and f'value="{email}"' in page.text
    txn = re.search(r'name="txn" value="([^"]+)"', page.text)[1]
    decided = http.post("/o/oauth2/v2/auth/decision", data={
        "txn": txn, "email": email, "decision": "allow", "scope": ticked})
    return {k: v[0] for k, v in parse_qs(urlsplit(decided.headers["location"]).query).items()}


def test_consent_code_exchange_and_refresh(emu, http):
    carol = emu.add_user("carol@example.com")
    # The user unticks events.owned: only the calendar list is granted.
    back = consent(http, carol, [f"{CAL}.calendarlist.readonly"])
    assert back["state"] == "xyz" and back["scope"] == f"{CAL}.calendarlist.readonly"
    form = {"grant_type": "authorization_code", "code": back["code"], "redirect_uri": REDIRECT}
    no_verifier = http.post("/token", data=form, auth=APP)
    assert no_verifier.json()["error"] == "invalid_grant"
    tokens = http.post("/token", data={**form, "code_verifier": VERIFIER}, auth=APP).json()
    assert tokens["scope"] == f"{CAL}.calendarlist.readonly" and tokens["refresh_token"]
    assert tokens["token_type"] == "Bearer" and tokens["expires_in"] > 0
    reused = http.post("/token", data={**form, "code_verifier": VERIFIER}, auth=APP)
    assert reused.status_code == 400 and reused.json()["error"] == "invalid_grant"
    wrong = http.post("/token", data={"grant_type": "refresh_token",
                                      "refresh_token": tokens["refresh_token"]},
                      auth=(APP[0], "wrong"))
    assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_client"
    assert http.post("/revoke", data={"token": tokens["access_token"]}).status_code == 200
    revoked = http.post("/token", auth=APP, data={"grant_type": "refresh_token",
                                                  "refresh_token": tokens["refresh_token"]})
    assert revoked.json() == {"error": "invalid_grant",
                              "error_description": "Token has been expired or revoked."}


def test_an_unknown_account_cannot_consent(emu, http):
    page = http.get(authorize())
    txn = re.search(r'name="txn" value="([^"]+)"', page.text)[1]
    answer = http.post("/o/oauth2/v2/auth/decision", data={
        "txn": txn, "email": "stranger@example.com", "decision": "allow"})
    assert answer.status_code == 200 and 'id="error"' in answer.text
    assert "find your Google Account" in answer.text


def test_the_control_api_speaks_json(emu, http):
    made = http.post(f"/_emulator/users/{USER}/calendars/primary/events", json={
        "id": "ctl00001", "summary": "Control", "start": {"date": "2027-03-09"},
        "end": {"date": "2027-03-10"}})
    assert made.status_code == 200 and made.json()["summary"] == "Control"
    http.patch(f"/_emulator/users/{USER}/calendars/primary/events/ctl00001",
               json={"summary": "Changed"})
    assert emu.event(USER, "primary", "ctl00001")["summary"] == "Changed"
    assert http.post("/_emulator/faults", json={"path": "nothing-matches", "status": 500}
                     ).status_code == 200
    http.delete("/_emulator/faults")
    logged = http.get("/_emulator/requests").json()
    assert [r["path"] for r in logged[-2:]] == ["/_emulator/faults", "/_emulator/requests"]


def test_incremental_consent_adds_what_was_granted_before(emu, http):
    dave = emu.add_user("dave@example.com")
    consent(http, dave, [f"{CAL}.calendarlist.readonly"])
    again = consent(http, dave, [f"{CAL}.events.owned"])
    assert again["scope"].split() == [f"{CAL}.calendarlist.readonly", f"{CAL}.events.owned"]
    alone = consent(http, dave, [f"{CAL}.events.owned"], include_granted_scopes="false")
    assert alone["scope"] == f"{CAL}.events.owned"

"""The Microsoft emulator's Graph subset, driven by httpx (delta rounds, @removed, 410,
transactionId idempotency with a lost answer, If-Match, series with exceptions, getSchedule,
throttling, subscriptions with a real local receiver) and by Microsoft's own msgraph-sdk."""

from __future__ import annotations

import json
import threading
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.emulators.microsoft import MicrosoftEmulator
from tests.support import aio
from tests.support.waiting import eventually

WINDOW = {"startDateTime": "2027-01-01T00:00:00Z", "endDateTime": "2027-03-01T00:00:00Z"}
PROP = "String {66f5a359-4659-4830-9070-00047ec6ac6e} Name calgate_event_id"
UTC_PREFER = 'outlook.timezone="UTC", IdType="ImmutableId"'
_clients: list[httpx.Client] = []
T = TypeVar("T")


@pytest.fixture(scope="module")
def emu() -> Iterator[MicrosoftEmulator]:
    with MicrosoftEmulator.running(validation_timeout=5) as emulator:
        emulator.register_app("cid", "s3cret", "Portal", ["http://127.0.0.1:9/cb"])
        yield emulator
        for client in _clients:
            client.close()


def graph(emu: MicrosoftEmulator, email: str, *, personal: bool = False,
          scopes: tuple[str, ...] = ("Calendars.ReadWrite", "User.Read")) -> httpx.Client:
    emu.add_user(email, personal=personal)
    refresh = emu.issue_refresh_token(email, "cid", scopes)
    with httpx.Client(verify=emu.ca.client_context(), trust_env=False) as http:
        token = http.post(f"{emu.authority()}/oauth2/v2.0/token", data={
            "client_id": "cid", "client_secret": "s3cret", "grant_type": "refresh_token",
            "refresh_token": refresh, "scope": " ".join(scopes)}).json()["access_token"]
    client = httpx.Client(base_url=emu.graph_url, verify=emu.ca.client_context(),
                          trust_env=False, headers={"Authorization": f"Bearer {token}",
                                                    "Prefer": UTC_PREFER})
    _clients.append(client)
    return client


def event(subject: str, day: int, hour: int = 9, **extra: Any) -> dict[str, Any]:
    return {"subject": subject, "start": {"dateTime": f"2027-01-{day:02d}T{hour:02d}:00:00",
                                          "timeZone": "UTC"},
            "end": {"dateTime": f"2027-01-{day:02d}T{hour + 1:02d}:00:00", "timeZone": "UTC"},
            **extra}


def delta_round(client: httpx.Client, url: str, params: dict[str, str] | None = None,
                page: int = 2) -> tuple[list[dict[str, Any]], str, int]:
    """Every row of a round, its deltaLink and how many pages it took."""
    rows, pages = [], 0
    headers = {"Prefer": f"{UTC_PREFER}, odata.maxpagesize={page}"}
    answer = client.get(url, params=params, headers=headers)
    while True:
        answer.raise_for_status()
        body, pages = answer.json(), pages + 1
        rows += body["value"]
        if "@odata.deltaLink" in body:
            return rows, body["@odata.deltaLink"], pages
        answer = client.get(body["@odata.nextLink"], headers=headers)


def test_delta_pages_then_changes_then_removed_then_410(emu: MicrosoftEmulator) -> None:
    email = "delta@contoso.example"
    client = graph(emu, email)
    cal = client.get("/me/calendars").json()["value"][0]
    assert cal["isDefaultCalendar"] and cal["canEdit"] and cal["owner"]["address"] == email
    ids = [emu.add_event(email, event(f"E{i}", i + 1))["id"] for i in range(5)]
    url = f"/me/calendars/{cal['id']}/calendarView/delta"
    rows, link, pages = delta_round(client, url, WINDOW)
    assert [r["subject"] for r in rows] == ["E0", "E1", "E2", "E3", "E4"] and pages == 3
    assert rows[0]["start"] == {"dateTime": "2027-01-01T09:00:00.0000000", "timeZone": "UTC"}
    again, link, _ = delta_round(client, link)
    assert again == []
    emu.update_event(email, ids[1], {"subject": "E1 renamed"})
    emu.delete_event(email, ids[2])
    changed, link, _ = delta_round(client, link)
    assert {(r["id"], r.get("subject"), "@removed" in r) for r in changed} == {
        (ids[1], "E1 renamed", False), (ids[2], None, True)}
    assert next(r for r in changed if "@removed" in r)["@removed"] == {"reason": "deleted"}
    emu.expire_delta_tokens()
    gone = client.get(link)
    assert gone.status_code == 410 and gone.json()["error"]["code"] == "syncStateNotFound"
    assert client.get(url).status_code == 400  # the window is required
    assert emu.count("delta", user=email) == 7
    assert emu.count("delta", user=email, status=410) == 1


def test_delta_carries_the_transaction_id_and_refuses_expand(emu: MicrosoftEmulator) -> None:
    email = "txn-delta@contoso.example"
    client = graph(emu, email)
    cal = client.get("/me/calendars").json()["value"][0]
    created = client.post(f"/me/calendars/{cal['id']}/events", json=event(
        "Managed", 4, transactionId="txn-7",
        singleValueExtendedProperties=[{"id": PROP, "value": "client-7"}]))
    assert created.status_code == 201
    emu.add_event(email, event("Theirs", 5))
    url = f"/me/calendars/{cal['id']}/calendarView/delta"
    rows, _, _ = delta_round(client, url, WINDOW)
    assert {r["subject"]: r["transactionId"] for r in rows} == {"Managed": "txn-7",
                                                                "Theirs": None}
    assert not [r for r in rows if "singleValueExtendedProperties" in r]
    refused = client.get(url, params={
        **WINDOW, "$expand": f"singleValueExtendedProperties($filter=id eq '{PROP}')"})
    assert refused.status_code == 400, refused.text


def test_transaction_id_survives_a_lost_answer(emu: MicrosoftEmulator) -> None:
    email = "txn@contoso.example"
    client = graph(emu, email)
    body = event("Managed", 3, transactionId="txn-1",
                 singleValueExtendedProperties=[{"id": PROP, "value": "client-1"}],
                 attendees=[{"emailAddress": {"address": "x@example.com", "name": "X"}}],
                 isOnlineMeeting=True, onlineMeetingProvider="teamsForBusiness")
    emu.drop_answers(email)
    with pytest.raises(httpx.RemoteProtocolError):
        client.post("/me/events", json=body)
    retry = client.post("/me/events", json=body)
    assert retry.status_code == 201
    created = retry.json()
    assert created["onlineMeeting"]["joinUrl"].startswith("https://teams.microsoft.com/")
    assert created["attendees"][0]["status"]["response"] == "none"
    assert len(emu.events(email)) == 1
    found = client.get("/me/calendar/events", params={
        "$filter": f"singleValueExtendedProperties/Any(ep: ep/id eq '{PROP}' and "
                   "ep/value eq 'client-1')",
        "$expand": f"singleValueExtendedProperties($filter=id eq '{PROP}')"}).json()["value"]
    assert [f["singleValueExtendedProperties"] for f in found] == [[{"id": PROP,
                                                                     "value": "client-1"}]]
    stale = client.patch(f"/me/events/{created['id']}", json={"subject": "x"},
                         headers={"If-Match": 'W/"not-it"'})
    assert stale.status_code == 412
    fresh = client.patch(f"/me/events/{created['id']}", json={"subject": "y"},
                         headers={"If-Match": created["@odata.etag"]})
    assert fresh.json()["subject"] == "y" and fresh.json()["changeKey"] != created["changeKey"]
    assert client.delete(f"/me/events/{created['id']}").status_code == 204
    assert client.get(f"/me/events/{created['id']}").status_code == 404


def test_series_with_moved_and_cancelled_occurrences(emu: MicrosoftEmulator) -> None:
    email = "series@contoso.example"
    client = graph(emu, email)
    master = emu.add_event(email, event("Weekly", 4, 10, recurrence={
        "pattern": {"type": "weekly", "interval": 1, "daysOfWeek": ["monday"]},
        "range": {"type": "numbered", "startDate": "2027-01-04", "numberOfOccurrences": 4}}))
    view = client.get("/me/calendarView", params=WINDOW).json()["value"]
    assert [(v["type"], v["start"]["dateTime"][:10]) for v in view] == [
        ("occurrence", "2027-01-04"), ("occurrence", "2027-01-11"),
        ("occurrence", "2027-01-18"), ("occurrence", "2027-01-25")]
    assert {v["seriesMasterId"] for v in view} == {master["id"]}
    client.patch(f"/me/events/{view[1]['id']}", json={
        "start": {"dateTime": "2027-01-12T15:00:00", "timeZone": "W. Europe Standard Time"},
        "end": {"dateTime": "2027-01-12T16:00:00", "timeZone": "W. Europe Standard Time"}})
    assert client.delete(f"/me/events/{view[2]['id']}").status_code == 204
    cal_id = client.get("/me/calendar").json()["id"]
    rows, link, _ = delta_round(client, f"/me/calendars/{cal_id}/calendarView/delta", WINDOW,
                                page=10)
    assert [(r["type"], r["start"]["dateTime"][:16]) for r in rows] == [
        ("occurrence", "2027-01-04T10:00"), ("exception", "2027-01-12T14:00"),
        ("occurrence", "2027-01-25T10:00")]
    emu.update_event(email, master["id"], {"subject": "Weekly (renamed)"})
    changed, _, _ = delta_round(client, link, page=10)
    assert sorted(r["type"] for r in changed) == ["occurrence", "occurrence"]
    assert {r["subject"] for r in changed} == {"Weekly (renamed)"}


def test_get_schedule_for_work_and_personal(emu: MicrosoftEmulator) -> None:
    work = graph(emu, "fb@contoso.example", scopes=("Calendars.ReadBasic",))
    emu.add_event("fb@contoso.example", event("Busy", 5, 9, body={"contentType": "text",
                                                                   "content": "secret"}))
    answer = work.post("/me/calendar/getSchedule", json={
        "schedules": ["fb@contoso.example"], "availabilityViewInterval": 60,
        "startTime": {"dateTime": "2027-01-05T08:00:00", "timeZone": "UTC"},
        "endTime": {"dateTime": "2027-01-05T11:00:00", "timeZone": "UTC"}}).json()
    assert answer["value"][0]["availabilityView"] == "020"
    assert answer["value"][0]["scheduleItems"][0]["status"] == "busy"
    basic = work.get("/me/calendarView", params=WINDOW).json()["value"][0]
    assert "body" not in basic  # Calendars.ReadBasic reads no event text
    assert work.post("/me/events", json=event("x", 6)).status_code == 403
    personal = graph(emu, "fb@outlook.example", personal=True)
    refused = personal.post("/me/calendar/getSchedule", json={
        "schedules": ["fb@outlook.example"],
        "startTime": {"dateTime": "2027-01-05T08:00:00", "timeZone": "UTC"},
        "endTime": {"dateTime": "2027-01-05T11:00:00", "timeZone": "UTC"}})
    assert refused.status_code == 403


def test_throttling_per_mailbox(emu: MicrosoftEmulator) -> None:
    slow, other = graph(emu, "slow@contoso.example"), graph(emu, "other@contoso.example")
    emu.inject_fault("slow@contoso.example", status=429, retry_after=2, times=2)
    emu.inject_fault("slow@contoso.example", status=503, retry_after=1)
    assert other.get("/me/calendars").status_code == 200
    first, second, third = (slow.get("/me/calendars") for _ in range(3))
    assert [first.status_code, second.status_code, third.status_code] == [429, 429, 503]
    assert first.headers["Retry-After"] == "2" and third.headers["Retry-After"] == "1"
    assert first.json()["error"]["code"] == "TooManyRequests"
    assert slow.get("/me/calendars").status_code == 200


class Receiver:
    """A local webhook endpoint: echoes validation tokens, records notifications."""

    def __init__(self, echo: bool = True) -> None:
        self.received: list[dict[str, Any]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                token = parse_qs(urlsplit(self.path).query).get("validationToken")
                answer = (token[0] if token and echo else "").encode()
                if not token:
                    outer.received.append(json.loads(body))
                self.send_response(200 if token or not echo else 202)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hook"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def test_subscription_handshake_notifications_and_lifecycle(emu: MicrosoftEmulator) -> None:
    email = "push@contoso.example"
    client = graph(emu, email)
    receiver, deaf = Receiver(), Receiver(echo=False)
    try:
        expires = (datetime.now(UTC) + timedelta(days=2)).isoformat()
        body = {"changeType": "created,updated,deleted", "notificationUrl": receiver.url,
                "lifecycleNotificationUrl": receiver.url, "resource": "me/events",
                "expirationDateTime": expires, "clientState": "s3"}
        assert client.post("/subscriptions", json={**body, "notificationUrl": deaf.url}
                           ).json()["error"]["code"] == "ValidationError"
        too_long = (datetime.now(UTC) + timedelta(minutes=4231)).isoformat()
        assert client.post("/subscriptions", json={**body, "expirationDateTime": too_long}
                           ).status_code == 400
        sub = client.post("/subscriptions", json=body).json()
        created = emu.add_event(email, event("Pushed", 7))
        emu.update_event(email, created["id"], {"subject": "Pushed again"})
        eventually(lambda: len(receiver.received) >= 2 or None)
        first = receiver.received[0]["value"][0]
        assert (first["subscriptionId"], first["clientState"], first["changeType"]) == (
            sub["id"], "s3", "created")
        assert first["resourceData"]["id"] == created["id"]
        renewed = client.patch(f"/subscriptions/{sub['id']}", json={
            "expirationDateTime": (datetime.now(UTC) + timedelta(minutes=4200)).isoformat()})
        assert renewed.json()["expirationDateTime"] > sub["expirationDateTime"]
        emu.lifecycle(sub["id"], "reauthorizationRequired")
        eventually(lambda: len(receiver.received) >= 3 or None)
        assert receiver.received[2]["value"][0]["lifecycleEvent"] == "reauthorizationRequired"
        assert client.delete(f"/subscriptions/{sub['id']}").status_code == 204
        assert emu.subscriptions() == []
    finally:
        receiver.close()
        deaf.close()


def with_sdk(emu: MicrosoftEmulator, client: httpx.Client,
             calls: Callable[[Any], Awaitable[T]]) -> T:
    """Run ``calls(sdk)`` with Microsoft's msgraph-sdk, as ``client``'s user, against the
    emulator."""
    from kiota_abstractions.authentication import (
        AccessTokenProvider,
        AllowedHostsValidator,
        BaseBearerTokenAuthenticationProvider,
    )
    from msgraph import GraphRequestAdapter, GraphServiceClient
    from msgraph_core import GraphClientFactory

    token = client.headers["Authorization"][7:]

    class Static(AccessTokenProvider):  # type: ignore[misc]
        async def get_authorization_token(self, uri: str, additional: Any = None) -> str:
            return token

        def get_allowed_hosts_validator(self) -> AllowedHostsValidator:
            return AllowedHostsValidator([])

    async def run() -> T:
        raw = httpx.AsyncClient(verify=emu.ca.client_context(), trust_env=False)
        inner = raw._transport  # the SDK's wrapping transport does not close it
        # Microsoft's middleware (retry, redirect, the /users/me-token-to-replace -> /me
        # rewrite) on a client that trusts the emulator's CA
        async with GraphClientFactory.create_with_default_middleware(client=raw) as http:
            adapter = GraphRequestAdapter(BaseBearerTokenAuthenticationProvider(Static()),
                                          client=http)
            adapter.base_url = emu.graph_url
            found = await calls(GraphServiceClient(request_adapter=adapter))
        await inner.aclose()
        return found

    return aio.run(run())  # a thread of its own: see tests/support/aio.py


# msgraph-sdk's generated code warns about its own deprecated classes on import
@pytest.mark.filterwarnings("ignore:GetQueryParameters is deprecated:DeprecationWarning")
@pytest.mark.filterwarnings("ignore:This class is deprecated:DeprecationWarning")
def test_msgraph_sdk_reads_calendars_and_events(emu: MicrosoftEmulator) -> None:
    email = "sdk@contoso.example"
    client = graph(emu, email)
    emu.add_calendar(email, "Shared", can_edit=False, owner=("Boss", "boss@contoso.example"))
    emu.add_event(email, event("From SDK", 8, attendees=[
        {"emailAddress": {"address": "a@example.com", "name": "A"}, "type": "required"}],
        location={"displayName": "Room 1"}, isOnlineMeeting=True))

    async def calls(sdk: Any) -> tuple[Any, Any]:
        calendars = await sdk.me.calendars.get()
        events = await sdk.me.calendars.by_calendar_id(calendars.value[0].id).events.get()
        return calendars, events

    calendars, events = with_sdk(emu, client, calls)
    assert [(c.name, c.can_edit, c.owner.address) for c in calendars.value] == [
        ("Calendar", True, email), ("Shared", False, "boss@contoso.example")]
    found = events.value[0]
    assert found.subject == "From SDK" and found.location.display_name == "Room 1"
    assert found.start.date_time.startswith("2027-01-08T09:00") and found.start.time_zone == "UTC"
    assert found.attendees[0].email_address.address == "a@example.com"
    assert found.online_meeting.join_url.startswith("https://teams.microsoft.com/")
    assert found.last_modified_date_time is not None and found.i_cal_u_id


def invitation(emu: MicrosoftEmulator, email: str, subject: str, day: int,
               **extra: Any) -> dict[str, Any]:
    return emu.add_event(email, event(subject, day, attendees=[
        {"emailAddress": {"address": email}, "type": "required"}], **extra),
        invited_by=("Boss", "boss@contoso.example"))


WEEKLY = {"pattern": {"type": "weekly", "interval": 1, "daysOfWeek": ["monday"]},
          "range": {"type": "numbered", "startDate": "2027-01-04", "numberOfOccurrences": 4}}


def test_instances_of_a_series_in_a_window(emu: MicrosoftEmulator) -> None:
    email = "instances@contoso.example"
    client = graph(emu, email, scopes=("Calendars.ReadBasic",))  # enough, as documented
    master = emu.add_event(email, event("Weekly", 4, 10, recurrence=WEEKLY))
    url = f"/me/events/{master['id']}/instances"
    first = client.get(url, params=WINDOW).json()
    assert first["@odata.context"].endswith(f"/events('{master['id']}')/instances")
    occurrences = first["value"]
    assert [(o["type"], o["start"]["dateTime"][:10], o["seriesMasterId"]) for o in occurrences
            ] == [("occurrence", f"2027-01-{d:02d}", master["id"]) for d in (4, 11, 18, 25)]
    emu.update_event(email, occurrences[1]["id"], {"subject": "Moved"})
    emu.delete_event(email, occurrences[2]["id"])
    later = client.get(f"/me/calendar/events/{master['id']}/instances", params={
        "startDateTime": "2027-01-10T00:00:00Z", "endDateTime": "2027-02-01T00:00:00Z"})
    assert [(o["type"], o["subject"]) for o in later.json()["value"]] == [
        ("exception", "Moved"), ("occurrence", "Weekly")]  # the cancelled one is left out
    single = emu.add_event(email, event("Once", 6))
    assert client.get(f"/me/events/{single['id']}/instances",
                      params=WINDOW).json()["value"] == []
    assert client.get(url).status_code == 400  # the window is required
    assert client.get("/me/events/AAMkNope/instances", params=WINDOW).status_code == 404


def test_answers_to_invitations(emu: MicrosoftEmulator) -> None:
    email = "answers@contoso.example"
    client = graph(emu, email)
    single = invitation(emu, email, "Board", 5)
    assert (single["isOrganizer"], single["responseStatus"]["response"]) == (
        False, "notResponded")
    accepted = client.post(f"/me/events/{single['id']}/accept",
                           json={"comment": "Yes", "sendResponse": True})
    assert accepted.status_code == 202 and accepted.content == b""
    assert emu.event(email, single["id"])["responseStatus"]["response"] == "accepted"
    assert client.post(f"/me/events/{single['id']}/decline",
                       json={"sendResponse": False}).status_code == 202
    assert emu.event(email, single["id"])["responseStatus"]["response"] == "declined"

    # One occurrence of a series: it becomes an exception, the series stays unanswered.
    master = invitation(emu, email, "Series", 4, recurrence=WEEKLY)
    view = client.get(f"/me/events/{master['id']}/instances", params=WINDOW).json()["value"]
    answer = client.post(f"/me/calendar/events/{view[1]['id']}/tentativelyAccept", json={})
    assert answer.status_code == 202
    after = client.get(f"/me/events/{master['id']}/instances", params=WINDOW).json()["value"]
    assert [(o["type"], o["responseStatus"]["response"]) for o in after] == [
        ("occurrence", "notResponded"), ("exception", "tentativelyAccepted"),
        ("occurrence", "notResponded"), ("occurrence", "notResponded")]

    mine = emu.add_event(email, event("Mine", 7))  # the organizer cannot answer
    refused = client.post(f"/me/events/{mine['id']}/accept", json={})
    assert refused.status_code == 400 and "organizer" in refused.json()["error"]["message"]
    odd = client.post(f"/me/events/{single['id']}/accept", json={"sendResponses": True})
    assert odd.status_code == 400 and odd.json()["error"]["code"] == "RequestBodyRead"
    assert client.post(f"/me/events/{single['id']}/maybe", json={}).status_code == 400
    reader = graph(emu, "reader@contoso.example", scopes=("Calendars.Read",))
    theirs = invitation(emu, "reader@contoso.example", "Read only", 8)
    assert reader.post(f"/me/events/{theirs['id']}/accept", json={}).status_code == 403
    assert emu.count("events.accept", user=email, status=202) == 1
    assert emu.count("events.tentativelyAccept", user=email, status=202) == 1


# msgraph-sdk's generated code warns about its own deprecated classes on import
@pytest.mark.filterwarnings("ignore:GetQueryParameters is deprecated:DeprecationWarning")
@pytest.mark.filterwarnings("ignore:This class is deprecated:DeprecationWarning")
def test_msgraph_sdk_lists_instances_and_answers(emu: MicrosoftEmulator) -> None:
    from kiota_abstractions.base_request_configuration import RequestConfiguration
    from msgraph.generated.users.item.events.item.accept.accept_post_request_body import (
        AcceptPostRequestBody,
    )
    from msgraph.generated.users.item.events.item.decline.decline_post_request_body import (
        DeclinePostRequestBody,
    )
    from msgraph.generated.users.item.events.item.instances.instances_request_builder import (
        InstancesRequestBuilder,
    )

    email = "sdk-answers@contoso.example"
    client = graph(emu, email)
    master = invitation(emu, email, "SDK series", 4, recurrence=WEEKLY)
    single = invitation(emu, email, "SDK single", 6)
    window = RequestConfiguration(query_parameters=InstancesRequestBuilder.
                                  InstancesRequestBuilderGetQueryParameters(
                                      start_date_time=WINDOW["startDateTime"],
                                      end_date_time=WINDOW["endDateTime"]))

    async def calls(sdk: Any) -> Any:
        events = sdk.me.events
        listed = await events.by_event_id(master["id"]).instances.get(window)
        await events.by_event_id(single["id"]).accept.post(
            AcceptPostRequestBody(comment="See you", send_response=True))
        await events.by_event_id(listed.value[0].id).decline.post(
            DeclinePostRequestBody(send_response=False))
        return listed

    listed = with_sdk(emu, client, calls)
    assert [(i.subject, i.series_master_id, i.start.date_time[:10]) for i in listed.value] == [
        ("SDK series", master["id"], f"2027-01-{d:02d}") for d in (4, 11, 18, 25)]
    assert listed.value[0].response_status.response.value == "notResponded"
    assert emu.event(email, single["id"])["responseStatus"]["response"] == "accepted"
    first = client.get(f"/me/events/{master['id']}/instances", params=WINDOW).json()["value"]
    assert [o["responseStatus"]["response"] for o in first] == [
        "declined", "notResponded", "notResponded", "notResponded"]

"""Upserts with Cronofy's semantics on every provider (issue 13): a partial re-upsert changes
only what it carries and keeps the rest, attendees are invited and rejected one by one, the
newer fields (url, reminders, location coordinates, extended_transparency, color) reach the
upstream and come back through a sync and a read, and a field a provider cannot carry is a
422 naming it, before anything is recorded. Google and Microsoft run against their
emulators, CalDAV against a real Radicale, all through the gateway's own outbox and sync."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import icalendar
import pytest
from sqlalchemy import select

from gateway.persistence.tables import managed_events
from gateway.services.accounts import PendingAccount
from providers.google import oauth as google_oauth
from providers.microsoft.scopes import SCOPE_TABLE, graph_scopes
from tests.emulators.google import GoogleEmulator
from tests.emulators.google.shared import new_email as google_email
from tests.emulators.microsoft import MicrosoftEmulator
from tests.emulators.microsoft.shared import new_email as microsoft_email
from tests.integration.test_caldav_sync_api import bearer_for, sync
from tests.support import aio
from tests.support.davservers import DavOwner, RadicaleServer
from tests.support.outbound import LOOPBACK_NETWORKS

SCOPE = "read_account list_calendars read_events read_free_busy create_event delete_event"
GOOGLE_APP, MICROSOFT_APP = ("up-gid", "up-gsecret"), ("up-entra", "up-entra-secret")
PROVIDERS = ["google", "office365", "caldav"]


@pytest.fixture(scope="module")
def google_emu() -> Iterator[GoogleEmulator]:
    with GoogleEmulator.running() as emulator:
        emulator.register_app(*GOOGLE_APP, "Calgate", ["http://127.0.0.1:9/cb"])
        yield emulator


@pytest.fixture(scope="module")
def microsoft_emu() -> Iterator[MicrosoftEmulator]:
    with MicrosoftEmulator.running() as emulator:
        emulator.register_app(*MICROSOFT_APP, "Calgate", ["http://127.0.0.1:9/cb"])
        yield emulator


@pytest.fixture
def settings(settings, google_emu, microsoft_emu):
    return settings.replace(worker_mode="external", google_url=google_emu.base_url,
                            office365_authority_base=microsoft_emu.base_url,
                            office365_graph_base=microsoft_emu.base_url,
                            office365_ca_bundle=str(microsoft_emu.ca_path),
                            outbound_allow_networks=LOOPBACK_NETWORKS)


@dataclass
class Account:
    """A linked account of one provider, its token, its calendar, and a look upstream."""

    provider: str
    gateway: Any
    http: Any
    profile_id: str
    headers: dict[str, str]
    calendar_id: str
    upstream: Callable[[str], Any]  # summary -> the upstream's stored event

    def upsert(self, **fields: Any) -> Any:
        return self.http.post(f"/v1/calendars/{self.calendar_id}/events",
                              headers=self.headers, json={"event_id": "e1", **fields})

    def apply(self) -> None:
        """The worker's outbox, then a sync: the read shows what the upstream holds."""
        outbox = self.gateway.worker.outbox
        for managed_id in outbox.due():
            assert aio.run(outbox.apply(managed_id)).ok
        sync(self.gateway, self.profile_id)

    def read(self) -> dict[str, Any]:
        r = self.http.get("/v1/events", headers=self.headers, params={
            "tzid": "Etc/UTC", "only_managed": "true", "include_geo": "true"})
        assert r.status_code == 200, r.text
        (event,) = r.json()["events"]
        return event


def _link(gateway, http, provider: str, credentials: dict[str, str], email: str
          ) -> tuple[str, dict[str, str], str]:
    parked = gateway.accounts.park_credentials(uuid.uuid4().hex, credentials)
    profile = gateway.accounts.link("cli_u", PendingAccount(provider, provider, email, email,
                                                            parked), None, SCOPE.split())
    sync(gateway, profile.profile_id)
    headers = bearer_for(http, gateway, profile.subject, SCOPE)
    calendars = http.get("/v1/calendars", headers=headers).json()["calendars"]
    calendar_id = next(c["calendar_id"] for c in calendars
                       if c["calendar_primary"] or len(calendars) == 1)
    return profile.profile_id, headers, calendar_id


def _google(gateway, http, emu: GoogleEmulator) -> Account:
    gateway.apps.configure("google", *GOOGLE_APP)
    email = emu.add_user(google_email("up"))
    refresh = emu.issue_refresh_token(email, GOOGLE_APP[0],
                                      google_oauth.upstream_scopes(SCOPE.split()))
    linked = _link(gateway, http, "google", {"refresh_token": refresh, "app": "default"},
                   email)

    def upstream(summary: str) -> Any:
        return next(e for e in emu.events(email) if e.get("summary") == summary)

    return Account("google", gateway, http, *linked, upstream)


def _microsoft(gateway, http, emu: MicrosoftEmulator) -> Account:
    gateway.apps.configure("office365", *MICROSOFT_APP)
    email = microsoft_email("up")
    emu.add_user(email)
    user = emu.user(email)
    scopes = graph_scopes(rule.calgate_scope for rule in SCOPE_TABLE)
    credentials = {"refresh_token": emu.issue_refresh_token(email, MICROSOFT_APP[0], scopes),
                   "account_id": f"{user['oid']}.{user['tid']}", "tenant": user["tid"],
                   "scopes": " ".join(scopes), "app": "default"}
    linked = _link(gateway, http, "office365", credentials, email)

    def upstream(summary: str) -> Any:
        return next(e for e in emu.events(email) if e.get("subject") == summary)

    return Account("office365", gateway, http, *linked, upstream)


def _caldav(gateway, http, server: RadicaleServer, owner: DavOwner, path: str) -> Account:
    credentials = {"server_url": server.url, "username": "alice", "password": "wonderland"}
    linked = _link(gateway, http, "caldav", credentials, "alice")

    def upstream(summary: str) -> Any:
        for item in owner.calendar(path).events():
            event = icalendar.Calendar.from_ical(item.data).walk("VEVENT")[0]
            if str(event.get("SUMMARY")) == summary:
                return event
        raise LookupError(summary)

    return Account("caldav", gateway, http, *linked, upstream)


@pytest.fixture(params=PROVIDERS)
def account(request, gateway, http, google_emu, microsoft_emu) -> Iterator[Account]:
    if request.param == "google":
        yield _google(gateway, http, google_emu)
    elif request.param == "office365":
        yield _microsoft(gateway, http, microsoft_emu)
    else:
        with RadicaleServer(users={"alice": "wonderland"}) as server:
            owner = DavOwner(server.url, "alice", "wonderland")
            path = owner.make_calendar("Work")
            try:
                yield _caldav(gateway, http, server, owner, path)
            finally:
                owner.close()


def stamp(days: float) -> str:
    moment = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(days=days)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


START, END = stamp(2), stamp(2.05)
GEO = {"lat": "51.5074", "long": "-0.1278"}


def full_body(account: Account) -> dict[str, Any]:
    """Every field the account's provider can write."""
    body: dict[str, Any] = {
        "summary": "Mentoring", "description": "Agenda", "start": START, "end": END,
        "location": {"description": "Room 4", **GEO}, "transparency": "transparent",
        "event_private": True, "reminders": [{"minutes": 30}, {"minutes": 10}],
        "attendees": {"invite": [{"email": "a@example.org", "display_name": "Ann"},
                                 {"email": "b@example.org"}]}}
    if account.provider != "office365":
        body |= {"url": "https://app.example/sessions/1", "color": "#dc2127"}
    return body


KEPT_REMINDERS = {"google": [30, 10], "office365": [30], "caldav": [30, 10]}


def test_a_partial_re_upsert_keeps_what_cronofy_keeps(account):
    assert account.upsert(**full_body(account)).status_code == 202
    account.apply()
    # The issue's re-upsert: only summary, times and one rejection.
    r = account.upsert(summary="Renamed", start=START, end=END,
                       attendees={"reject": [{"email": "b@example.org"}]})
    assert r.status_code == 202, r.text
    account.apply()
    event = account.read()
    assert event["summary"] == "Renamed" and event["description"] == "Agenda"
    assert [a["email"] for a in event["attendees"]] == ["a@example.org"]  # never rejected
    assert event["location"]["description"] == "Room 4"
    assert (float(event["location"]["lat"]), float(event["location"]["long"])) == (
        51.5074, -0.1278)
    assert event["transparency"] == "transparent"
    assert event["extended_transparency"] == "transparent"
    assert event["event_private"] is True
    assert [r["minutes"] for r in event["reminders"]] == KEPT_REMINDERS[account.provider]
    if account.provider != "office365":
        assert event["url"] == "https://app.example/sessions/1"


def test_the_fields_reach_the_upstream_and_url_null_clears(account):
    assert account.upsert(**full_body(account)).status_code == 202
    account.apply()
    stored = account.upstream("Mentoring")
    if account.provider == "google":
        assert stored["colorId"] == "11"  # #dc2127 is Google's "Tomato"
        assert [o["minutes"] for o in stored["reminders"]["overrides"]] == [30, 10]
        assert stored["source"]["url"] == "https://app.example/sessions/1"
        assert stored["visibility"] == "private" and stored["transparency"] == "transparent"
    elif account.provider == "office365":
        assert stored["location"]["coordinates"] == {"latitude": 51.5074,
                                                     "longitude": -0.1278}
        assert (stored["isReminderOn"], stored["reminderMinutesBeforeStart"]) == (True, 30)
        assert stored["showAs"] == "free" and stored["sensitivity"] == "private"
    else:
        assert str(stored["COLOR"]) == "red"  # RFC 7986: the nearest CSS name
        assert (stored["GEO"].latitude, stored["GEO"].longitude) == (51.5074, -0.1278)
        assert str(stored["URL"]) == "https://app.example/sessions/1"
        assert len(stored.walk("VALARM")) == 2
    if account.provider == "office365":
        return  # no URL to clear
    assert account.upsert(summary="Mentoring", start=START, end=END, url=None,
                          color=None).status_code == 202
    account.apply()
    event = account.read()
    assert "url" not in event and event["description"] == "Agenda"


def test_extended_transparency_and_what_a_provider_refuses(account):
    refused = {"google": ("extended_transparency", {"extended_transparency": "out_of_office"}),
               "caldav": ("extended_transparency", {"extended_transparency": "tentative"}),
               "office365": ("color", {"color": "#49BED8"})}
    field, extra = refused[account.provider]
    r = account.upsert(summary="S", start=START, end=END, **extra)
    assert r.status_code == 422, r.text
    assert [e["key"] for e in r.json()["errors"][field]] == ["errors.unsupported"]
    with account.gateway.engine.connect() as conn:  # nothing was accepted
        assert conn.execute(select(managed_events.c.id)).all() == []
    if account.provider != "office365":
        return
    assert account.upsert(summary="S", start=START, end=END, url="https://x.example"
                          ).status_code == 422
    assert account.upsert(summary="S", start=START, end=END,
                          extended_transparency="out_of_office").status_code == 202
    account.apply()
    assert account.upstream("S")["showAs"] == "oof"
    event = account.read()
    assert (event["transparency"], event["extended_transparency"]) == ("opaque",
                                                                       "out_of_office")


def test_reminders_create_only_leave_later_reminders_to_the_owner(account):
    body = {"summary": "Call", "start": START, "end": END, "reminders_create_only": True}
    assert account.upsert(**body, reminders=[{"minutes": 45}]).status_code == 202
    account.apply()
    assert account.upsert(**body, reminders=[{"minutes": 5}]).status_code == 202
    account.apply()
    assert [r["minutes"] for r in account.read()["reminders"]] == [45]


@pytest.fixture
def google_account(gateway, http, google_emu, settings) -> Account:
    return _google(gateway, http, google_emu)


def test_google_cancels_only_for_guests_the_client_rejected(google_account, google_emu):
    account = google_account
    invite = {"invite": [{"email": "a@example.org"}, {"email": "b@example.org"}]}
    assert account.upsert(summary="Talk", start=START, end=END,
                          attendees=invite).status_code == 202
    account.apply()
    google_emu.mail.clear()
    assert account.upsert(summary="Talk (moved)", start=START, end=END).status_code == 202
    account.apply()
    assert not any(m["action"] == "cancelled" for m in google_emu.mail)  # nobody was removed
    assert account.upsert(summary="Talk (moved)", start=START, end=END, attendees={
        "reject": [{"email": "a@example.org"}, {"email": "b@example.org"}]}).status_code == 202
    account.apply()
    cancelled = [m for m in google_emu.mail if m["action"] == "cancelled"]
    assert [m["recipients"] for m in cancelled] == [["a@example.org", "b@example.org"]]
    assert account.read()["attendees"] == []

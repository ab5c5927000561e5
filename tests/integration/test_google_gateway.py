"""Google behind the gateway, against the emulator: the outbox rides out quota errors,
invalid_grant disconnects the profile, and erasure revokes the grant at Google and stops its
push channels before the credentials go."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from gateway.persistence.tables import managed_events, profiles, push_channels
from gateway.services.accounts import PendingAccount
from gateway.services.push import PushService, PushSettings
from gateway.sync.outbox import Outbox
from providers.google import oauth as google_oauth
from providers.google.config import GoogleSettings
from providers.google.mapping import MANAGED_KEY
from providers.registry import ProviderOptions
from tests.emulators.google import GoogleEmulator
from tests.emulators.google.shared import new_email
from tests.integration.test_caldav_sync_api import bearer_for, sync
from tests.support import aio

SCOPE = "read_account list_calendars read_events read_free_busy create_event delete_event"
EVENTS = r"/calendar/v3/calendars/[^/]+/events$"


@pytest.fixture(scope="module")
def emu():
    """An emulator of its own: the faults and request counts here are no other test's."""
    with GoogleEmulator.running() as emulator:
        emulator.register_app("gw-cid", "gw-secret", "Calgate", ["http://127.0.0.1:9/cb"])
        yield emulator


@pytest.fixture(autouse=True)
def _clean(emu):
    yield
    emu.clear_faults()


@pytest.fixture
def settings(settings, emu):
    return settings.replace(worker_mode="external", google_url=emu.base_url,
                            provider_push="on")


@pytest.fixture
def linked(gateway, emu, http):
    """A Google account linked as the consent screen would: refresh token + app owner."""
    gateway.apps.configure("google", "gw-cid", "gw-secret")
    email = emu.add_user(new_email("gw"))
    granted = google_oauth.upstream_scopes(SCOPE.split())
    refresh = emu.issue_refresh_token(email, "gw-cid", granted)
    parked = gateway.accounts.park_credentials(uuid.uuid4().hex, {"refresh_token": refresh,
                                                                  "app": "default"})
    profile = gateway.accounts.link("cli_g", PendingAccount("google", "google", email, email,
                                                            parked), None, SCOPE.split())
    sync(gateway, profile.profile_id)
    headers = bearer_for(http, gateway, profile.subject, SCOPE)
    calendar_id = next(c["calendar_id"] for c in http.get(
        "/v1/calendars", headers=headers).json()["calendars"] if c["calendar_primary"])
    return email, profile, headers, calendar_id


def test_200_writes_under_quota_errors_land_exactly_once(gateway, emu, http, linked):
    email, _profile, headers, calendar_id = linked
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(days=3)
    for n in range(200):
        at = start + timedelta(hours=n)
        r = http.post(f"/v1/calendars/{calendar_id}/events", headers=headers, json={
            "event_id": f"batch-{n:03d}", "summary": f"Session {n}",
            "start": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "end": (at + timedelta(minutes=45)).strftime("%Y-%m-%dT%H:%M:%SZ")})
        assert r.status_code == 202, r.text
    emu.inject_fault(EVENTS, method="POST", status=403, reason="rateLimitExceeded", times=40)
    emu.inject_fault(EVENTS, method="GET", status=403, reason="userRateLimitExceeded",
                     times=20)
    emu.inject_fault(EVENTS, method="POST", status=429, retry_after=0.01, times=30)
    emu.inject_fault(EVENTS, status=503, times=20)
    emu.drop_answers(EVENTS, method="POST", times=5)  # applied, but the answer is lost
    # The gateway's own outbox, with Google's retry knobs small so the test is quick: what
    # the provider gives up on goes back to the outbox, which tries again later.
    options = ProviderOptions(settings={"google": GoogleSettings.from_values(
        gateway.settings.provider_values("google") | {
            "retry_attempts": "3", "retry_base_seconds": "0.005",
            "retry_max_delay_seconds": "0.02"})})
    outbox = Outbox(gateway.engine, gateway.secrets, gateway.worker.outbox.keys, options)
    for _round in range(30):
        with gateway.engine.begin() as conn:  # time passes: the backoff is over
            conn.execute(update(managed_events).values(next_attempt_at=datetime.now(UTC)))
        due = outbox.due()
        if not due:
            break
        for managed_id in due:
            aio.run(outbox.apply(managed_id))
    with gateway.engine.connect() as conn:
        pending = conn.execute(select(managed_events.c.id).where(
            managed_events.c.applied_version < managed_events.c.version)).all()
    assert pending == []
    upstream = [e for e in emu.events(email) if e["summary"].startswith("Session ")]
    keys = [e["extendedProperties"]["private"][MANAGED_KEY] for e in upstream]
    assert len(upstream) == 200 and len(set(keys)) == 200
    assert emu.count(status=403) + emu.count(status=429) + emu.count(status=503) >= 100


def test_invalid_grant_disconnects_the_profile(gateway, emu, http, linked):
    email, profile, headers, _calendar_id = linked
    emu.revoke_user_tokens(email)
    emu.expire_access_tokens(email)
    with gateway.engine.begin() as conn:
        conn.execute(update(profiles).values(next_sync_at=datetime.now(UTC)))
    outcome = aio.run(gateway.worker.sync.sync_profile(profile.profile_id))
    assert outcome.error is not None
    with gateway.engine.connect() as conn:
        row = conn.execute(select(profiles.c.connected, profiles.c.disconnected_at).where(
            profiles.c.id == profile.profile_id)).one()
    assert row.connected is False and row.disconnected_at is not None
    body = http.get("/v1/userinfo", headers=headers).json()
    (shown,) = body["cronofy.data"]["profiles"]
    assert shown["profile_connected"] is False and "profile_relink_url" in shown
    assert profile.profile_id not in gateway.worker.sync.due_profiles()


def test_erasure_stops_channels_and_revokes_the_grant_at_google(gateway, emu, http, linked):
    _email, profile, _headers, _calendar_id = linked
    push = PushService(gateway.engine, gateway.push.opener,
                       PushSettings(True, "http://127.0.0.1:9", 3600))
    assert profile.profile_id in push.due()
    assert aio.run(push.maintain(profile.profile_id)) >= 1
    assert profile.profile_id not in push.due()  # nothing more to do until renewal
    with gateway.engine.connect() as conn:
        channel_ids = [r[0] for r in conn.execute(select(push_channels.c.id).where(
            push_channels.c.profile_id == profile.profile_id))]
    assert set(channel_ids) <= set(emu.channels)
    emu.clear_requests()
    gateway.accounts.revoke_profile(profile.subject, profile.profile_id)
    assert emu.count(path="/revoke") == 1
    assert emu.count("channels.stop") == len(channel_ids)
    assert not set(channel_ids) & set(emu.channels)
    with gateway.engine.connect() as conn:
        assert conn.execute(select(push_channels.c.id)).all() == []
        assert conn.execute(select(profiles.c.id).where(
            profiles.c.id == profile.profile_id)).all() == []


def test_the_clients_own_google_app_is_used_when_it_has_one(gateway, emu):
    from gateway.app import provider_options
    from gateway.services.linking import VerificationFailed
    from gateway.services.upstream import UpstreamConnector
    from providers.registry import get_entry

    entry, options = get_entry("google"), provider_options(gateway.settings)
    connector = UpstreamConnector(entry, entry.upstream_oauth(options), gateway.apps, options)
    scopes = frozenset({"read_free_busy"})
    with pytest.raises(VerificationFailed, match="not set up"):
        connector.authorization_url("cli_none", scopes, "http://x/cb", "st", "v" * 43)
    gateway.apps.configure("google", "default-cid", "default-secret")
    gateway.apps.configure("google", "portal-cid", "portal-secret", "cli_portal")
    own = connector.authorization_url("cli_portal", scopes, "http://x/cb", "st", "v" * 43)
    other = connector.authorization_url("cli_other", scopes, "http://x/cb", "st", "v" * 43)
    assert "client_id=portal-cid" in own and "client_id=default-cid" in other
    gateway.delete_client("cli_portal")  # its upstream app goes with it
    assert gateway.apps.describe("google", "cli_portal") is None


def test_creating_a_calendar_goes_to_the_configured_google(gateway, emu, http):
    """POST /v1/calendars on a Google profile reaches CALGATE_GOOGLE_URL (the emulator), not
    Google itself: the calendar service is built with the provider settings."""
    scope = "read_account list_calendars create_calendar"
    gateway.apps.configure("google", "gw-cid", "gw-secret")
    email = emu.add_user(new_email("cal"))
    refresh = emu.issue_refresh_token(email, "gw-cid",
                                      google_oauth.upstream_scopes(scope.split()))
    parked = gateway.accounts.park_credentials(uuid.uuid4().hex, {"refresh_token": refresh,
                                                                  "app": "default"})
    profile = gateway.accounts.link("cli_c", PendingAccount("google", "google", email, email,
                                                            parked), None, scope.split())
    headers = bearer_for(http, gateway, profile.subject, scope)
    before = emu.count("calendars.insert")
    r = http.post("/v1/calendars", headers=headers,
                  json={"profile_id": profile.profile_id, "name": "Mentoring"})
    assert r.status_code == 200, r.text
    assert r.json()["calendar"]["calendar_name"] == "Mentoring"
    assert r.json()["calendar"]["calendar_integrated_conferencing_available"] is True
    assert emu.count("calendars.insert") == before + 1
    assert "Mentoring" in {c["calendar_name"] for c in http.get(
        "/v1/calendars", headers=headers).json()["calendars"]}


def test_google_event_ids_adds_the_id_google_knows(gateway, emu, http, linked):
    email, profile, headers, calendar_id = linked
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(days=2)

    def at(hours: int) -> dict[str, str]:
        return {"dateTime": (start + timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M:%SZ")}

    emu.add_event(email, "primary", {"id": "plainone", "summary": "Theirs",
                                     "start": at(0), "end": at(1)})
    emu.add_event(email, "primary", {"id": "weeklyone", "summary": "Weekly",
                                     "start": at(2) | {"timeZone": "Etc/UTC"},
                                     "end": at(3) | {"timeZone": "Etc/UTC"},
                                     "recurrence": ["RRULE:FREQ=WEEKLY;COUNT=2"]})
    r = http.post(f"/v1/calendars/{calendar_id}/events", headers=headers, json={
        "event_id": "mine", "summary": "Mine", "start": at(4)["dateTime"],
        "end": at(5)["dateTime"]})
    assert r.status_code == 202, r.text
    for managed_id in gateway.worker.outbox.due():
        assert aio.run(gateway.worker.outbox.apply(managed_id)).ok
    sync(gateway, profile.profile_id)
    plain = http.get("/v1/events", headers=headers, params={
        "tzid": "Etc/UTC", "include_managed": "true"}).json()["events"]
    assert plain and all("google_event_id" not in e for e in plain)
    r = http.get("/v1/events", headers=headers, params={
        "tzid": "Etc/UTC", "include_managed": "true", "google_event_ids": "True"})
    assert r.status_code == 200, r.text
    ids = {e["summary"]: e["google_event_id"] for e in r.json()["events"]
           if e["summary"] != "Weekly"}
    weekly = [e["google_event_id"] for e in r.json()["events"] if e["summary"] == "Weekly"]
    upstream = {e["summary"]: e["id"] for e in emu.events(email)}
    assert ids["Theirs"] == "plainone" and ids["Mine"] == upstream["Mine"]
    assert len(weekly) == 2 and all(i.startswith("weeklyone_") for i in weekly)
    for google_id in weekly:  # each is an id Google's own API answers for
        assert emu.event(email, "primary", google_id)["summary"] == "Weekly"


def test_explicit_conferencing_round_trips_through_google(gateway, emu, http, linked):
    email, profile, headers, calendar_id = linked
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(days=2)
    join = "https://zoom.example/j/42?pwd=x"
    r = http.post(f"/v1/calendars/{calendar_id}/events", headers=headers, json={
        "event_id": "zoomed", "summary": "Zoomed", "start": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "end": (start + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "conferencing": {"profile_id": "explicit", "provider_description": "Zoom",
                         "join_url": join}})
    assert r.status_code == 202, r.text
    for managed_id in gateway.worker.outbox.due():
        assert aio.run(gateway.worker.outbox.apply(managed_id)).ok
    (upstream,) = [e for e in emu.events(email) if e["summary"] == "Zoomed"]
    assert upstream["location"] == join and "conferenceData" not in upstream
    sync(gateway, profile.profile_id)
    (event,) = [e for e in http.get("/v1/events", headers=headers, params={
        "tzid": "Etc/UTC", "include_managed": "true"}).json()["events"]
        if e["summary"] == "Zoomed"]
    assert event["conferencing"] == {"provider_name": "Zoom", "join_url": join}
    assert event["meeting_url"] == join and event["location"] == {"description": join}

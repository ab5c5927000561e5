"""Per-event subscriptions are sent (issue 13): when Google gives the app's own event a
Meet link, each subscription with ``conferencing_assigned`` gets one notification, signed
with the client app's secret, delivered to a real receiver; exactly once, even after more
syncs; none without a subscription; gone with the account."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from gateway.persistence.tables import smart_invite_notifications as notices
from gateway.services.accounts import PendingAccount
from providers.google import oauth as google_oauth
from tests.emulators.google.shared import new_email
from tests.integration.test_caldav_sync_api import bearer_for, sync
from tests.integration.test_google_gateway import SCOPE, emu  # noqa: F401  (fixture)
from tests.integration.test_smart_invites import deliver_all
from tests.support import aio
from tests.support.oauth import make_client
from tests.support.receiver import Receiver

ASSIGNED = "conferencing_assigned"


@pytest.fixture
def settings(settings, emu):  # noqa: F811
    return settings.replace(worker_mode="external", google_url=emu.base_url,
                            callback_http_hosts="127.0.0.1",
                            outbound_allow_networks="127.0.0.0/8")


@pytest.fixture
def linked(gateway, emu, http):  # noqa: F811
    """A Google account of a registered client app (whose secret signs notifications)."""
    gateway.apps.configure("google", "gw-cid", "gw-secret")
    app = make_client(gateway)
    email = emu.add_user(new_email("subs"))
    refresh = emu.issue_refresh_token(email, "gw-cid", google_oauth.upstream_scopes(
        SCOPE.split()))
    parked = gateway.accounts.park_credentials(uuid.uuid4().hex, {"refresh_token": refresh,
                                                                  "app": "default"})
    profile = gateway.accounts.link(app.client_id, PendingAccount(
        "google", "google", email, email, parked), None, SCOPE.split())
    sync(gateway, profile.profile_id)
    headers = bearer_for(http, gateway, profile.subject, SCOPE)
    calendar_id = next(c["calendar_id"] for c in http.get(
        "/v1/calendars", headers=headers).json()["calendars"] if c["calendar_primary"])
    receiver = Receiver(app.client_id, gateway.signing.active(app.client_id)[0]).start()
    yield profile, headers, calendar_id, receiver
    receiver.stop()


def upsert(http, headers, calendar_id: str, event_id: str, **more):
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(days=2)
    r = http.post(f"/v1/calendars/{calendar_id}/events", headers=headers, json={
        "event_id": event_id, "summary": event_id,
        "start": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "end": (start + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "conferencing": {"profile_id": "default"}, **more})
    assert r.status_code == 202, r.text


def apply_and_sync(gateway, profile) -> None:
    for managed_id in gateway.worker.outbox.due():
        assert aio.run(gateway.worker.outbox.apply(managed_id)).ok
    sync(gateway, profile.profile_id)


def the_event(http, headers, event_id: str) -> dict:
    (event,) = [e for e in http.get("/v1/events", headers=headers, params={
        "tzid": "Etc/UTC", "include_managed": "true"}).json()["events"]
        if e.get("event_id") == event_id]
    return event


def test_a_meet_link_is_sent_once_to_each_subscription(gateway, http, linked):
    profile, headers, calendar_id, receiver = linked
    upsert(http, headers, calendar_id, "meet-me", subscriptions=[
        {"type": "webhook", "uri": receiver.url, "interactions": [{"type": ASSIGNED}]}])
    upsert(http, headers, calendar_id, "no-hook")  # a Meet link too, but no subscription
    apply_and_sync(gateway, profile)

    event = the_event(http, headers, "meet-me")
    join = event["conferencing"]["join_url"]
    assert join.startswith("https://meet.google.com/")
    assert the_event(http, headers, "no-hook")["conferencing"]["join_url"]
    assert deliver_all(gateway) == 1
    [got] = receiver.of_type(ASSIGNED)
    assert got.cronofy_valid and got.calgate_valid
    assert got.json["notification"]["notification_id"].startswith("ntf_")
    assert got.json["event"] == {
        "calendar_id": calendar_id, "event_id": "meet-me", "event_uid": event["event_uid"],
        "conferencing": {"provider_name": event["conferencing"]["provider_name"],
                         "join_url": join}}

    # The upstream changes something else; the link stays: nothing more is sent.
    upsert(http, headers, calendar_id, "meet-me", summary="Renamed")
    apply_and_sync(gateway, profile)
    sync(gateway, profile.profile_id)
    assert the_event(http, headers, "meet-me")["summary"] == "Renamed"
    assert deliver_all(gateway) == 0
    assert len(receiver.delivered()) == 1
    with gateway.engine.connect() as conn:
        assert conn.execute(select(notices.c.type)).scalars().all() == [ASSIGNED]


def test_an_event_without_a_subscription_to_it_sends_nothing(gateway, http, linked):
    profile, headers, calendar_id, receiver = linked
    upsert(http, headers, calendar_id, "other-interaction", subscriptions=[])
    apply_and_sync(gateway, profile)
    assert the_event(http, headers, "other-interaction")["conferencing"]["join_url"]
    assert deliver_all(gateway) == 0
    assert receiver.received == []


def test_the_notifications_go_with_the_account(gateway, http, linked):
    profile, headers, calendar_id, receiver = linked
    receiver.status = 503  # kept queued, failing
    upsert(http, headers, calendar_id, "erased", subscriptions=[
        {"type": "webhook", "uri": receiver.url, "interactions": [{"type": ASSIGNED}]}])
    apply_and_sync(gateway, profile)
    with gateway.engine.connect() as conn:
        assert len(conn.execute(select(notices.c.id)).all()) == 1
    gateway.accounts.revoke_subject(profile.subject)
    with gateway.engine.connect() as conn:
        assert conn.execute(select(notices.c.id)).all() == []


def test_the_apps_own_explicit_link_is_not_an_assignment(gateway, http, linked):
    profile, headers, calendar_id, receiver = linked
    join = "https://zoom.example/j/7"
    upsert(http, headers, calendar_id, "explicit", subscriptions=[
        {"type": "webhook", "uri": receiver.url, "interactions": [{"type": ASSIGNED}]}],
        conferencing={"profile_id": "explicit", "provider_description": "Zoom",
                      "join_url": join})
    apply_and_sync(gateway, profile)
    assert the_event(http, headers, "explicit")["conferencing"]["join_url"] == join
    assert deliver_all(gateway) == 0
    assert receiver.received == []

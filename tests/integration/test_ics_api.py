"""Issue 3: an ICS feed served on loopback, linked and synced, shows its recurring events
correctly expanded across a DST change through GET /v1/events."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from gateway.services.accounts import PendingAccount
from tests.integration.test_caldav_sync_api import bearer_for, sync
from tests.support.davservers import BERLIN_VTIMEZONE
from tests.support.feedserver import FeedServer
from tests.support.outbound import LOOPBACK, LOOPBACK_NETWORKS

# Weekly on Mondays 09:00 Europe/Berlin, next year, across the change to summer time.
YEAR = datetime.now(UTC).year + 1
FEED = f"""BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//Calgate tests//Feed//EN
X-WR-CALNAME:Team rota
{BERLIN_VTIMEZONE}BEGIN:VEVENT
UID:rota@example.com
DTSTAMP:20260101T000000Z
SUMMARY:Rota
DTSTART;TZID=Europe/Berlin:{YEAR}0301T090000
DTEND;TZID=Europe/Berlin:{YEAR}0301T100000
RRULE:FREQ=DAILY;COUNT=60
EXDATE;TZID=Europe/Berlin:{YEAR}0305T090000
END:VEVENT
END:VCALENDAR
"""


@pytest.fixture
def settings(settings):
    return settings.replace(outbound_allow_networks=LOOPBACK_NETWORKS, sync_days_ahead=600)


def test_recurring_feed_events_expand_across_dst(http, gateway):
    with FeedServer() as server:
        server.set_feed("/rota.ics", FEED)
        parked = gateway.accounts.park_credentials(uuid.uuid4().hex,
                                                   {"url": server.url("/rota.ics")})
        profile = gateway.accounts.link("cli_x", PendingAccount(
            "ics", "ics", "Team rota", server.url("/rota.ics"), parked), None,
            ["read_events", "list_calendars"])
        sync(gateway, profile.profile_id)
    headers = bearer_for(http, gateway, profile.subject, "read_events list_calendars")
    (calendar,) = http.get("/v1/calendars", headers=headers).json()["calendars"]
    assert calendar["calendar_readonly"] is True and calendar["calendar_name"] == "Team rota"
    r = http.get("/v1/events", headers=headers, params={
        "tzid": "Europe/Berlin", "localized_times": "true",
        "from": f"{YEAR}-03-20", "to": f"{YEAR}-04-03"})
    assert r.status_code == 200, r.text
    starts = [e["start"]["time"] for e in r.json()["events"]]
    # 09:00 local every day: +01:00 until the last Sunday of March, +02:00 after it.
    assert all(s.endswith("T09:00:00+01:00") or s.endswith("T09:00:00+02:00") for s in starts)
    assert len(starts) == 14
    switch = max(d for d in range(25, 32) if datetime(YEAR, 3, d).weekday() == 6)
    for s in starts:
        day = int(s[8:10]) if s[5:7] == "03" else 99
        expected = "+01:00" if day < switch else "+02:00"
        assert s.endswith(expected), (s, switch)
    utc = http.get("/v1/events", headers=headers, params={
        "tzid": "Etc/UTC", "from": f"{YEAR}-03-01", "to": f"{YEAR}-03-08"}).json()["events"]
    # Six instances: the EXDATE on the 5th is not there.
    assert [e["start"] for e in utc] == [f"{YEAR}-03-0{d}T08:00:00Z" for d in (1, 2, 3, 4, 6, 7)]
    assert {e["recurring"] for e in utc} == {True}


def test_ics_feed_links_through_the_consent_screen(http, gateway):
    """The real ICS connector: the feed is fetched and parsed before anything is stored."""
    from gateway.services.connectors import register_defaults
    from providers.registry import ProviderOptions
    from tests.support.oauth import Pkce, csrf, decide, exchange, make_client, start

    register_defaults(gateway.connectors, ProviderOptions(outbound=LOOPBACK))
    client = make_client(gateway, scopes="read_events list_calendars")
    with FeedServer() as server:
        server.set_feed("/rota.ics", FEED)
        pkce = Pkce()
        flow = start(http, client, scope="read_events list_calendars", pkce=pkce)
        token = csrf(http.get(flow).text)
        http.post(f"{flow}/provider", data={"csrf_token": token, "provider": "ics"})
        # Not a calendar: refused, nothing linked.
        server.set_feed("/nope.ics", "<html>hello</html>", content_type="text/html")
        r = http.post(f"{flow}/connect", data={"csrf_token": token,
                                               "url": server.url("/nope.ics")})
        assert r.status_code == 200 and 'role="alert"' in r.text
        r = http.post(f"{flow}/connect", data={"csrf_token": token,
                                               "url": server.url("/rota.ics")})
        assert r.status_code == 303
        assert "Team rota" in http.get(flow).text
        tokens = exchange(http, client, decide(http, flow)["code"], pkce)
    assert tokens["linking_profile"]["provider_name"] == "ics"
    assert tokens["linking_profile"]["profile_name"] == "Team rota"

"""The account's name, zone and provider_service as each provider says them (issue 13),
linked through the consent screen over HTTP: Microsoft 365 and Outlook.com against the
emulator (the ID token's name; the zone from getSchedule's working hours, Windows name
mapped to IANA), and a real Radicale (the primary calendar's calendar-timezone). The
calendar list is complete in the first answer after the code exchange, and a calendar list
that cannot be read while linking is a plain-words page."""

from __future__ import annotations

import uuid

import pytest
from caldav.elements import cdav

from gateway.app import provider_options
from gateway.services.connectors import register_defaults
from tests.emulators.microsoft.signin import sign_in
from tests.integration.test_microsoft_gateway import (  # noqa: F401  (fixtures)
    APP_ID,
    APP_SECRET,
    browser,
    come_back,
    emu,
    to_microsoft,
)
from tests.support.davservers import DavOwner, RadicaleServer
from tests.support.oauth import Pkce, csrf, decide, exchange, make_client, start
from tests.support.outbound import LOOPBACK_NETWORKS

VIENNA = """BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//Calgate tests//EN
BEGIN:VTIMEZONE
TZID:Europe/Vienna
BEGIN:STANDARD
DTSTART:19701025T030000
TZOFFSETFROM:+0200
TZOFFSETTO:+0100
END:STANDARD
END:VTIMEZONE
END:VCALENDAR
"""


@pytest.fixture
def settings(settings, emu):  # noqa: F811
    return settings.replace(office365_authority_base=emu.base_url,
                            office365_graph_base=emu.base_url,
                            office365_ca_bundle=str(emu.ca_path),
                            outbound_allow_networks=LOOPBACK_NETWORKS)


@pytest.fixture
def configured(gateway):
    for name in ("office365", "live_connect"):
        gateway.apps.configure(name, APP_ID, APP_SECRET)
    register_defaults(gateway.connectors, provider_options(gateway.settings), gateway.apps)
    return gateway


def identity(http, token: dict[str, object]) -> tuple[dict, dict, list]:
    headers = {"Authorization": f"Bearer {token['access_token']}"}
    account = http.get("/v1/account", headers=headers).json()["account"]
    userinfo = http.get("/v1/userinfo", headers=headers).json()
    listed = http.get("/v1/calendars", headers=headers).json()["calendars"]
    return account, userinfo["cronofy.data"]["profiles"][0], listed


@pytest.mark.parametrize(("provider", "personal", "service", "zone"), [
    ("office365", False, "office365", "America/Los_Angeles"),
    ("live_connect", True, "outlook_com", "Etc/UTC"),  # personal accounts: no getSchedule
])
def test_microsoft_account_name_zone_and_service(configured, emu, browser, http,  # noqa: F811
                                                 provider, personal, service, zone):
    email = f"det-{uuid.uuid4().hex[:8]}@{'outlook' if personal else 'contoso'}.example"
    emu.add_user(email, "Grace Hopper", personal=personal, tz="Pacific Standard Time")
    client = make_client(configured, scopes="read_write")
    flow, url, pkce = to_microsoft(http, client, provider, "read_write")
    back = come_back(http, provider, sign_in(browser, url, email))
    assert back.status_code == 303, back.text
    token = exchange(http, client, decide(http, flow)["code"], pkce)
    account, profile, listed = identity(http, token)
    assert (account["name"], account["default_tzid"]) == ("Grace Hopper", zone)
    assert profile["provider_service"] == service
    assert token["linking_profile"]["provider_service"] == service
    assert [c["calendar_primary"] for c in listed] == [True]  # the default calendar
    assert profile["profile_calendars"][0]["calendar_id"] == listed[0]["calendar_id"]


@pytest.fixture
def radicale():
    with RadicaleServer(users={"lin": "pw-lin"}) as server:
        owner = DavOwner(server.url, "lin", "pw-lin")
        path = owner.make_calendar("Lessons")
        owner.calendar(path).set_properties([cdav.CalendarTimeZone(VIENNA)])
        yield server
        owner.close()


def link_caldav(http, gateway, server, password: str) -> tuple[str, object]:
    client = make_client(gateway, scopes="read_write")
    pkce = Pkce()
    flow = start(http, client, scope="read_write", pkce=pkce)
    token = csrf(http.get(flow).text)
    http.post(f"{flow}/provider", data={"csrf_token": token, "provider": "caldav"})
    r = http.post(f"{flow}/connect", data={"csrf_token": token, "server_url": server.url,
                                            "username": "lin", "password": password})
    return flow, (client, pkce, r)


def test_caldav_zone_from_the_primary_calendar(configured, http, radicale):
    flow, (client, pkce, r) = link_caldav(http, configured, radicale, "pw-lin")
    assert r.status_code == 303, r.text
    token = exchange(http, client, decide(http, flow)["code"], pkce)
    account, profile, listed = identity(http, token)
    assert account["default_tzid"] == "Europe/Vienna" and account["name"] is None
    assert profile["provider_service"] == "caldav"
    assert [c["calendar_name"] for c in listed] == ["Lessons"]

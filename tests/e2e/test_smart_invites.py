"""Smart Invites with the official Cronofy Python SDK (pycronofy 2.1.1), unmodified, against
a real Calgate server whose in-process worker delivers the answers.

A mentoring app invites a partner who has linked no calendar: pycronofy's
``upsert_smart_invite`` gets the iCalendar REQUEST to email; the partner's calendar answers
by email, which the operator's inbound-mail service posts to Calgate; the app's callback
(a real HTTP server checking ``Cronofy-HMAC-SHA256`` with pycronofy's ``hmac_valid``) hears
``smart_invite``, and ``get_smart_invite`` shows the answer; ``cancel_smart_invite`` gives
the CANCEL.
"""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pycronofy
import pytest
from icalendar import Calendar
from pycronofy.exceptions import PyCronofyRequestError

from tests.support.e2e_app import build_gateway
from tests.support.e2e_server import GatewayServer, RegisteredApp
from tests.support.imip import reply_calendar, reply_mail, sendgrid_raw
from tests.support.receiver import Receiver
from tests.support.waiting import eventually

MAILBOX = "invites@calgate.test"
PARTNER = "partner@example.org"
EVENT = {"summary": "Mentoring: first session", "description": "Getting to know each other.",
         "start": "2027-03-05T09:30:00Z", "end": "2027-03-05T10:00:00Z",
         "tzid": "Europe/London", "location": {"description": "Video call"}}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayServer]:
    env = {"CALGATE_SMART_INVITE_MAILBOX": MAILBOX, "CALGATE_CALLBACK_HTTP_HOSTS": "127.0.0.1"}
    with GatewayServer(Path(tmp_path_factory.mktemp("calgate-invites")), env=env) as running:
        yield running


@pytest.fixture
def app(server: GatewayServer) -> RegisteredApp:
    return server.register_client(name="Mentor Hub", redirect_uris=["https://mentor.example/cb"],
                                  scopes=["read_account"])


@pytest.fixture
def receiver(app: RegisteredApp) -> Iterator[Receiver]:
    assert app.secret is not None
    r = Receiver(app.client_id, app.secret).start()
    yield r
    r.stop()


def sdk(server: GatewayServer, app: RegisteredApp) -> pycronofy.Client:
    client = pycronofy.Client(client_id=app.client_id, client_secret=app.secret)
    client.request_handler.base_url = server.url
    return client


def inbound_url(server: GatewayServer) -> str:
    gateway = build_gateway(server.settings())
    try:
        assert gateway.inbound is not None
        return f"{server.url}/inbound/smart_invites/{gateway.inbound.current()}"
    finally:
        gateway.close()


def post_mail(url: str, mime: bytes) -> int:
    body, content_type = sendgrid_raw(mime)
    request = urllib.request.Request(url, data=body, method="POST",
                                     headers={"Content-Type": content_type})
    with urllib.request.urlopen(request, timeout=10) as answer:
        return int(answer.status)


def test_an_invite_answered_by_email_reaches_the_app(server: GatewayServer, app: RegisteredApp,
                                                     receiver: Receiver) -> None:
    client = sdk(server, app)
    created = client.upsert_smart_invite("mentoring-42", {"email": PARTNER}, dict(EVENT),
                                         callback_url=receiver.url,
                                         organizer={"name": "Mentor Hub"})
    assert created["recipient"] == {"email": PARTNER, "status": "pending"}
    request = Calendar.from_ical(created["attachments"]["icalendar"])
    assert str(request["method"]) == "REQUEST"
    event = next(iter(request.walk("VEVENT")))
    assert str(event["organizer"]) == f"mailto:{MAILBOX}"
    assert str(event["attendee"]) == f"mailto:{PARTNER}"

    answer = reply_calendar(created["attachments"]["icalendar"], PARTNER, "TENTATIVE",
                            comment="Might be ten minutes late")
    assert post_mail(inbound_url(server), reply_mail(answer, PARTNER, MAILBOX)) == 200

    got = eventually(lambda: receiver.delivered(), timeout=30)
    assert len(got) == 1
    assert got[0].cronofy_valid  # pycronofy's hmac_valid with the app's secret
    assert got[0].notification["type"] == "smart_invite"
    assert got[0].json["smart_invite"]["recipient"] == {
        "email": PARTNER, "status": "tentative", "comment": "Might be ten minutes late"}

    status = client.get_smart_invite("mentoring-42", PARTNER)
    assert status["recipient"]["status"] == "tentative"

    cancelled = client.cancel_smart_invite("mentoring-42", {"email": PARTNER})
    cancel = Calendar.from_ical(cancelled["attachments"]["icalendar"])
    assert str(cancel["method"]) == "CANCEL"
    assert str(next(iter(cancel.walk("VEVENT")))["uid"]) == str(event["uid"])


def test_a_wrong_secret_is_refused(server: GatewayServer, app: RegisteredApp) -> None:
    client = pycronofy.Client(client_id=app.client_id, client_secret="not-the-secret")
    client.request_handler.base_url = server.url
    with pytest.raises(PyCronofyRequestError) as raised:
        client.get_smart_invite("mentoring-42", PARTNER)
    assert raised.value.response.status_code == 401

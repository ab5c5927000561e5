"""Smart Invites (issue 13): the API's shapes and rules, answers arriving by email through
the inbound webhook in each service's shape, and the ``smart_invite`` notification the worker
delivers to a real receiver on loopback; on SQLite and PostgreSQL.

The worker's delivery is driven by hand (``deliver_all``), so each step's effect is exact;
tests/e2e/test_smart_invites.py runs the same journey on a real server with pycronofy.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from icalendar import Calendar
from sqlalchemy import select

from gateway.persistence.tables import smart_invite_notifications, smart_invites
from gateway.settings import Settings
from tests.support.aio import run
from tests.support.imip import (
    mailgun_mime,
    postmark_json,
    reply_calendar,
    reply_mail,
    sendgrid_raw,
)
from tests.support.oauth import make_client
from tests.support.openapi_check import conforms
from tests.support.receiver import Receiver

MAILBOX = "invites@calgate.test"
PARTNER = "Partner@Example.org"
EVENT = {"summary": "Mentoring: first session", "description": "Getting to know each other.",
         "start": "2027-03-05T09:30:00Z", "end": "2027-03-05T10:00:00Z",
         "tzid": "Europe/London", "location": {"description": "Video call"},
         "reminders": [{"minutes": 15}]}


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.replace(smart_invite_mailbox=MAILBOX, callback_http_hosts="127.0.0.1",
                            outbound_allow_networks="127.0.0.0/8")


@pytest.fixture
def app(gateway):
    return make_client(gateway)


@pytest.fixture
def receiver(gateway, app):
    r = Receiver(app.client_id, gateway.signing.active(app.client_id)[0]).start()
    yield r
    r.stop()


@pytest.fixture
def inbound(gateway) -> str:
    return f"/inbound/smart_invites/{gateway.inbound.current()}"


def key(app) -> dict[str, str]:
    return {"Authorization": f"Bearer {app.secret}"}


def invite(http, app, callback_url: str | None = None, **extra):
    body = {"method": "request", "smart_invite_id": "mentoring-42",
            "recipient": {"email": PARTNER}, "event": EVENT,
            "organizer": {"name": "Mentor Hub"}} | extra
    if callback_url:
        body["callback_url"] = callback_url
    return conforms(http.post("/v1/smart_invites", json=body, headers=key(app)),
                    "post", "/v1/smart_invites")


def vevent(ics: str):
    calendar = Calendar.from_ical(ics)
    return calendar, next(iter(calendar.walk("VEVENT")))


def deliver_all(gateway, rounds: int = 10) -> int:
    made = 0
    for _ in range(rounds):
        due = gateway.worker.invites.due()
        if not due:
            return made
        for notice_id in due:
            run(gateway.worker.invites.deliver(notice_id))
            made += 1
    return made


def test_request_answers_an_itip_request_organized_by_the_mailbox(http, app):
    answer = invite(http, app)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["recipient"] == {"email": PARTNER, "status": "pending"}
    assert body["smart_invite_id"] == "mentoring-42"
    assert body["event"]["start"] == {"time": "2027-03-05T09:30:00Z", "tzid": "Europe/London"}
    assert body["event"]["location"] == {"description": "Video call"}
    calendar, event = vevent(body["attachments"]["icalendar"])
    assert str(calendar["method"]) == "REQUEST"
    assert str(event["organizer"]) == f"mailto:{MAILBOX}"
    assert str(event["organizer"].params["CN"]) == "Mentor Hub"
    assert str(event["attendee"]) == f"mailto:{PARTNER}"
    assert event["attendee"].params["RSVP"] == "TRUE"
    assert str(event["summary"]) == EVENT["summary"]
    assert event.decoded("dtstart").isoformat() == "2027-03-05T09:30:00+00:00"
    assert int(event["sequence"]) == 0
    assert str(event["uid"]).endswith("@calgate.test")
    assert len(list(event.walk("VALARM"))) == 1


def test_uid_is_stable_and_sequence_grows_only_when_the_event_changes(http, app, gateway):
    first = vevent(invite(http, app).json()["attachments"]["icalendar"])[1]
    again = vevent(invite(http, app).json()["attachments"]["icalendar"])[1]
    moved = vevent(invite(http, app, event=EVENT | {"start": "2027-03-05T10:00:00Z",
                                                       "end": "2027-03-05T10:30:00Z"}
                          ).json()["attachments"]["icalendar"])[1]
    assert str(first["uid"]) == str(again["uid"]) == str(moved["uid"])
    assert (int(first["sequence"]), int(again["sequence"]), int(moved["sequence"])) == (0, 0, 1)
    other = make_client(gateway, name="Another App")
    theirs = vevent(invite(http, other).json()["attachments"]["icalendar"])[1]
    assert str(theirs["uid"]) != str(first["uid"])  # per client app
    with gateway.engine.connect() as conn:
        sealed = conn.execute(select(smart_invites.c.sealed_event)).scalars().all()
    assert all("Mentoring" not in s for s in sealed)  # calendar contents are sealed


def test_cancel_answers_an_itip_cancel_with_a_higher_sequence(http, app):
    invite(http, app)
    cancelled = http.post("/v1/smart_invites", headers=key(app), json={
        "method": "cancel", "smart_invite_id": "mentoring-42", "recipient": {"email": PARTNER}})
    assert cancelled.status_code == 200, cancelled.text
    calendar, event = vevent(cancelled.json()["attachments"]["icalendar"])
    assert str(calendar["method"]) == "CANCEL"
    assert str(event["status"]) == "CANCELLED"
    assert int(event["sequence"]) == 1
    status = http.get("/v1/smart_invites", headers=key(app), params={
        "smart_invite_id": "mentoring-42", "recipient_email": PARTNER})
    assert "METHOD:CANCEL" in status.json()["attachments"]["icalendar"]
    unknown = http.post("/v1/smart_invites", headers=key(app), json={
        "method": "cancel", "smart_invite_id": "never-made", "recipient": {"email": PARTNER}})
    assert unknown.status_code == 404


def test_several_recipients_share_one_invitation(http, app):
    answer = http.post("/v1/smart_invites", headers=key(app), json={
        "smart_invite_id": "group-1", "event": EVENT,
        "recipients": [{"email": "a@example.org"}, {"email": "b@example.org"}]})
    assert answer.status_code == 200, answer.text
    assert answer.json()["recipients"] == [{"email": "a@example.org", "status": "pending"},
                                           {"email": "b@example.org", "status": "pending"}]
    _, event = vevent(answer.json()["attachments"]["icalendar"])
    assert sorted(str(a) for a in event["attendee"]) == ["mailto:a@example.org",
                                                         "mailto:b@example.org"]


def test_only_the_client_secret_authenticates(http, app, gateway):
    assert invite(http, app).status_code == 200
    assert http.post("/v1/smart_invites", json={}).status_code == 401
    wrong = http.post("/v1/smart_invites", json={}, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    other = make_client(gateway, name="Another App")
    theirs = http.get("/v1/smart_invites", headers=key(other), params={
        "smart_invite_id": "mentoring-42", "recipient_email": PARTNER})
    assert theirs.status_code == 404  # another app's invites are not visible


@pytest.mark.parametrize(("change", "field"), [
    ({"smart_invite_id": None}, "smart_invite_id"),
    ({"recipient": {"email": "not an address"}}, "recipient.email"),
    ({"recipient": None}, "recipient"),
    ({"event": None}, "event"),
    ({"event": EVENT | {"summary": None}}, "event.summary"),
    ({"event": EVENT | {"end": "2027-03-05T09:00:00Z"}}, "event.end"),
    ({"event": EVENT | {"tzid": "Mars/Olympus"}}, "event.tzid"),
    ({"method": "destroy"}, "method"),
    ({"callback_url": "ftp://example.org/x"}, "callback_url"),
    ({"organizer": {"name": "two\nlines"}}, "organizer"),
])
def test_bad_requests_are_422_in_cronofy_shape(http, app, change, field):
    body = {"smart_invite_id": "x", "recipient": {"email": PARTNER}, "event": EVENT} | change
    answer = conforms(http.post("/v1/smart_invites", headers=key(app),
                                json={k: v for k, v in body.items() if v is not None}),
                      "post", "/v1/smart_invites")
    assert answer.status_code == 422, answer.text
    assert field in answer.json()["errors"], answer.json()


def test_turned_off_without_a_mailbox(gateway, http, app):
    gateway.invites.settings = replace(gateway.invites.settings, mailbox="")
    answer = invite(http, app)
    assert answer.status_code == 404
    assert "CALGATE_SMART_INVITE_MAILBOX" in answer.json()["description"]


def post_reply(http, inbound: str, shape: str, calendar: str, sender: str = PARTNER):
    mime = reply_mail(calendar, sender, MAILBOX)
    if shape == "postmark":
        answer = http.post(inbound, content=postmark_json(calendar, sender),
                           headers={"Content-Type": "application/json"})
        return conforms(answer, "post", "/inbound/smart_invites/{token}")
    body, content_type = sendgrid_raw(mime) if shape == "sendgrid" else mailgun_mime(mime)
    path = inbound + ("/mime" if shape == "mailgun" else "")
    answer = http.post(path, content=body, headers={"Content-Type": content_type})
    return conforms(answer, "post", "/inbound/smart_invites/{token}"
                    + ("/mime" if shape == "mailgun" else ""))


@pytest.mark.parametrize("shape", ["sendgrid", "mailgun", "postmark"])
def test_an_emailed_answer_reaches_the_callback_signed(http, app, gateway, receiver, inbound,
                                                       shape):
    ics = invite(http, app, receiver.url).json()["attachments"]["icalendar"]
    posted = post_reply(http, inbound, shape, reply_calendar(
        ics, PARTNER.lower(), "ACCEPTED", comment="See you then"))
    assert posted.status_code == 200, posted.text
    assert posted.json()["replies"] == {"recorded": 1}
    assert deliver_all(gateway) == 1
    [got] = receiver.delivered()
    assert got.cronofy_valid and got.calgate_valid  # pycronofy's hmac_valid, Calgate-Signature
    assert got.notification["type"] == "smart_invite"
    answer = got.json["smart_invite"]
    assert answer["smart_invite_id"] == "mentoring-42"
    assert answer["callback_url"] == receiver.url
    assert answer["recipient"] == {"email": PARTNER, "status": "accepted",
                                   "comment": "See you then"}
    assert answer["reply"] == answer["recipient"]
    status = conforms(http.get("/v1/smart_invites", headers=key(app), params={
        "smart_invite_id": "mentoring-42", "recipient_email": PARTNER}),
        "get", "/v1/smart_invites").json()
    assert status["recipient"]["status"] == "accepted"
    assert status["replies"] == [answer["recipient"]]


def test_a_repeated_post_sends_no_second_notification(http, app, gateway, receiver, inbound):
    ics = invite(http, app, receiver.url).json()["attachments"]["icalendar"]
    accepted = reply_calendar(ics, PARTNER, "ACCEPTED")
    assert post_reply(http, inbound, "sendgrid", accepted).json()["replies"] == {"recorded": 1}
    assert post_reply(http, inbound, "sendgrid", accepted).json()["replies"] == {"unchanged": 1}
    declined = reply_calendar(ics, PARTNER, "DECLINED")
    assert post_reply(http, inbound, "postmark", declined).json()["replies"] == {"recorded": 1}
    deliver_all(gateway)
    assert [r.json["smart_invite"]["recipient"]["status"] for r in receiver.delivered()] == [
        "accepted", "declined"]


def test_forged_and_mismatched_answers_are_refused(http, app, gateway, receiver, inbound):
    ics = invite(http, app, receiver.url).json()["attachments"]["icalendar"]
    stranger = post_reply(http, inbound, "sendgrid",
                          reply_calendar(ics, "mallory@example.net", "DECLINED"),
                          sender="mallory@example.net")
    assert stranger.status_code == 200  # acknowledged, so the service does not retry
    assert stranger.json()["replies"] == {"refused": 1}
    future = post_reply(http, inbound, "sendgrid", reply_calendar(ics, PARTNER, "DECLINED",
                                                                  sequence=7))
    assert future.json()["replies"] == {"refused": 1}
    unknown = post_reply(http, inbound, "sendgrid", reply_calendar(
        ics, PARTNER, "DECLINED", uid="guessed@calgate.test"))
    assert unknown.json()["replies"] == {"unknown": 1}
    wrong_token = http.post("/inbound/smart_invites/not-the-token",
                            content=postmark_json(reply_calendar(ics, PARTNER, "DECLINED"),
                                                  PARTNER),
                            headers={"Content-Type": "application/json"})
    assert wrong_token.status_code == 404
    assert deliver_all(gateway) == 0
    status = http.get("/v1/smart_invites", headers=key(app), params={
        "smart_invite_id": "mentoring-42", "recipient_email": PARTNER}).json()
    assert status["recipient"]["status"] == "pending"
    with gateway.engine.connect() as conn:
        assert conn.execute(select(smart_invite_notifications)).first() is None


def test_answers_to_a_cancelled_invite_are_ignored(http, app, gateway, receiver, inbound):
    ics = invite(http, app, receiver.url).json()["attachments"]["icalendar"]
    http.post("/v1/smart_invites", headers=key(app), json={
        "method": "cancel", "smart_invite_id": "mentoring-42", "recipient": {"email": PARTNER}})
    late = post_reply(http, inbound, "mailgun", reply_calendar(ics, PARTNER, "ACCEPTED"))
    assert late.json()["replies"] == {"ignored": 1}


@pytest.mark.parametrize(("content", "content_type", "status"), [
    (b"", "application/json", 400),
    (b"{not json", "application/json", 400),
    (b"[1, 2]", "application/json", 400),
    (b"\x89PNG....", "image/png", 400),
    (b'{"Attachments": "nope", "RawEmail": 5}', "application/json", 200),
    (b'{"Attachments": [{"Name": "a.ics", "Content": "!!!not base64"}]}',
     "application/json", 200),
    (b"From: a@b\r\n\r\nno calendar here", "message/rfc822", 200),
])
def test_malformed_mail_is_never_a_server_error(http, inbound, content, content_type, status):
    answer = conforms(http.post(inbound, content=content,
                                headers={"Content-Type": content_type}),
                      "post", "/inbound/smart_invites/{token}")
    assert answer.status_code == status, answer.text


def test_malformed_calendar_parts_are_acknowledged(http, inbound):
    for calendar in ("BEGIN:VCALENDAR\r\nMETHOD:REPLY\r\nBEGIN:VEVENT\r\n",  # cut short
                     "BEGIN:VCALENDAR\r\nMETHOD:REPLY\r\nEND:VCALENDAR\r\n",
                     "not a calendar at all"):
        answer = post_reply(http, inbound, "sendgrid", calendar)
        assert answer.status_code == 200, answer.text
        assert answer.json()["replies"] == {}


def test_a_rotated_secret_authenticates_during_its_overlap_only(http, app, gateway):
    registry = gateway.oauth.registry
    newer = registry.rotate_secret(app.client_id, overlap_seconds=3600)
    assert invite(http, app).status_code == 200  # the old secret, within the overlap
    assert http.get("/v1/smart_invites", headers={"Authorization": f"Bearer {newer}"}, params={
        "smart_invite_id": "mentoring-42", "recipient_email": PARTNER}).status_code == 200
    registry.rotate_secret(app.client_id)  # no overlap: only the newest secret works
    assert invite(http, app).status_code == 401


def test_an_answer_posted_beside_a_binary_attachment_is_taken(http, app, gateway, receiver,
                                                               inbound):
    """Inbound services post a mail's attachments as file parts (Mailgun's parsed routes):
    a binary one (NUL bytes) beside the answer must not get the post refused at the edge."""
    ics = invite(http, app, receiver.url).json()["attachments"]["icalendar"]
    answer = reply_calendar(ics, PARTNER, "DECLINED")
    picture = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256))
    posted = http.post(inbound, data={"sender": PARTNER, "recipient": MAILBOX},
                       files=[("attachment-1", ("logo.png", picture, "image/png")),
                              ("attachment-2", ("invite.ics", answer.encode(),
                                                "text/calendar; method=REPLY"))])
    assert posted.status_code == 200, posted.text
    assert posted.json()["replies"] == {"recorded": 1}
    assert deliver_all(gateway) == 1
    assert receiver.delivered()[0].json["smart_invite"]["recipient"]["status"] == "declined"

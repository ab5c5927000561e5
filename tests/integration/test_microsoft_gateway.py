"""Microsoft behind the gateway, against the emulator: linking Microsoft 365 and Outlook.com
accounts through the consent screen over HTTP (msal, PKCE, state and nonce), the pages for
what Microsoft refuses, least privilege for a free/busy-only app, writes through the API,
and invalid_grant disconnecting the profile."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy import select, update

from gateway.app import provider_options
from gateway.persistence.tables import calendars, events, profiles
from gateway.services.connectors import register_defaults
from providers.microsoft.scopes import READ_BASIC
from tests.conftest import ISSUER
from tests.emulators.microsoft import MicrosoftEmulator
from tests.emulators.microsoft.signin import sign_in
from tests.integration.test_caldav_sync_api import sync
from tests.support import aio
from tests.support.oauth import Pkce, csrf, decide, exchange, make_client, start

APP_ID, APP_SECRET = "gw-entra-app", "gw-entra-secret"
WRITE = "read_write"
# Where the consent screen tells the user to remove the app from their Microsoft account.
REMOVE_AT = {"office365": "https://myapps.microsoft.com",
             "live_connect": "https://account.live.com/consent/Manage"}
FREE_BUSY = "read_free_busy"


@pytest.fixture(scope="module")
def emu():
    with MicrosoftEmulator.running() as emulator:
        emulator.register_app(APP_ID, APP_SECRET, "Calgate Gateway Tests", [
            f"{ISSUER}/oauth/callback/office365", f"{ISSUER}/oauth/callback/live_connect"])
        yield emulator


@pytest.fixture
def settings(settings, emu):
    return settings.replace(office365_authority_base=emu.base_url,
                            office365_graph_base=emu.base_url,
                            office365_ca_bundle=str(emu.ca_path))


@pytest.fixture
def browser(emu):
    with httpx.Client(verify=emu.ca.client_context(), trust_env=False) as client:
        yield client


@pytest.fixture
def configured(gateway):
    """The deployment's Entra app for both entries, and the registry's connectors (the
    gateway fixture registers only the in-memory test connector)."""
    for name in ("office365", "live_connect"):
        gateway.apps.configure(name, APP_ID, APP_SECRET)
    register_defaults(gateway.connectors, provider_options(gateway.settings), gateway.apps)
    return gateway


def to_microsoft(http, client, provider: str, scope: str) -> tuple[str, str, Pkce]:
    """Start a flow, choose ``provider`` and follow the link to Microsoft's page."""
    pkce = Pkce()
    flow = start(http, client, scope=scope, pkce=pkce)
    page = http.get(flow)
    assert f'value="{provider}"' in page.text and f'id="note-{provider}"' not in page.text
    r = http.post(f"{flow}/provider", data={"csrf_token": csrf(page.text),
                                             "provider": provider})
    assert r.status_code == 303, r.text
    r = http.get(f"{flow}/upstream")
    assert r.status_code == 303, r.text
    return flow, r.headers["location"], pkce


def come_back(http, provider: str, query: dict[str, str]):
    return http.get(f"/oauth/callback/{provider}", params=query)


def link(http, emu, browser, gateway, *, provider: str = "office365", scope: str = WRITE,
         personal: bool = False) -> tuple[str, dict[str, str]]:
    """A new mailbox linked through the consent screen; its address and API headers."""
    email = f"ms-{uuid.uuid4().hex[:8]}@{'outlook' if personal else 'contoso'}.example"
    emu.add_user(email, personal=personal)
    client = make_client(gateway, scopes=scope)
    flow, url, pkce = to_microsoft(http, client, provider, scope)
    query = parse_qs(urlsplit(url).query)
    assert query["code_challenge_method"] == ["S256"] and query["nonce"] and query["state"]
    back = come_back(http, provider, sign_in(browser, url, email))
    assert back.status_code == 303 and back.headers["location"].endswith(
        flow.split("?")[0].removeprefix(ISSUER)), back.text
    review = http.get(flow).text
    assert email in review and 'id="allow"' in review, review
    # Microsoft keeps its grant whatever Calgate does: the review says where to remove it.
    assert 'id="remove-access"' in review and REMOVE_AT[provider] in review, review
    token = exchange(http, client, decide(http, flow)["code"], pkce)
    assert token["_status"] == 200, token
    linking = token["linking_profile"]
    assert isinstance(linking, dict) and linking["provider_name"] == provider
    return email, {"Authorization": f"Bearer {token['access_token']}"}


def profile_of(gateway, email: str) -> str:
    with gateway.engine.connect() as conn:
        return str(conn.execute(select(profiles.c.id).where(
            profiles.c.profile_name == email)).scalar_one())


def test_m365_and_outlook_accounts_link_and_write_through_the_api(
        configured, emu, browser, http):
    gateway = configured
    email, headers = link(http, emu, browser, gateway)
    personal, _ = link(http, emu, browser, gateway, provider="live_connect", personal=True)
    assert profile_of(gateway, personal)
    sync(gateway, profile_of(gateway, email))
    calendars = http.get("/v1/calendars", headers=headers).json()["calendars"]
    default = next(c for c in calendars if c["calendar_primary"])
    assert default["provider_name"] == "office365" and not default["calendar_readonly"]
    at = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(days=2)
    body = {"event_id": "ms-1", "summary": "Mentoring", "description": "first session",
            "start": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "end": (at + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")}
    path = f"/v1/calendars/{default['calendar_id']}/events"
    assert http.post(path, headers=headers, json=body).status_code == 202
    drain(gateway)
    upstream = [e for e in emu.events(email) if e["subject"] == "Mentoring"]
    assert len(upstream) == 1
    sync(gateway, profile_of(gateway, email))  # incremental: a delta round
    # The app's own event reads back as its own (event_id), not as an external event,
    # although delta cannot expand the extended property: the transactionId carries it.
    assert mentoring(http, headers) == [("ms-1", "Mentoring", "first session")]
    assert mentoring(http, headers, include_managed=False) == []  # as Cronofy hides them
    body |= {"summary": "Mentoring (moved)", "description": "second session"}
    assert http.post(path, headers=headers, json=body).status_code == 202
    drain(gateway)
    sync(gateway, profile_of(gateway, email))
    assert mentoring(http, headers) == [("ms-1", "Mentoring (moved)", "second session")]
    assert len([e for e in emu.events(email) if e["subject"].startswith("Mentoring")]) == 1
    r = http.request("DELETE", path, headers=headers, json={"event_id": "ms-1"})
    assert r.status_code == 202, r.text
    drain(gateway)
    assert [e for e in emu.events(email) if e["subject"].startswith("Mentoring")] == []
    sync(gateway, profile_of(gateway, email))
    assert mentoring(http, headers) == []


def mentoring(http, headers, include_managed: bool = True
              ) -> list[tuple[str | None, str, str]]:
    """The test's events as /v1/events reads them: (event_id, summary, description)."""
    read = http.get("/v1/events", headers=headers, params={
        "tzid": "Etc/UTC", "include_managed": str(include_managed).lower()})
    assert read.status_code == 200, read.text
    return [(e.get("event_id"), e["summary"], e["description"])
            for e in read.json()["events"] if e["summary"].startswith("Mentoring")]


def drain(gateway) -> None:
    outbox = gateway.worker.outbox
    for managed_id in outbox.due():
        aio.run(outbox.apply(managed_id))


def test_a_free_busy_app_asks_only_calendars_readbasic_and_mirrors_no_text(
        configured, emu, browser, http):
    gateway = configured
    email = f"fb-{uuid.uuid4().hex[:8]}@contoso.example"
    calendar = emu.add_user(email)
    client = make_client(gateway, scopes=FREE_BUSY)
    _flow, url, _pkce = to_microsoft(http, client, "office365", FREE_BUSY)
    asked = set(parse_qs(urlsplit(url).query)["scope"][0].split())
    assert asked == {READ_BASIC, "offline_access", "openid", "profile"}
    at = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)
    emu.add_event(email, {"subject": "Salary review", "body": {"content": "private"},
                          "start": {"dateTime": at.strftime("%Y-%m-%dT%H:%M:%S"),
                                    "timeZone": "UTC"},
                          "end": {"dateTime": (at + timedelta(hours=1)).strftime(
                              "%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"}},
                  calendar_id=calendar)
    back = come_back(http, "office365", sign_in(browser, url, email))
    assert back.status_code == 303, back.text
    decide(http, _flow)
    sync(gateway, profile_of(gateway, email))
    with gateway.engine.connect() as conn:
        rows = conn.execute(select(events.c.sealed).join(
            calendars, calendars.c.id == events.c.calendar_id).where(
            calendars.c.profile_id == profile_of(gateway, email))).all()
    assert rows, "the busy block is mirrored"
    assert [row.sealed for row in rows] == [None] * len(rows)


def test_admin_consent_and_a_refused_account_type_have_their_own_pages(
        configured, emu, browser, http):
    gateway = configured
    email = f"admin-{uuid.uuid4().hex[:8]}@contoso.example"
    emu.add_user(email)
    emu.require_admin_consent(email, 65001)
    client = make_client(gateway, scopes=WRITE)
    _flow, url, _pkce = to_microsoft(http, client, "office365", WRITE)
    page = come_back(http, "office365", sign_in(browser, url, email))
    assert page.status_code == 200 and "administrator" in page.text
    assert "Grant admin consent" in page.text
    personal = f"home-{uuid.uuid4().hex[:8]}@outlook.example"
    emu.add_user(personal, personal=True)
    _flow, url, _pkce = to_microsoft(http, client, "office365", WRITE)
    page = come_back(http, "office365", sign_in(browser, url, personal))
    assert page.status_code == 200 and "Outlook.com" in page.text, page.text
    _flow, url, _pkce = to_microsoft(http, client, "office365", WRITE)
    page = come_back(http, "office365", sign_in(browser, url, email, accept=False))
    assert page.status_code == 200 and "cancelled" in page.text, page.text


def test_the_withheld_permission_page_says_where_to_remove_what_was_granted(
        configured, emu, browser, http):
    """Nothing is linked, yet Microsoft keeps what the user did grant on its page."""
    email = f"untick-{uuid.uuid4().hex[:8]}@outlook.example"
    emu.add_user(email, personal=True)
    client = make_client(configured, scopes=WRITE)
    _flow, url, _pkce = to_microsoft(http, client, "live_connect", WRITE)
    page = come_back(http, "live_connect", sign_in(browser, url, email,
                                                   untick=("Calendars.ReadWrite",)))
    assert page.status_code == 200 and 'id="missing-scopes"' in page.text, page.text
    assert 'id="remove-access"' in page.text and REMOVE_AT["live_connect"] in page.text


def test_answers_to_invitations_reach_graph_through_the_api(configured, emu, browser, http):
    """POST .../participation_status: accept, decline and, for one occurrence of a series,
    tentativelyAccept, sent by the worker to Graph's event actions."""
    gateway = configured
    email, headers = link(http, emu, browser, gateway)
    at = datetime.now(UTC).replace(hour=9, minute=0, second=0, microsecond=0) + timedelta(
        days=2)
    boss = ("Boss", "boss@contoso.example")
    made = {subject: emu.add_event(email, invite(subject, at + timedelta(hours=hours), email,
                                                 **more), invited_by=boss)
            for subject, hours, more in [
                ("Board", 0, {}), ("Offsite", 2, {}),
                ("Standup", 4, {"recurrence": {
                    "pattern": {"type": "daily", "interval": 1},
                    "range": {"type": "numbered", "startDate": at.date().isoformat(),
                              "numberOfOccurrences": 3}}})]}
    sync(gateway, profile_of(gateway, email))
    read = invitations(http, headers)
    assert [(e["summary"], e["participation_status"]) for e in read] == [
        ("Board", "needs_action"), ("Offsite", "needs_action")] + [
        ("Standup", "needs_action")] * 3
    assert all(e["options"]["change_participation_status"] for e in read)
    for event, status in [(read[0], "accepted"), (read[1], "declined"),
                          (read[3], "tentative")]:
        url = (f"/v1/calendars/{event['calendar_id']}/events/{event['event_uid']}"
               "/participation_status")
        answer = http.post(url, headers=headers, json={"status": status})
        assert answer.status_code == 202, answer.text
    answers = gateway.worker.answers
    for answer_id in answers.due():
        assert aio.run(answers.apply(answer_id)).ok
    assert answers.due() == []

    assert [emu.count(f"events.{action}", user=email, status=202)
            for action in ("accept", "decline", "tentativelyAccept")] == [1, 1, 1]
    assert emu.event(email, made["Board"]["id"])["responseStatus"]["response"] == "accepted"
    assert emu.event(email, made["Offsite"]["id"])["responseStatus"]["response"] == "declined"
    # Only the one occurrence answered: it is an exception now, the series is not.
    standup = emu.event(email, made["Standup"]["id"])
    assert standup["responseStatus"]["response"] == "notResponded"
    sync(gateway, profile_of(gateway, email))
    assert [(e["summary"], e["participation_status"]) for e in invitations(http, headers)] == [
        ("Board", "accepted"), ("Offsite", "declined"), ("Standup", "needs_action"),
        ("Standup", "tentative"), ("Standup", "needs_action")]


def invite(subject: str, at: datetime, attendee: str, **more: object) -> dict[str, object]:
    def graph_time(moment: datetime) -> dict[str, str]:
        return {"dateTime": moment.strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"}
    return {"subject": subject, "start": graph_time(at),
            "end": graph_time(at + timedelta(minutes=30)),
            "attendees": [{"emailAddress": {"address": attendee}, "type": "required"}], **more}


def invitations(http, headers) -> list[dict]:
    """The invitations /v1/events reads, by start (a day's Board, Offsite, then Standups)."""
    read = http.get("/v1/events", headers=headers, params={"tzid": "Etc/UTC"})
    assert read.status_code == 200, read.text
    found = [e for e in read.json()["events"]
             if e["summary"] in ("Board", "Offsite", "Standup")]
    return sorted(found, key=lambda e: e["start"])


def test_invalid_grant_disconnects_the_profile(configured, emu, browser, http):
    gateway = configured
    email, _headers = link(http, emu, browser, gateway)
    profile_id = profile_of(gateway, email)
    emu.fail_refresh(email, 700082)
    emu.expire_access_tokens(email)
    from providers.microsoft.credentials import TOKENS
    TOKENS._tokens.clear()  # the process cache would answer without asking Microsoft
    with gateway.engine.begin() as conn:
        conn.execute(update(profiles).values(next_sync_at=datetime.now(UTC)))
    outcome = aio.run(gateway.worker.sync.sync_profile(profile_id))
    assert outcome.error is not None
    with gateway.engine.connect() as conn:
        row = conn.execute(select(profiles.c.connected).where(
            profiles.c.id == profile_id)).one()
    assert row.connected is False

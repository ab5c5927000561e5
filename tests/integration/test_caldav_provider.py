"""The CalDAV provider against real Radicale and Xandikos servers, beyond the contract:
rights, calendar creation, expired sync tokens, the ctag fallback, conditional writes,
invitations, authentication, reachability and a private CA."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from urllib.parse import urljoin

import pytest
from caldav.elements.cdav import CalendarTimeZone
from caldav.lib.error import AuthorizationError, RateLimitError

from providers.caldav.errors import ICLOUD_HINT, from_status, translate
from providers.caldav.provider import CalDavProvider, open_account, open_icloud_account
from providers.errors import (
    Conflict,
    CursorExpired,
    Forbidden,
    InvalidInput,
    NotFound,
    RateLimited,
    Unauthorized,
    Unavailable,
)
from providers.model import EventDraft, SyncCursor, TimeWindow
from providers.outbound import BlockedAddress, OutboundPolicy
from providers.registry import ProviderOptions
from tests.contract.harness import WINDOW, at
from tests.support import aio
from tests.support.davservers import (
    DavOwner,
    RadicaleServer,
    XandikosServer,
    shared_radicale,
    shared_xandikos,
    single_event,
    vcalendar,
)
from tests.support.outbound import LOOPBACK
from tests.support.processes import free_port

LOOPBACK = ProviderOptions(timeout=10, outbound=LOOPBACK)
# Radicale rights (first matching section wins): alice's "shared" calendar is read-only.
RIGHTS = """
[root]
user: .+
collection:
permissions: R

[principal]
user: .+
collection: {user}
permissions: RW

[shared-read-only]
user: .+
collection: {user}/shared
permissions: r

[calendars]
user: .+
collection: {user}/[^/]+
permissions: rw
"""
CAROL = "carol@example.test"
TOKYO_VTIMEZONE = ("BEGIN:VTIMEZONE\nTZID:Asia/Tokyo\nBEGIN:STANDARD\nDTSTART:19700101T000000\n"
                   "TZOFFSETFROM:+0900\nTZOFFSETTO:+0900\nTZNAME:JST\nEND:STANDARD\n"
                   "END:VTIMEZONE\n")


def run(coro):
    return aio.run(coro)


@pytest.fixture(scope="module")
def radicale_rights() -> Iterator[RadicaleServer]:
    """A Radicale with a rights file and a pre-made calendar the rights make read-only."""
    server = RadicaleServer({"alice": "secret", CAROL: "pw"}, rights=RIGHTS, collections={
        "alice/shared": {"tag": "VCALENDAR", "D:displayname": "Shared with me"},
        "alice/own": {"tag": "VCALENDAR", "D:displayname": "Own"}})
    with server:
        yield server


@pytest.fixture(scope="module")
def xandikos_tls() -> Iterator[XandikosServer]:
    with XandikosServer(tls_users={"alice": "secret"}) as server:
        yield server


def credentials_for(kind: str) -> dict[str, str]:
    if kind == "radicale":
        return {"server_url": shared_radicale().url, "username": "alice", "password": "secret"}
    return {"server_url": shared_xandikos().url}


@pytest.fixture(params=["radicale", "xandikos"])
def account(request: pytest.FixtureRequest) -> Iterator[tuple[dict[str, str], DavOwner, str]]:
    """Credentials for a shared server, its owner, and a fresh calendar there."""
    credentials = credentials_for(request.param)
    owner = DavOwner(credentials["server_url"], credentials.get("username"),
                     credentials.get("password"))
    calendar_id = owner.make_calendar()
    yield credentials, owner, calendar_id
    owner.delete_calendar(calendar_id)
    owner.close()


_open: list[CalDavProvider] = []


@pytest.fixture(autouse=True)
def _close_providers() -> Iterator[None]:
    """Every provider a test opens is closed afterwards (its sockets, its CA file)."""
    yield
    while _open:
        run(_open.pop().close())


def opened(credentials: dict[str, str], options: ProviderOptions = LOOPBACK,
           **extra: str) -> CalDavProvider:
    provider = open_account({**credentials, **extra}, options)
    _open.append(provider)
    return provider


def draft(key: str, summary: str = "Session", **changes) -> EventDraft:
    values = dict(managed_key=key, summary=summary, start=at(20, 14), end=at(20, 15),
                  start_tzid="Europe/Berlin", end_tzid="Europe/Berlin")
    values.update(changes)
    return EventDraft(**values)


# -- calendars ------------------------------------------------------------------------


def test_read_only_calendar_from_current_user_privilege_set(radicale_rights):
    provider = opened({"server_url": radicale_rights.url, "username": "alice",
                       "password": "secret"})
    calendars = {c.name: c for c in run(provider.list_calendars())}
    assert calendars["Shared with me"].readonly
    assert not calendars["Own"].readonly
    assert sum(c.primary for c in calendars.values()) == 1
    with pytest.raises(Forbidden):
        run(provider.put_event(calendars["Shared with me"].calendar_id, draft("ro"), None, None))


@pytest.mark.parametrize("kind", ["radicale", "xandikos"])
def test_create_calendar_then_a_duplicate_name_conflicts(kind):
    provider = opened(credentials_for(kind))
    name = f"Team {datetime.now(UTC).timestamp()}"
    created = run(provider.create_calendar(name, "#11AA33FF"))
    listed = {c.calendar_id: c for c in run(provider.list_calendars())}
    assert listed[created.calendar_id].name == name
    assert listed[created.calendar_id].color == "#11AA33"
    assert not listed[created.calendar_id].readonly
    try:
        with pytest.raises(Conflict):
            run(provider.create_calendar(name.upper(), None))
    finally:  # the server is shared by later tests in this process: leave it as found
        credentials = credentials_for(kind)
        owner = DavOwner(credentials["server_url"], credentials.get("username"),
                         credentials.get("password"))
        owner.client.calendar(url=urljoin(credentials["server_url"],
                                          created.calendar_id)).delete()
        owner.close()


# -- sync -----------------------------------------------------------------------------


def test_an_expired_sync_token_raises_cursor_expired_and_a_full_resync_works(account):
    credentials, owner, calendar_id = account
    provider = opened(credentials)
    owner.add(calendar_id, "a", "A", at(10, 9))
    first = run(provider.sync(calendar_id, None, WINDOW))
    body = json.loads(first.cursor.value)
    assert body["k"] == "t"  # both servers have sync-collection
    # A token the server never issued (or forgot): Radicale 403, Xandikos 412.
    body["t"] = body["t"][:-6] + "000000"
    with pytest.raises(CursorExpired):
        run(provider.sync(calendar_id, SyncCursor(json.dumps(body)), WINDOW))
    again = run(provider.sync(calendar_id, None, WINDOW))
    assert again.full and list(again.changed) == ["a"]


def test_ctag_and_etag_fallback(account):
    credentials, owner, calendar_id = account
    provider = opened(credentials, sync="ctag")
    owner.add(calendar_id, "keep", "Keep", at(10, 9))
    owner.add(calendar_id, "edit", "Before", at(11, 9))
    owner.add(calendar_id, "drop", "Drop", at(12, 9))
    first = run(provider.sync(calendar_id, None, WINDOW))
    assert first.full and sorted(first.changed) == ["drop", "edit", "keep"]
    assert json.loads(first.cursor.value)["k"] == "c"
    quiet = run(provider.sync(calendar_id, first.cursor, WINDOW))
    assert (quiet.changed, quiet.deleted, quiet.full) == ({}, (), False)
    owner.rename(calendar_id, "edit", "After")
    owner.remove(calendar_id, "drop")
    owner.add(calendar_id, "new", "New", at(13, 9))
    second = run(provider.sync(calendar_id, quiet.cursor, WINDOW))
    assert not second.full
    assert sorted(second.changed) == ["edit", "new"] and second.deleted == ("drop",)
    assert [e.summary for e in second.changed["edit"]] == ["After"]
    assert all(e.etag for events in second.changed.values() for e in events)
    with pytest.raises(CursorExpired):  # a sync-collection cursor means nothing here
        run(provider.sync(calendar_id, run(opened(credentials).sync(calendar_id, None,
                                                                     WINDOW)).cursor, WINDOW))


def test_incremental_sync_reports_a_uid_moved_to_another_object(account):
    credentials, owner, calendar_id = account
    provider = opened(credentials)
    owner.add(calendar_id, "old-uid", "Old", at(10, 9))
    first = run(provider.sync(calendar_id, None, WINDOW))
    owner.remove(calendar_id, "old-uid")
    owner.add(calendar_id, "new-uid", "New", at(10, 9))
    second = run(provider.sync(calendar_id, first.cursor, WINDOW))
    assert list(second.changed) == ["new-uid"] and second.deleted == ("old-uid",)


def test_a_fresh_provider_syncs_from_the_cursor_alone(account):
    """The cursor says where the calendar is, whose it is and its zone: a provider opened
    for the next sync goes straight to the sync-collection REPORT (no discovery, no
    PROPFIND), and still reads floating times in the calendar's zone."""
    credentials, owner, calendar_id = account
    owner.calendar(calendar_id).set_properties([CalendarTimeZone(vcalendar(TOKYO_VTIMEZONE,
                                                                           timezone=False))])
    owner.add(calendar_id, "a", "A", at(10, 9))
    first = run(opened(credentials).sync(calendar_id, None, WINDOW))
    where = json.loads(first.cursor.value)["w"]
    assert where["u"].endswith(calendar_id) and where["z"] == "Asia/Tokyo"
    owner.put(calendar_id, vcalendar(  # floating times: 09:00 wherever the calendar is
        "BEGIN:VEVENT\nUID:zoned\nDTSTAMP:20260101T000000Z\nDTSTART:20270310T090000\n"
        "DTEND:20270310T100000\nSUMMARY:Zoned\nEND:VEVENT\n", timezone=False))
    fresh = opened(credentials)
    second = run(fresh.sync(calendar_id, first.cursor, WINDOW))
    assert fresh.client.known_principal is None  # no discovery happened
    assert list(second.changed) == ["zoned"] and not second.full
    (event,) = second.changed["zoned"]
    assert event.start == at(10, 0)  # 09:00 in Tokyo
    assert json.loads(second.cursor.value)["w"] == where


def test_a_deleted_calendar_is_not_found_from_its_cursor(account):
    credentials, owner, _calendar_id = account
    for mode in ("token", "ctag"):
        doomed = owner.make_calendar()
        owner.add(doomed, "a", "A", at(10, 9))
        cursor = run(opened(credentials, sync=mode).sync(doomed, None, WINDOW)).cursor
        owner.delete_calendar(doomed)
        with pytest.raises(NotFound):
            run(opened(credentials, sync=mode).sync(doomed, cursor, WINDOW))


# -- writes ---------------------------------------------------------------------------


def test_conditional_writes_conflict_on_a_stale_etag(account):
    credentials, owner, calendar_id = account
    provider = opened(credentials)
    written = run(provider.put_event(calendar_id, draft("c1"), None, None))
    assert written.etag
    owner.rename(calendar_id, written.resource_id, "Edited by the owner")
    with pytest.raises(Conflict):
        run(provider.put_event(calendar_id, draft("c1", "Mine"), written.resource_id,
                               written.etag))
    with pytest.raises(Conflict):
        run(provider.delete_event(calendar_id, written.resource_id, written.etag))
    fresh = run(provider.sync(calendar_id, None, WINDOW)).changed[written.resource_id][0]
    updated = run(provider.put_event(calendar_id, draft("c1", "Mine"), written.resource_id,
                                     fresh.etag))
    assert updated.resource_id == written.resource_id and updated.etag != fresh.etag
    run(provider.delete_event(calendar_id, written.resource_id, updated.etag))
    assert written.resource_id not in run(provider.sync(calendar_id, None, WINDOW)).changed


def test_a_retried_create_updates_the_event_the_lost_attempt_made(account):
    credentials, owner, calendar_id = account
    provider = opened(credentials)
    first = run(provider.put_event(calendar_id, draft("r1", "First try"), None, None))
    retry = run(provider.put_event(calendar_id, draft("r1", "Second try", reminders_minutes=(15,),
                                                      private=True), None, None))
    assert retry.resource_id == first.resource_id
    (event,) = run(provider.sync(calendar_id, None, WINDOW)).changed[first.resource_id]
    assert (event.summary, event.private, event.managed_key) == ("Second try", True, "r1")
    raw = owner.raw(calendar_id, first.resource_id)
    assert "X-CALGATE-MANAGED-KEY:r1" in raw and "BEGIN:VALARM" in raw
    assert "TZID:Europe/Berlin" in raw and "SEQUENCE:1" in raw


def test_answering_an_invitation_for_the_series_and_for_one_instance(radicale_rights):
    credentials = {"server_url": radicale_rights.url, "username": CAROL, "password": "pw"}
    owner = DavOwner(radicale_rights.url, CAROL, "pw")
    calendar_id = owner.make_calendar()
    invite = ("ORGANIZER:mailto:boss@example.test\nRRULE:FREQ=WEEKLY;COUNT=3\n"
              f"ATTENDEE;PARTSTAT=NEEDS-ACTION;RSVP=TRUE:mailto:{CAROL}\n")
    owner.put(calendar_id, vcalendar(single_event("inv", "Standup", at(1, 9), timedelta(hours=1),
                                                  extra=invite)))
    provider = opened(credentials)
    events = run(provider.sync(calendar_id, None, WINDOW)).changed["inv"]
    assert [e.participation_status for e in events] == ["needs_action"] * 3
    run(provider.set_participation(calendar_id, "inv", None, "accepted"))
    run(provider.set_participation(calendar_id, "inv", events[1].instance_id, "declined"))
    events = run(provider.sync(calendar_id, None, WINDOW)).changed["inv"]
    assert [e.participation_status for e in events] == ["accepted", "declined", "accepted"]
    assert len({e.instance_id for e in events}) == 3
    with pytest.raises(InvalidInput):
        run(provider.set_participation(calendar_id, "inv", "someone-else@x", "accepted"))
    owner.close()


def test_computed_free_busy_matches_the_native_report(account):
    credentials, owner, calendar_id = account
    owner.add(calendar_id, "busy", "Busy", at(15, 9))
    owner.add(calendar_id, "free", "Free", at(15, 11), transparent=True)
    owner.add(calendar_id, "maybe", "Maybe", at(15, 13), extra="STATUS:TENTATIVE\n")
    owner.add(calendar_id, "off", "Off", at(15, 15), extra="STATUS:CANCELLED\n")
    window = TimeWindow(at(15, 0), at(16, 0))
    computed = run(opened(credentials, free_busy="computed").free_busy([calendar_id], window))
    assert [(b.start, b.status) for _, b in computed] == [(at(15, 9), "busy"),
                                                         (at(15, 13), "tentative")]
    native = run(opened(credentials, free_busy="native").free_busy([calendar_id], window))
    assert {(b.start, b.end) for _, b in native} == {(b.start, b.end) for _, b in computed}


# -- authentication, reachability, TLS --------------------------------------------------


def test_discovery_from_any_url_of_the_server():
    server = shared_xandikos()
    accounts = set()
    for url in (server.base + "/", server.url, server.url + "calendars/calendar/"):
        provider = opened({"server_url": url})
        accounts.add(run(provider.verify()).upstream_id)
        calendars = [c.calendar_id for c in run(provider.list_calendars())]
        assert "/user/calendars/calendar/" in calendars
    assert len(accounts) == 1  # the same account, however its URL was typed
    with pytest.raises(InvalidInput, match="current-user-principal"):
        run(opened({"server_url": server.base + "/nothing/"}).verify())


def test_a_wrong_password_is_unauthorized():
    provider = opened({**credentials_for("radicale"), "password": "wrong"})
    with pytest.raises(Unauthorized):
        run(provider.verify())


def test_an_unreachable_server_is_unavailable():
    provider = opened({"server_url": f"http://127.0.0.1:{free_port()}/", "username": "a",
                       "password": "b"})
    with pytest.raises(Unavailable):
        run(provider.verify())


def test_loopback_servers_are_refused_unless_the_operator_allows_them():
    provider = opened(credentials_for("radicale"), ProviderOptions())
    with pytest.raises(BlockedAddress, match=r"127\.0\.0\.1 is a loopback address"):
        run(provider.verify())
    # Allowing another network does not allow loopback.
    provider = opened(credentials_for("radicale"), ProviderOptions(
        outbound=OutboundPolicy.allowing(["10.20.0.0/16"])))
    with pytest.raises(BlockedAddress):
        run(provider.verify())


def test_icloud_401_explains_app_specific_passwords():
    error = translate(AuthorizationError(url="https://caldav.icloud.com/", reason="Unauthorized",
                                         status=401), host="caldav.icloud.com", what="verify")
    assert isinstance(error, Unauthorized) and str(error) == ICLOUD_HINT
    assert "app-specific password" in str(error) and "appleid.apple.com" in str(error)
    assert "App-Specific Passwords" in str(error)
    other = from_status(401, host="dav.example.org", what="verify")
    assert isinstance(other, Unauthorized) and "app-specific" not in str(other)


def test_rate_limits_carry_the_servers_delay():
    error = translate(RateLimitError(url="https://dav.example.org/", retry_after="7",
                                     retry_after_seconds=7.0, status=429),
                      host="dav.example.org", what="sync")
    assert isinstance(error, RateLimited) and error.retry_after == 7.0


def test_credentials_are_checked_when_the_account_is_opened():
    with pytest.raises(InvalidInput):
        open_account({"server_url": "https://dav.example.org/", "sync": "sometimes"}, LOOPBACK)
    with pytest.raises(InvalidInput):
        open_account({"username": "me", "preset": "nextcloud"}, LOOPBACK)
    apple = open_icloud_account({"username": "me@gmail.com", "password": "x"}, LOOPBACK)
    assert apple.server == "https://caldav.icloud.com"


@pytest.mark.parametrize(("status", "retry_after", "kind"), [
    (403, None, Forbidden), (409, None, Conflict), (412, None, Conflict),
    (429, 30.0, RateLimited), (503, 5.0, RateLimited), (503, None, Unavailable),
    (500, None, Unavailable), (415, None, InvalidInput), (422, None, InvalidInput)])
def test_statuses_map_onto_the_error_tree(status, retry_after, kind):
    error = from_status(status, host="dav.example.org", what="x", retry_after=retry_after)
    assert isinstance(error, kind)
    if kind is RateLimited:
        assert error.retry_after == retry_after


def test_a_private_ca_is_trusted_only_when_given(xandikos_tls):
    credentials = {"server_url": xandikos_tls.url, "username": "alice", "password": "secret"}
    trusting = opened(credentials, ca_bundle=xandikos_tls.ca_file.read_text())
    assert run(trusting.verify()).profile_name == "alice"
    assert run(trusting.list_calendars())
    with pytest.raises(Unavailable, match="certificate verification"):
        run(opened(credentials).verify())
    with pytest.raises(Unauthorized):
        run(opened({**credentials, "password": "bad"},
                   ca_bundle=xandikos_tls.ca_file.read_text()).verify())

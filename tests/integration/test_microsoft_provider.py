"""GraphProvider against the Microsoft emulator (HTTPS with a test CA), msal and httpx
unmodified: linking with PKCE through the consent page, calendars, idempotent writes,
calendarView/delta sync with removals, an expired delta token and a recurring series,
free/busy from getSchedule (work) and from the view (personal), throttling."""

from __future__ import annotations

import functools
import itertools
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from providers.errors import Conflict, CursorExpired, Forbidden, Unauthorized
from providers.microsoft import oauth
from providers.microsoft.config import GraphSettings, settings_of
from providers.microsoft.errors import ConsentDeclined
from providers.microsoft.provider import GraphProvider, open_account
from providers.microsoft.scopes import graph_scopes
from providers.model import ChangeSet, EventDraft, Person, TimeWindow
from providers.registry import ProviderOptions
from tests.emulators.microsoft import MicrosoftEmulator
from tests.emulators.microsoft.signin import sign_in
from tests.support import aio

REDIRECT = "http://127.0.0.1:9/cb"
WRITE = ("list_calendars", "read_events", "create_event", "delete_event", "read_free_busy",
         "create_calendar")
WINDOW = TimeWindow(datetime(2027, 3, 1, tzinfo=UTC), datetime(2027, 5, 1, tzinfo=UTC))
_users = itertools.count()
_opened: list[GraphProvider] = []  # closed when the test's event loop ends


@pytest.fixture(scope="module")
def emu() -> Iterator[MicrosoftEmulator]:
    with MicrosoftEmulator.running() as emulator:
        emulator.register_app("calgate", "s3cret", "Calgate", [REDIRECT])
        yield emulator


@pytest.fixture
def browser(emu: MicrosoftEmulator) -> Iterator[httpx.Client]:
    with httpx.Client(verify=emu.ca.client_context(), trust_env=False) as client:
        yield client


def options(emu: MicrosoftEmulator) -> ProviderOptions:
    return ProviderOptions(timeout=10.0, settings={"office365": GraphSettings.from_values({
        "authority_base": emu.base_url, "graph_base": emu.base_url,
        "ca_bundle": str(emu.ca_path), "page_size": "3", "timeout_seconds": "10",
        "retry_max_wait_seconds": "10"})})


def link(emu: MicrosoftEmulator, browser: httpx.Client, *, personal: bool = False,
         scopes: tuple[str, ...] = WRITE) -> tuple[str, GraphProvider]:
    """A new mailbox linked through the consent page; its address and an open provider."""
    email = f"user{next(_users)}@{'outlook' if personal else 'contoso'}.example"
    emu.add_user(email, personal=personal)
    settings, app = settings_of(options(emu)), oauth.EntraApp("calgate", "s3cret")
    wanted = graph_scopes(scopes)
    start = oauth.start_link(settings, app, wanted, REDIRECT)
    assert "code_challenge_method=S256" in start.url and "nonce=" in start.url
    back = sign_in(browser, start.url, email)
    grant = oauth.finish_link(settings, app, start.flow, back, wanted)
    assert grant.username == email and "refresh_token" in grant.secrets.to_mapping()
    provider = open_account(grant.secrets.to_mapping(), options(emu))
    _opened.append(provider)
    return email, provider


def in_loop(test: Callable[..., Awaitable[None]]) -> Callable[..., None]:
    """Run an async test body in one event loop (the provider's connection pool belongs
    to the loop that opened it)."""
    async def closing(*args: Any, **kwargs: Any) -> None:
        try:
            await test(*args, **kwargs)
        finally:
            while _opened:
                await _opened.pop().close()

    @functools.wraps(test)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        # In a thread of its own: Playwright's sync API leaves a loop running in this one.
        aio.run(closing(*args, **kwargs))
    return wrapper


def when(day: int, hour: int) -> datetime:
    return datetime(2027, 3, day, hour, tzinfo=UTC)


def graph_time(moment: datetime) -> dict[str, str]:
    return {"dateTime": moment.strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"}


def outlook_event(subject: str, start: datetime, hours: int = 1, **more: Any) -> dict[str, Any]:
    return {"subject": subject, "start": graph_time(start),
            "end": graph_time(start + timedelta(hours=hours)), **more}


@in_loop
async def test_link_verify_and_calendars(emu: MicrosoftEmulator, browser: httpx.Client) -> None:
    email, provider = link(emu, browser)
    assert set(provider.secrets.scopes) >= {"Calendars.ReadWrite"}
    shared = emu.add_calendar(email, "Team", can_edit=False, owner=("Boss", "boss@x.example"))
    info = await provider.verify()
    assert info.profile_name == email and info.upstream_id == provider.secrets.account_id
    calendars = {c.calendar_id: c for c in await provider.list_calendars()}
    assert calendars[shared].readonly and not calendars[shared].primary
    assert any(c.primary and not c.readonly for c in calendars.values())
    made = await provider.create_calendar("Bookings", None)
    assert made.name == "Bookings" and not made.readonly
    with pytest.raises(Conflict):
        await provider.create_calendar("bookings", None)


def test_cancelled_consent_is_explained(emu: MicrosoftEmulator, browser: httpx.Client) -> None:
    emu.add_user("shy@contoso.example")
    settings, app = settings_of(options(emu)), oauth.EntraApp("calgate", "s3cret")
    start = oauth.start_link(settings, app, graph_scopes(WRITE), REDIRECT)
    back = sign_in(browser, start.url, "shy@contoso.example", accept=False)
    with pytest.raises(ConsentDeclined):
        oauth.finish_link(settings, app, start.flow, back, graph_scopes(WRITE))


def test_unticked_permission_is_refused(emu: MicrosoftEmulator, browser: httpx.Client) -> None:
    emu.add_user("picky@contoso.example")
    settings, app = settings_of(options(emu)), oauth.EntraApp("calgate", "s3cret")
    wanted = graph_scopes(WRITE)
    start = oauth.start_link(settings, app, wanted, REDIRECT)
    back = sign_in(browser, start.url, "picky@contoso.example", untick=("Calendars.ReadWrite",))
    with pytest.raises(Forbidden):
        oauth.finish_link(settings, app, start.flow, back, wanted)


def draft(key: str, summary: str, **more: Any) -> EventDraft:
    return EventDraft(managed_key=key, summary=summary, start=when(10, 9), end=when(10, 10),
                      start_tzid="Europe/Paris", end_tzid="Europe/Paris", **more)


@in_loop
async def test_writes_are_idempotent_and_guarded(emu: MicrosoftEmulator,
                                           browser: httpx.Client) -> None:
    email, provider = link(emu, browser)
    calendar = next(c for c in await provider.list_calendars() if c.primary).calendar_id
    emu.drop_answers(email)  # the first create is applied, its answer lost
    written = await provider.put_event(calendar, draft("k1", "Call", attendees=(
        Person("guest@example.com", "Guest"),)), None, None)
    stored = emu.events(email)
    assert len(stored) == 1 and stored[0]["id"] == written.resource_id
    assert emu.count("events.create", user=email) == 2
    assert stored[0]["attendees"][0]["emailAddress"]["address"] == "guest@example.com"
    again = await provider.put_event(calendar, draft("k1", "Call"), None, None)
    assert again.resource_id == written.resource_id and len(emu.events(email)) == 1
    updated = await provider.put_event(calendar, draft("k1", "Call (moved)"),
                  written.resource_id, written.etag)
    assert emu.event(email, written.resource_id)["subject"] == "Call (moved)"
    with pytest.raises(Conflict):  # the etag of before the update is stale
        await provider.put_event(calendar, draft("k1", "Stale"), written.resource_id,
            written.etag)
    await provider.delete_event(calendar, updated.resource_id, updated.etag)
    assert emu.events(email) == []
    await provider.delete_event(calendar, updated.resource_id, None)  # gone: fine


def summaries(changes: ChangeSet) -> dict[str, list[str]]:
    return {r: sorted(e.summary for e in evs) for r, evs in changes.changed.items()}


@in_loop
async def test_delta_sync_removals_and_an_expired_token(emu: MicrosoftEmulator,
                                                  browser: httpx.Client) -> None:
    email, provider = link(emu, browser)
    calendar = next(c for c in await provider.list_calendars() if c.primary).calendar_id
    ids = [emu.add_event(email, outlook_event(f"E{i}", when(2 + i, 9)))["id"]
           for i in range(5)]
    first = await provider.sync(calendar, None, WINDOW)
    assert first.full and len(first.changed) == 5 and first.cursor is not None
    assert emu.count("delta", user=email) >= 2  # pages of 3 followed to the deltaLink
    prefer = next(r for r in emu.requests if r.kind == "delta").headers["prefer"]
    assert all(p in prefer for p in ("odata.maxpagesize=3", 'outlook.timezone="UTC"',
                                     'IdType="ImmutableId"'))
    emu.update_event(email, ids[0], {"subject": "E0 renamed"})
    emu.delete_event(email, ids[1])
    emu.clear_requests()
    second = await provider.sync(calendar, first.cursor, WINDOW)
    assert not second.full and summaries(second) == {ids[0]: ["E0 renamed"]}
    assert second.deleted == (ids[1],)
    assert emu.count(user=email) == 1  # one request for one change and one removal
    emu.expire_delta_tokens()
    with pytest.raises(CursorExpired):
        await provider.sync(calendar, second.cursor, WINDOW)
    again = await provider.sync(calendar, None, WINDOW)
    assert again.full and sorted(again.changed) == sorted(set(ids) - {ids[1]})
    assert all(len(evs) == 1 for evs in again.changed.values())  # no duplicate


@in_loop
async def test_a_recurring_series_reads_as_cronofy_would(emu: MicrosoftEmulator,
                                                   browser: httpx.Client) -> None:
    email, provider = link(emu, browser)
    calendar = next(c for c in await provider.list_calendars() if c.primary).calendar_id
    weekly = {"pattern": {"type": "weekly", "interval": 1, "daysOfWeek": ["monday"]},
              "range": {"type": "numbered", "startDate": "2027-03-01",
                        "numberOfOccurrences": 4}}
    master = emu.add_event(email, outlook_event("Standup", when(1, 9), recurrence=weekly))
    first = await provider.sync(calendar, None, WINDOW)
    instances = sorted(first.changed[master["id"]], key=lambda e: e.start)
    assert len(instances) == 4 and all(e.recurring for e in instances)
    emu.update_event(email, instances[1].instance_id,
                     {"start": graph_time(when(9, 11)), "end": graph_time(when(9, 12))})
    emu.delete_event(email, instances[2].instance_id)
    second = await provider.sync(calendar, first.cursor, WINDOW)
    now = sorted(second.changed[master["id"]], key=lambda e: e.start)
    assert [e.start for e in now] == [when(1, 9), when(9, 11), when(22, 9)]
    emu.update_event(email, master["id"], {"subject": "Daily sync"})
    third = await provider.sync(calendar, second.cursor, WINDOW)
    renamed = sorted(third.changed[master["id"]], key=lambda e: e.start)
    assert [e.start for e in renamed] == [when(1, 9), when(9, 11), when(22, 9)]
    # The emulator keeps the moved occurrence's own subject (an exception holds all its
    # fields there); the plain occurrences carry the new name.
    assert [renamed[0].summary, renamed[2].summary] == ["Daily sync"] * 2
    emu.delete_event(email, master["id"])
    fourth = await provider.sync(calendar, third.cursor, WINDOW)
    assert master["id"] in fourth.deleted and master["id"] not in fourth.changed


@in_loop
async def test_free_busy_only_profile_keeps_no_text(emu: MicrosoftEmulator,
                                              browser: httpx.Client) -> None:
    email, provider = link(emu, browser, scopes=("read_free_busy",))
    assert provider.secrets.scopes == ("Calendars.ReadBasic",)
    calendar = next(c for c in await provider.list_calendars() if c.primary).calendar_id
    emu.add_event(email, outlook_event("Secret plan", when(3, 9),
                                       location={"displayName": "Vault"}))
    synced = await provider.sync(calendar, None, WINDOW)
    events = [e for evs in synced.changed.values() for e in evs]
    assert len(events) == 1 and events[0].summary == "" and events[0].location == ""


@pytest.mark.parametrize("personal", [False, True])
@in_loop
async def test_free_busy(emu: MicrosoftEmulator, browser: httpx.Client, personal: bool) -> None:
    email, provider = link(emu, browser, personal=personal)
    calendar = next(c for c in await provider.list_calendars() if c.primary).calendar_id
    emu.add_event(email, outlook_event("Busy", when(4, 9)))
    emu.add_event(email, outlook_event("Free", when(4, 14), showAs="free"))
    emu.clear_requests()
    blocks = await provider.free_busy([calendar], WINDOW)
    assert [(c, b.start, b.end, b.status) for c, b in blocks] == [
        (calendar, when(4, 9), when(4, 10), "busy")]
    assert emu.count("getSchedule", user=email) == (0 if personal else 1)


@in_loop
async def test_throttling_waits_for_retry_after(emu: MicrosoftEmulator,
                                          browser: httpx.Client) -> None:
    email, provider = link(emu, browser)
    emu.inject_fault(email, status=429, retry_after=1, path="/me/calendars$")
    assert await provider.list_calendars()
    assert emu.count(user=email, status=429) == 1
    assert emu.count("calendars.list", user=email, status=200) == 1


@in_loop
async def test_a_revoked_refresh_token_means_relink(emu: MicrosoftEmulator,
                                             browser: httpx.Client) -> None:
    email, provider = link(emu, browser)
    emu.fail_refresh(email, 700082)
    emu.expire_access_tokens(email)
    with pytest.raises(Unauthorized):
        await provider.list_calendars()

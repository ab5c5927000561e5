"""Throttling, failures and credentials: the Google provider retries what Google asks it to
retry (with jitter, honouring Retry-After, within bounds), refreshes a rejected access token
once, and turns everything else into the provider error tree."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import anyio
import pytest

from providers.errors import RateLimited, Unauthorized, Unavailable
from providers.google.mapping import MANAGED_KEY
from providers.model import EventDraft
from tests.contract.harness_google import open_for
from tests.emulators.google.shared import new_email, shared_emulator
from tests.support import aio

EVENTS = r"/calendar/v3/calendars/[^/]+/events$"


@pytest.fixture
def emu():
    emulator = shared_emulator()
    yield emulator
    emulator.clear_faults()


@pytest.fixture
def email(emu):
    return emu.add_user(new_email())


def draft(n: int) -> EventDraft:
    start = datetime(2027, 5, 1, 8, tzinfo=UTC) + timedelta(hours=n)
    return EventDraft(managed_key=f"cg1.acc.evt{n:03d}", summary=f"Session {n}", start=start,
                      end=start + timedelta(minutes=45))


def test_a_batch_of_writes_rides_out_quota_and_backend_errors(emu, email):
    provider = open_for(emu, email, retry_attempts="12")
    emu.inject_fault(EVENTS, method="POST", status=403, reason="rateLimitExceeded", times=25)
    emu.inject_fault(EVENTS, method="GET", status=403, reason="userRateLimitExceeded",
                     times=15)
    emu.inject_fault(EVENTS, method="POST", status=429, retry_after=0.02, times=20)
    emu.inject_fault(EVENTS, status=503, times=20)
    emu.inject_fault(EVENTS, method="POST", status=500, times=5)
    results = {}

    async def write_all() -> None:
        limit = anyio.Semaphore(16)

        async def one(n: int) -> None:
            async with limit:
                results[n] = await provider.put_event(email, draft(n), None, None)

        async with anyio.create_task_group() as group:
            for n in range(200):
                group.start_soon(one, n)
        await provider.close()

    aio.run(write_all())
    stored = emu.events(email)
    keys = sorted(e["extendedProperties"]["private"][MANAGED_KEY] for e in stored)
    assert keys == sorted(draft(n).managed_key for n in range(200))  # each exactly once
    assert {r.resource_id for r in results.values()} == {e["id"] for e in stored}
    injected = [r for r in emu.requests if r.user in (None, email) and r.injected]
    assert len(injected) == 85  # every fault was met, and ridden out
    assert emu.count("events.insert", status=200) >= 200


def test_retry_after_beyond_the_budget_is_handed_to_the_caller(emu, email):
    provider = open_for(emu, email)
    emu.inject_fault(EVENTS, method="GET", status=429, retry_after=30, times=1)
    with pytest.raises(RateLimited) as caught:
        aio.run(provider.put_event(email, draft(1), None, None))
    assert caught.value.retry_after == 30
    aio.run(provider.close())


def test_persistent_failures_end_as_unavailable_after_bounded_attempts(emu, email):
    provider = open_for(emu, email, retry_attempts="3")
    emu.inject_fault(r"/users/me/calendarList$", status=503, times=10)
    start = len(emu.requests)
    with pytest.raises(Unavailable):
        aio.run(provider.list_calendars())
    tries = [r for r in emu.requests[start:] if r.path.endswith("/calendarList")]
    assert len(tries) == 3
    aio.run(provider.close())


def test_a_rejected_access_token_is_refreshed_once(emu, email):
    provider = open_for(emu, email)
    aio.run(provider.list_calendars())
    emu.expire_access_tokens(email)
    start = len(emu.requests)
    aio.run(provider.list_calendars())
    seen = [(r.path, r.status) for r in emu.requests[start:]]
    assert seen == [("/calendar/v3/users/me/calendarList", 401), ("/token", 200),
                    ("/calendar/v3/users/me/calendarList", 200)]
    aio.run(provider.close())


def test_a_second_provider_reuses_the_cached_access_token(emu, email):
    first = open_for(emu, email)
    aio.run(first.verify())
    aio.run(first.close())
    refresh = next(iter(t for t, v in emu.oauth.refresh.items() if v.user == email))
    from providers.google.provider import open_account
    from tests.contract.harness_google import options_for
    from tests.emulators.google.shared import CLIENT_ID, CLIENT_SECRET

    second = open_account({"refresh_token": refresh, "client_id": CLIENT_ID,
                           "client_secret": CLIENT_SECRET}, options_for(emu))
    start = len(emu.requests)
    aio.run(second.verify())
    assert [r.path for r in emu.requests[start:]] == ["/calendar/v3/users/me/calendarList/primary"]
    aio.run(second.close())


def test_a_revoked_grant_is_unauthorized(emu, email):
    provider = open_for(emu, email)
    aio.run(provider.verify())
    emu.revoke_user_tokens(email)
    with pytest.raises(Unauthorized, match="linked again"):
        aio.run(provider.list_calendars())
    aio.run(provider.close())


def test_revoke_upstream_revokes_the_grant_and_tolerates_repeats(emu, email):
    provider = open_for(emu, email)
    aio.run(provider.verify())
    aio.run(provider.revoke_upstream())
    assert all(t.revoked for t in emu.oauth.refresh.values() if t.user == email)
    aio.run(provider.revoke_upstream())  # already invalid: fine
    with pytest.raises(Unauthorized):
        aio.run(provider.verify())
    revokes = [r.status for r in emu.requests if r.path == "/revoke"][-2:]
    assert revokes == [200, 400]
    aio.run(provider.close())


def test_an_unreachable_google_is_unavailable(emu, email):
    from providers.google.config import GoogleSettings
    from providers.google.provider import open_account
    from providers.registry import ProviderOptions

    provider = open_account(
        {"refresh_token": "1//x", "client_id": "c", "client_secret": "s"},
        ProviderOptions(timeout=2, settings={"google": GoogleSettings.from_values({
            "api_endpoint": "http://127.0.0.1:9/calendar/v3/",
            "token_uri": "http://127.0.0.1:9/token",
            "retry_attempts": "2", "retry_base_seconds": "0.001"})}))
    with pytest.raises(Unavailable):
        aio.run(provider.verify())
    aio.run(provider.close())

"""Issue 5's done-when: a backfill of 500 events, sent with the unmodified pycronofy SDK's
batch API (10 batches of 50) to a real Calgate server, lands on a real Radicale account
exactly once per event, and its progress (``GET /v1/batch/{id}``) is visible while the
server's worker applies it."""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pycronofy
import pytest
from pycronofy.batch import BatchBuilder

from gateway.domain.managed import managed_key
from tests.support.consent_http import consent_over_http
from tests.support.davservers import DavOwner, RadicaleServer
from tests.support.e2e_server import CallbackServer, GatewayServer, RegisteredApp
from tests.support.waiting import Deadline

SCOPE = "read_account list_calendars read_events create_event delete_event"
BATCHES, PER_BATCH = 10, 50
KEY = re.compile(r"^X-CALGATE-MANAGED-KEY:(.+)$", re.MULTILINE)
UID = re.compile(r"^UID:(.+)$", re.MULTILINE)


@pytest.fixture
def radicale() -> Iterator[tuple[RadicaleServer, DavOwner, str]]:
    """A Radicale account with an empty "Backfill" calendar, and its owner's own client."""
    with RadicaleServer(users={"alice": "wonderland"}) as server:
        owner = DavOwner(server.url, "alice", "wonderland")
        yield server, owner, owner.make_calendar("Backfill")
        owner.close()


def link_over_http(client: pycronofy.Client, server: GatewayServer, callback: CallbackServer,
                   dav_url: str) -> dict[str, str]:
    """The consent journey of test_caldav_journey (CalDAV provider, server address, user
    and password, then Allow), driven as a browser without JavaScript would."""
    return consent_over_http(
        client.user_auth_link(callback.url, scope=SCOPE, state="backfill"), server.url,
        callback, "caldav", {"server_url": dav_url, "username": "alice",
                             "password": "wonderland"})


def sdk_client(server: GatewayServer, app: RegisteredApp) -> pycronofy.Client:
    client = pycronofy.Client(client_id=app.client_id, client_secret=app.secret)
    client.request_handler.base_url = server.url
    client.app_base_url = server.url
    return client


def wait_for(check: Any, timeout: float, what: str) -> Any:
    deadline = Deadline(timeout)
    while not (value := check()):
        assert not deadline.passed(), f"timed out waiting for {what}"
        time.sleep(0.1)
    return value


def test_500_events_in_batches_of_50_land_once_each_with_visible_progress(
        server: GatewayServer, callback: CallbackServer, radicale: Any) -> None:
    dav, owner, path = radicale
    app = server.register_client(name="Backfill App", redirect_uris=[callback.url],
                                 scopes=SCOPE.split(), legacy_no_pkce=True)
    client = sdk_client(server, app)
    got = link_over_http(client, server, callback, dav.url)
    client.get_authorization_from_code(got["code"], redirect_uri=callback.url)
    account_id = client.account()["account_id"]
    wait_for(lambda: not client.userinfo()["cronofy.data"]["profiles"][0][
        "profile_initial_sync_required"], 20, "the initial sync")
    (calendar,) = [c for c in client.list_calendars() if c["calendar_name"] == "Backfill"]
    calendar_id = calendar["calendar_id"]

    # pycronofy's BatchResponse keeps only the entries' statuses: its response hook (the
    # SDK's own extension point) hands us Calgate's batch_id and Location as well.
    sent: list[dict[str, str]] = []

    def keep(response: Any, *args: Any, **kwargs: Any) -> None:
        if response.request.method == "POST" and response.url.endswith("/v1/batch"):
            sent.append({"batch_id": response.json()["batch_id"],
                         "location": response.headers["Location"]})

    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(days=2)
    observations: list[dict[str, Any]] = []
    began = time.monotonic()
    pycronofy.set_request_hook(keep)
    try:
        for b in range(BATCHES):
            builder = BatchBuilder()
            for n in range(b * PER_BATCH, (b + 1) * PER_BATCH):
                at = start + timedelta(hours=n)
                builder.upsert_event(calendar_id, {
                    "event_id": f"backfill-{n:03d}", "summary": f"Backfill {n}",
                    "description": "imported", "start": at, "end": at + timedelta(minutes=30)})
            result = client.batch(builder)  # raises PyCronofyPartialSuccessError on any miss
            assert [e.status() for e in result.entries] == [202] * PER_BATCH
            # While the worker applies the batches sent so far: how far has each got?
            observations += [progress(client, s["location"]) for s in sent]
    finally:
        pycronofy.set_request_hook(None)
    sent_seconds = time.monotonic() - began
    assert len(sent) == BATCHES and len({s["batch_id"] for s in sent}) == BATCHES
    assert all(s["location"] == f"{server.url}/v1/batch/{s['batch_id']}" for s in sent)

    def all_applied() -> list[dict[str, Any]] | None:
        seen = [progress(client, s["location"]) for s in sent]
        observations.extend(seen)
        return seen if all(p["pending"] == 0 for p in seen) else None

    final = wait_for(all_applied, 60, "every batch to be applied")
    applied_seconds = time.monotonic() - began
    assert [(p["entries"], p["accepted"], p["applied"], p["failed"]) for p in final] == [
        (PER_BATCH, PER_BATCH, PER_BATCH, 0)] * BATCHES
    # Progress was visible while it ran: some batch seen part-way or with writes pending.
    midway = [p for p in observations if 0 < p["applied"] < p["entries"] or p["pending"] > 0]
    assert midway, observations

    # Read the CalDAV server itself, behind Calgate's back.
    objects = [unfold(str(item.data)) for item in owner.calendar(path).events()]
    keys = Counter(m.strip() for text in objects for m in KEY.findall(text))
    uids = Counter(u.strip() for text in objects for u in UID.findall(text))
    expected = {managed_key(account_id, calendar_id, f"backfill-{n:03d}")
                for n in range(BATCHES * PER_BATCH)}
    assert len(objects) == BATCHES * PER_BATCH
    assert set(keys) == expected and set(keys.values()) == {1}
    assert len(uids) == BATCHES * PER_BATCH and set(uids.values()) == {1}
    print(f"sent 500 events in {sent_seconds:.1f} s; all applied after {applied_seconds:.1f} s;"
          f" {len(midway)} of {len(observations)} progress reads saw a batch part-way")


def unfold(text: str) -> str:
    """iCalendar content lines as one line each (RFC 5545 s3.1: long lines are folded)."""
    return re.sub(r"\n[ \t]", "", text.replace("\r\n", "\n"))


def progress(client: pycronofy.Client, location: str) -> dict[str, Any]:
    """``GET /v1/batch/{id}`` through pycronofy's own request handler (absolute URL, as it
    follows ``next_page``)."""
    body: dict[str, Any] = client.request_handler.get(url=location).json()["batch"]
    return body

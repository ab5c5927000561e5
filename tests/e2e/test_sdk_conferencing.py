"""Both official SDKs, unmodified, against a running Calgate over a real Radicale: a weekly
series written through pycronofy's ``upsert_event`` and Node's ``createEvent`` (one series
upstream, read back expanded with one ``series_identifier``), the app's own (explicit)
conferencing link, and the free/busy ``include_ids``/``include_free`` flags.

(``google_event_ids`` against the Google emulator is covered at the API level in
tests/integration/test_google_gateway.py.)
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any

import icalendar
import pycronofy
import pytest

from tests.e2e.test_node_sdk import SCOPE, link
from tests.support.davservers import DavOwner, RadicaleServer
from tests.support.e2e_server import CallbackServer, GatewayServer
from tests.support.node_sdk import NodeSdk
from tests.support.waiting import eventually

ZOOM = {"profile_id": "explicit", "provider_description": "Zoom",
        "join_url": "https://zoom.example/j/42?pwd=abc"}


@pytest.fixture(scope="module")
def sdk_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayServer]:
    with GatewayServer(tmp_path_factory.mktemp("calgate-confer")) as running:
        yield running


@pytest.fixture
def radicale() -> Iterator[tuple[RadicaleServer, DavOwner, str]]:
    with RadicaleServer(users={"alice": "wonderland"}) as server:
        owner = DavOwner(server.url, "alice", "wonderland")
        yield server, owner, owner.make_calendar("Work")
        owner.close()


def _objects(owner: DavOwner, path: str, summary: str) -> list[Any]:
    """The VEVENTs stored upstream (one per object: a series is one) with this summary."""
    found = []
    for item in owner.calendar(path).events():
        for component in icalendar.Calendar.from_ical(str(item.data)).walk("VEVENT"):
            if str(component.get("SUMMARY")) == summary:
                found.append(component)
    return found


def _z(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_recurring_and_explicit_conferencing_through_both_sdks(
        sdk_server: GatewayServer, callback: CallbackServer,
        radicale: tuple[RadicaleServer, DavOwner, str]) -> None:
    dav, owner, path = radicale
    start = (datetime.now(UTC) + timedelta(days=2)).replace(hour=9, minute=0, second=0,
                                                             microsecond=0)
    owner.add(path, "theirs", "Owner's lunch", start + timedelta(hours=4), transparent=True)
    app = sdk_server.register_client(name="Confer App", redirect_uris=[callback.url],
                                     scopes=SCOPE.split(), legacy_no_pkce=True)
    node = NodeSdk(sdk_server.url, {"client_id": app.client_id, "client_secret": app.secret})
    token = node.call("requestAccessToken", {"code": link(sdk_server, app, callback, dav.url),
                                             "redirect_uri": callback.url}).unwrap()
    py = pycronofy.Client(client_id=app.client_id, client_secret=app.secret,
                          access_token=token["access_token"])
    py.request_handler.base_url = sdk_server.url
    calendar_id = eventually(lambda: [c["calendar_id"] for c in py.list_calendars()
                                      if c["calendar_name"] == "Work"])[0]

    weekly = {"recurrence": {"rules": [{"frequency": "weekly", "count": 3}]}}
    py.upsert_event(calendar_id, {"event_id": "py-weekly", "summary": "Py weekly",
                                  "start": start, "end": start + timedelta(hours=1),
                                  "tzid": "Europe/London", **weekly})
    assert node.call("createEvent", {
        "calendar_id": calendar_id, "event_id": "node-weekly", "summary": "Node weekly",
        "start": _z(start + timedelta(hours=2)), "end": _z(start + timedelta(hours=3)),
        "tzid": "Europe/London", "conferencing": ZOOM, **weekly}).ok
    bad = node.call("createEvent", {
        "calendar_id": calendar_id, "event_id": "x", "summary": "x", "start": _z(start),
        "end": _z(start + timedelta(hours=1)),
        "conferencing": {"profile_id": "explicit", "provider_description": "Zoom"}})
    assert bad.status == 422 and list(bad.body["errors"]) == ["conferencing.join_url"]

    # One object per series upstream, with its RRULE; the explicit link as CONFERENCE.
    (py_series,) = eventually(lambda: _objects(owner, path, "Py weekly"))
    (node_series,) = eventually(lambda: _objects(owner, path, "Node weekly"))
    assert py_series.get("RRULE")["COUNT"] == [3] and node_series.get("RRULE") is not None
    assert str(node_series["CONFERENCE"]) == ZOOM["join_url"]
    assert node_series["CONFERENCE"].params["LABEL"] == "Zoom"
    assert str(node_series["LOCATION"]) == ZOOM["join_url"]

    window = {"tzid": "Etc/UTC", "from": start.date().isoformat(),
              "to": (start + timedelta(days=22)).date().isoformat(),
              "include_managed": True, "calendar_ids": [calendar_id]}

    def read(summary: str) -> list[dict[str, Any]]:
        found = [e for e in py.read_events(calendar_ids=(calendar_id,),
                                           from_date=window["from"], to_date=window["to"],
                                           tzid="Etc/UTC", include_managed=True).all()
                 if e["summary"] == summary]
        return found if len(found) == 3 else []

    for summary in ("Py weekly", "Node weekly"):
        occurrences = eventually(lambda s=summary: read(s))
        assert len({e["series_identifier"] for e in occurrences}) == 1
        assert all(e["recurring"] for e in occurrences)
        starts = sorted(datetime.fromisoformat(e["start"]) for e in occurrences)
        assert [b - a for a, b in pairwise(starts)] == [timedelta(days=7)] * 2
    node_read = node.call("readEvents", window).unwrap()["events"]
    zoomed = [e for e in node_read if e["summary"] == "Node weekly"]
    assert len(zoomed) == 3 and all(e["conferencing"] == {
        "provider_name": "Zoom", "join_url": ZOOM["join_url"]} for e in zoomed)
    assert all(e["meeting_url"] == ZOOM["join_url"] for e in zoomed)
    assert all("conferencing" not in e for e in node_read if e["summary"] == "Py weekly")

    # Free/busy: ids and the transparent lunch only when asked for.
    uids = {(e["summary"], e["start"]): e["event_uid"] for e in node_read}
    plain = node.call("freeBusy", window).unwrap()["free_busy"]
    assert all(set(b) == {"calendar_id", "start", "end", "free_busy_status"} for b in plain)
    assert "free" not in {b["free_busy_status"] for b in plain}
    flagged = node.call("freeBusy", {**window, "include_ids": True,
                                     "include_free": True}).unwrap()["free_busy"]
    assert len(flagged) == len(plain) + 1
    (lunch,) = [b for b in flagged if b["free_busy_status"] == "free"]
    assert lunch["event_uid"] == uids[("Owner's lunch", lunch["start"])]
    assert "event_id" not in lunch
    mine = [b for b in flagged if b.get("event_id") == "py-weekly"]
    assert [b["event_uid"] for b in mine] == [uids[("Py weekly", b["start"])] for b in mine]
    assert len(mine) == 3

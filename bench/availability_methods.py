"""The three ways bench/run_availability_bench.py answers the same question, each a callable
returning the slots (bench/availability_slots.py's form), and the timing loop.

1. ``endpoint``: one ``POST /v1/availability`` to Calgate with the client secret as bearer;
   the answer is parsed from JSON. Timed warm (the same question again: the busy sets kept
   since the last change) and cold (``change`` first, untimed: every member's mirror
   generation moved, as a sync or a write moves it, so every busy set is read afresh).
2. ``free_busy``: what an app does without it: ``GET /v1/free_busy`` for every member with
   that member's access token (``tzid=Etc/UTC``, the days the question covers), following
   ``pages.next_page`` to the end, then the slots computed in the app.
3. ``radicale`` and ``google``: asking the providers at query time: a CalDAV
   ``free-busy-query`` REPORT (RFC 4791 §7.10) on each member's calendar in Radicale, and
   Google's ``freebusy.query`` for each member's primary calendar in the Google emulator
   through google-api-python-client (each member's own credentials, a service built once
   per member, as an app would keep it), then the same slot computation.

Members are asked one after the other. Every HTTP client keeps its connections open
between rounds (httpx for Calgate and Radicale, httplib2 inside google-api-python-client),
as an app would.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import availability_slots as sl
import httpx
from availability_fixtures import wire
from availability_setup import GOOGLE_APP, Stage

Method = Callable[[], list[sl.Slot]]
FREE_BUSY_QUERY = ('<?xml version="1.0" encoding="utf-8"?>'
                   '<C:free-busy-query xmlns:C="urn:ietf:params:xml:ns:caldav">'
                   '<C:time-range start="{start}" end="{end}"/></C:free-busy-query>')


@dataclass(frozen=True, slots=True)
class Timing:
    """One method's measured rounds (seconds each) and its last answer."""

    name: str
    samples: tuple[float, ...]
    answer: tuple[sl.Slot, ...]
    requests: int  # HTTP requests per answer

    def quantile(self, q: float) -> float:
        """The q-quantile (nearest rank: p99 of fewer than 100 rounds is the maximum)."""
        ordered = sorted(self.samples)
        return ordered[max(0, math.ceil(q * len(ordered) - 1e-9) - 1)]

    @property
    def p50(self) -> float:
        return statistics.median(self.samples)

    @property
    def p99(self) -> float:
        return self.quantile(0.99)


def timed(name: str, method: Method, rounds: int, warmup: int,
          counter: Callable[[], int], prepare: Callable[[], None] | None = None) -> Timing:
    """``warmup`` untimed answers, then ``rounds`` timed ones (perf_counter around each;
    ``prepare``, if given, runs untimed before each)."""
    for _ in range(warmup):
        method()
    before = counter()
    samples = []
    answer: list[sl.Slot] = []
    for _ in range(rounds):
        if prepare is not None:
            prepare()
        began = time.perf_counter()
        answer = method()
        samples.append(time.perf_counter() - began)
    return Timing(name, tuple(samples), tuple(answer), (counter() - before) // max(rounds, 1))


class Methods:
    """The methods over one stage, with their clients and request counters."""

    def __init__(self, stage: Stage) -> None:
        self.stage = stage
        self.question = stage.question
        self.calgate = httpx.Client(base_url=stage.url, timeout=120)
        self.dav = httpx.Client(base_url=stage.radicale, timeout=300)
        self.count: dict[str, int] = {"endpoint": 0, "free_busy": 0, "radicale": 0,
                                      "google": 0}
        self.services = {m.user: _google_service(stage, m.google_refresh)
                         for m in stage.members}

    def close(self) -> None:
        self.calgate.close()
        self.dav.close()
        for service in self.services.values():
            service.close()

    def counter(self, name: str) -> Callable[[], int]:
        return lambda: self.count[name]

    def endpoint(self) -> list[sl.Slot]:
        self.count["endpoint"] += 1
        answer = self.calgate.post("/v1/availability", json=self.question.body(), headers={
            "Authorization": f"Bearer {self.stage.secret}"})
        if answer.status_code != 200:
            raise RuntimeError(f"POST /v1/availability: {answer.status_code} "
                               f"{answer.text[:500]}")
        return sl.from_endpoint(answer.json())

    def change(self) -> None:
        """What a sync or a write does to every member's account, and nothing else: its
        mirror generation moves, so the next answer cannot use any busy set kept before."""
        from sqlalchemy import update

        from gateway.persistence.tables import accounts

        subs = [m.sub for m in self.stage.members]
        with self.stage.deployment.gateway.engine.begin() as conn:
            conn.execute(update(accounts).where(accounts.c.id.in_(subs)).values(
                mirror_generation=accounts.c.mirror_generation + 1))

    def free_busy(self) -> list[sl.Slot]:
        start, end = self.question.span
        params = {"tzid": "Etc/UTC", "from": start.strftime("%Y-%m-%d"),
                  "to": (end + timedelta(days=1)).strftime("%Y-%m-%d")}
        busy = {m.sub: self._blocks(m.token, params) for m in self.stage.members}
        return sl.slots(self.question, busy)

    def _blocks(self, token: str, params: dict[str, str]) -> list[sl.Interval]:
        headers = {"Authorization": f"Bearer {token}"}
        url: str | None = "/v1/free_busy"
        blocks: list[dict[str, Any]] = []
        while url is not None:
            self.count["free_busy"] += 1
            answer = self.calgate.get(url, params=params if url == "/v1/free_busy" else None,
                                      headers=headers)
            answer.raise_for_status()
            body = answer.json()
            blocks += body["free_busy"]
            url = body.get("pages", {}).get("next_page")
        return sl.from_free_busy(blocks)

    def radicale(self) -> list[sl.Slot]:
        start, end = self.question.span
        query = FREE_BUSY_QUERY.format(start=start.strftime("%Y%m%dT%H%M%SZ"),
                                       end=end.strftime("%Y%m%dT%H%M%SZ"))
        busy = {m.sub: self._vfreebusy(m.user, query) for m in self.stage.members}
        return sl.slots(self.question, busy)

    def _vfreebusy(self, user: str, query: str) -> list[sl.Interval]:
        import events_fixtures as efx

        self.count["radicale"] += 1
        answer = self.dav.request("REPORT", f"/{user}/{efx.CALENDAR}/", content=query,
                                  auth=(user, efx.PASSWORD), headers={
                                      "Depth": "1", "Content-Type": "application/xml"})
        if answer.status_code != 200:
            raise RuntimeError(f"free-busy-query {user}: {answer.status_code} "
                               f"{answer.text[:500]}")
        return sl.from_vfreebusy(answer.text)

    def google(self) -> list[sl.Slot]:
        start, end = self.question.span
        busy = {}
        for m in self.stage.members:
            self.count["google"] += 1
            body = {"timeMin": wire(start), "timeMax": wire(end), "items": [{"id": m.email}]}
            answer = self.services[m.user].freebusy().query(body=body).execute()
            busy[m.sub] = sl.from_google(answer, m.email)
        return sl.slots(self.question, busy)


def _google_service(stage: Stage, refresh_token: str) -> Any:
    """A Calendar v3 service for one member, as an app builds it: google-auth credentials
    from the member's refresh token, the discovery document the library ships, the
    emulator's endpoint."""
    import google_auth_httplib2
    import httplib2
    from google.oauth2.credentials import Credentials
    from googleapiclient.discovery import build_from_document
    from googleapiclient.discovery_cache import get_static_doc

    endpoints = stage.google.endpoints
    credentials = Credentials(token=None, refresh_token=refresh_token,
                              token_uri=endpoints["token_uri"], client_id=GOOGLE_APP[0],
                              client_secret=GOOGLE_APP[1])
    http = google_auth_httplib2.AuthorizedHttp(credentials, http=httplib2.Http(timeout=120))
    return build_from_document(get_static_doc("calendar", "v3"), http=http,
                               client_options={"api_endpoint": endpoints["api_endpoint"]})


def compare(expected: tuple[sl.Slot, ...], got: tuple[sl.Slot, ...],
            names: dict[str, str]) -> dict[str, Any]:
    """How two answers differ: counts and the first few slots only one of them has."""
    only_expected = sorted(set(expected) - set(got))
    only_got = sorted(set(got) - set(expected))

    def shown(slot: sl.Slot) -> str:
        from datetime import UTC, datetime

        who = ",".join(sorted(names.get(s, s) for s in slot[2]))
        return f"{datetime.fromtimestamp(slot[0], UTC):%Y-%m-%d %H:%M} ({who})"

    return {"equal": not only_expected and not only_got and len(expected) == len(got),
            "expected": len(expected), "got": len(got),
            "missing": [shown(s) for s in only_expected[:5]],
            "extra": [shown(s) for s in only_got[:5]]}

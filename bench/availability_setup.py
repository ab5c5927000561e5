"""The stage of bench/run_availability_bench.py (and of its test at a tiny size): the members'
calendars in Radicale and in the Google emulator, and a Calgate deployment that has synced
the Radicale calendars into its mirror itself.

    with staged(workdir, Size(members=10, events=500), log) as stage:
        stage.question, stage.url, stage.secret, stage.tokens, ...

1. Each member's events (bench/availability_fixtures.py) are written as ``.ics`` files
   into Radicale's storage before it starts (bench/events_fixtures.py's ``BenchRadicale``;
   5,000 PUTs would take minutes), and one sync-collection REPORT per calendar makes
   Radicale parse them before anything is timed.
2. The same events go into the Google emulator (tests/emulators/google, in this process)
   through its owner API, one Google user per member, each with a refresh token granted
   to the app for ``calendar.readonly``.
3. Calgate: a fresh PostgreSQL database, ``calgate serve`` (one API worker, the default)
   and ``calgate worker`` (bench/latency_deploy.py). The app is registered and each
   member's Radicale account linked as the consent step does (park + link); the worker's
   initial syncs fill the mirror, and then the worker is stopped (by its PID), so the API
   process has the machine to itself while it is timed. Each member gets an access token
   (the app's credentials for ``/v1/free_busy``); ``POST /v1/availability`` uses the
   client secret as bearer, members named by ``sub``.

Everything started here is stopped on exit, by PID; the database is dropped.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import availability_fixtures as af
import events_fixtures as efx
from latency_deploy import Deployment

from tests.emulators.google import GoogleEmulator
from tests.support.processes import stop_process

GOOGLE_APP = ("availability-bench", "availability-bench-secret")
GOOGLE_SCOPE = "https://www.googleapis.com/auth/calendar.readonly"


@dataclass(frozen=True, slots=True)
class Size:
    members: int = 10
    events: int = 500  # per member
    days: int = af.DAYS  # of the question, from a Monday


@dataclass(frozen=True, slots=True)
class Member:
    """One member, in every store: Radicale user, Google email, Calgate sub and token."""

    user: str
    email: str
    sub: str
    token: str
    profile_id: str
    google_refresh: str
    mirrored: int  # live rows of the member's calendar in Calgate's mirror


@dataclass(frozen=True, slots=True)
class Stage:
    """What the methods need: the question (in subs), where to ask, with what."""

    question: af.Question
    members: tuple[Member, ...]
    url: str  # Calgate
    secret: str  # the app's client secret
    radicale: str  # Radicale's base URL
    google: Any  # the GoogleEmulator
    calendars: dict[str, list[af.Event]]  # user -> events
    deployment: Deployment
    sync_seconds: float

    def sub_of(self) -> dict[str, str]:
        return {m.sub: m.user for m in self.members}


@contextmanager
def staged(workdir: Path, size: Size, log: Callable[[str], None]) -> Iterator[Stage]:
    day0 = af.first_day()
    names = af.users(size.members)
    calendars = {u: af.calendar(u, size.events, day0, size.days) for u in names}
    with ExitStack() as stack:
        radicale = efx.BenchRadicale({f"{u}/{efx.CALENDAR}": af.radicale_items(calendars[u])
                                      for u in names}).start()
        stack.callback(radicale.stop)
        for u in names:
            efx.warm(radicale.base, f"{u}/{efx.CALENDAR}")
        log(f"radicale: {size.members} calendars of {size.events} events written and parsed")
        google = stack.enter_context(GoogleEmulator.running())
        refresh = _fill_google(google, calendars)
        log("google emulator: the same calendars")
        deployment = stack.enter_context(Deployment(workdir, {"CALGATE_SYNC_INTERVAL": "3600"}))
        app = deployment.register_client()
        linked = [deployment.link(app.client_id, "caldav", u, f"{radicale.url}|{u}", {
            "server_url": radicale.url, "username": u, "password": efx.PASSWORD})
            for u in names]
        took = _synced(deployment, log)
        members = tuple(Member(u, _email(u), link.subject,
                               deployment.token(app.client_id, link.subject),
                               link.profile_id, refresh[u],
                               efx.mirror_counts(deployment.gateway, link.profile_id)["events"])
                        for u, link in zip(names, linked, strict=True))
        question = af.question(names, day0, size.days).renamed({m.user: m.sub for m in members})
        yield Stage(question, members, deployment.url, app.secret, radicale.base, google,
                    calendars, deployment, took)


def _email(user: str) -> str:
    return f"{user}@bench.example"


def _fill_google(emu: Any, calendars: dict[str, list[af.Event]]) -> dict[str, str]:
    emu.register_app(*GOOGLE_APP, "Availability bench")
    refresh = {}
    for user, events in calendars.items():
        email = emu.add_user(_email(user))
        for event in events:
            body = af.google_body(event)
            if body is not None:
                emu.add_event(email, email, body)
        refresh[user] = emu.issue_refresh_token(email, GOOGLE_APP[0], [GOOGLE_SCOPE])
    return refresh


def _synced(d: Deployment, log: Callable[[str], None]) -> float:
    """Start the API and the worker, wait for every initial sync, stop the worker."""
    d.start_processes()
    began = time.monotonic()
    while d.initial_syncs_pending():
        if time.monotonic() - began > 600 or not d.alive():
            raise RuntimeError(f"initial syncs did not finish: {d.log('worker')}")
        time.sleep(0.2)
    took = time.monotonic() - began
    log(f"calgate: initial syncs done in {took:.1f} s; stopping the worker")
    stop_process(d.worker)
    return took

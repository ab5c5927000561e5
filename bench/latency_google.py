"""The Google half of bench/run_latency_bench.py: a Google account on the Google emulator
(tests/emulators/google, in the runner's process) with a watch channel, polling set to an
hour, and the time from a change "in Google" to the app's webhook.

The emulator gets one user whose primary calendar holds ``events`` events; the account is
linked into Calgate (park + link, as the consent step does) with a refresh token the
emulator issued for the least-privilege scopes. ``CALGATE_PROVIDER_PUSH=on``: after the
first sync the worker opens an events.watch channel whose address is Calgate's
``/webhooks/google``. Then ``changes`` changes are made one after the other through the
emulator's own API (``update_event``/``add_event``, as the owner in Google Calendar): each
waits for its notification, then for a random 0.2-1 s. The emulator's push log must grow by
exactly one ``exists`` message per change, answered 200: the push is what made it.
"""

from __future__ import annotations

import contextlib
import random
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from latency_deploy import SCOPES, App, Deployment
from latency_inbox import Inbox

KINDS = ("rename", "move", "add")
EMAIL = "latency@example.com"


@dataclass(frozen=True, slots=True)
class GoogleOptions:
    changes: int = 50
    events: int = 300
    pause: tuple[float, float] = (0.2, 1.0)
    seed: int = 11


class RequestTimes:
    """When the emulator received each Calendar API request: the handler the emulator's
    HTTP server calls is wrapped (in this process) to note the time first."""

    def __init__(self, emu: Any) -> None:
        self._lock = threading.Lock()
        self.seen: list[tuple[float, str]] = []
        handler = emu._server.httpd.RequestHandlerClass  # the emulator's own server
        inner = handler.app

        def timed(request: Any) -> Any:
            if request.path.startswith("/calendar/v3/"):
                with self._lock:
                    self.seen.append((time.time(), f"{request.method} {request.path}"))
            return inner(request)

        handler.app = staticmethod(timed)

    def first_after(self, moment: float) -> float | None:
        with self._lock:
            return next((at for at, _ in self.seen if at > moment), None)


def wire(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def when(moment: datetime) -> dict[str, str]:
    return {"dateTime": moment.astimezone(UTC).isoformat()}


def _seed(emu: Any, count: int, day0: datetime) -> dict[str, tuple[str, datetime]]:
    events = {}
    for i in range(count):
        start = day0 + timedelta(days=1 + i % 60, hours=7 + i % 10)
        events[f"bench{i:05d}"] = (f"Meeting {i}", start)
        emu.add_event(EMAIL, EMAIL, {"id": f"bench{i:05d}", "summary": f"Meeting {i}",
                                     "start": when(start),
                                     "end": when(start + timedelta(minutes=45))})
    return events


def _change(emu: Any, events: dict[str, tuple[str, datetime]], k: int,
            rnd: random.Random) -> dict[str, Any]:
    """One change through the emulator's API; ``t0`` is taken just before the call."""
    kind = KINDS[k % len(KINDS)]
    if kind == "add":
        uid, summary = f"late{k:05d}", f"Added in Google #{k}"
        start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(
            days=rnd.randrange(2, 50), hours=rnd.randrange(10))
        body = {"id": uid, "summary": summary, "start": when(start),
                "end": when(start + timedelta(minutes=45))}
        t0 = time.time()
        emu.add_event(EMAIL, EMAIL, body)
    else:
        uid = rnd.choice(sorted(events))
        summary, start = events[uid]
        if kind == "rename":
            summary = f"Renamed in Google #{k}"
            changes: dict[str, Any] = {"summary": summary}
        else:
            start += timedelta(minutes=15 * rnd.randrange(1, 20))
            changes = {"start": when(start), "end": when(start + timedelta(minutes=45))}
        t0 = time.time()
        emu.update_event(EMAIL, EMAIL, uid, changes)
    events[uid] = (summary, start)
    return {"kind": kind, "uid": uid, "summary": summary, "start": wire(start), "t0": t0}


def _pushes(emu: Any) -> list[Any]:
    return [x for x in emu.deliveries() if x.state == "exists"]


def _measure(d: Deployment, emu: Any, inbox: Inbox, sdk: Any, channel_id: str,
             profile_id: str, opts: GoogleOptions, times: RequestTimes,
             events: dict[str, tuple[str, datetime]]) -> tuple[list[dict[str, Any]], list[str]]:
    rnd = random.Random(opts.seed)
    records: list[dict[str, Any]] = []
    for k in range(opts.changes):
        pause = rnd.uniform(*opts.pause)
        time.sleep(pause)
        pushed = len(_pushes(emu))
        change = _change(emu, events, k, rnd)
        got = inbox.take(channel_id, "change", change["t0"], 60)
        if got is None:
            return records, [f"change {k}: no notification in 60 s"]
        with contextlib.suppress(TimeoutError):  # none came: recorded as 0 pushes below
            emu.push.wait(lambda done, n=pushed: sum(x.state == "exists" for x in done) > n,
                          5)
        news = _pushes(emu)[pushed:]
        note = got.notification
        schedule = d.schedule(profile_id)
        push_at = schedule["requested_at"]
        seen = sdk.read_events(last_modified=note["changes_since"], tzid="Etc/UTC")
        records.append({
            **change, "provider": "google", "n": k, "pause_before": pause, "t1": got.at,
            "latency": got.at - change["t0"], "notification_id": note["notification_id"],
            "changes_since": note["changes_since"], "push_at": push_at,
            "sync_request_at": times.first_after(push_at or change["t0"]),
            "pushes": len(news), "push_statuses": [x.status for x in news],
            **d.notification(note["notification_id"]),
            "verified": any(e.get("summary") == change["summary"]
                            and e.get("start") == change["start"] for e in seen)})
    return records, []


def _setup(d: Deployment, emu: Any, inbox: Inbox, app: App) -> tuple[Any, str, str]:
    """Link, start the processes, wait for the first sync and the watch channel, open the
    app's notification channel. Returns (sdk, channel id, profile id)."""
    from providers.google.oauth import upstream_scopes
    from tests.emulators.google.shared import CLIENT_ID, CLIENT_SECRET

    refresh = emu.issue_refresh_token(EMAIL, CLIENT_ID, upstream_scopes(SCOPES))
    linked = d.link(app.client_id, "google", EMAIL, EMAIL, {
        "refresh_token": refresh, "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET})
    d.start_processes()
    deadline = time.monotonic() + 120
    while d.initial_syncs_pending() or not emu.channels:
        if time.monotonic() > deadline or not d.alive():
            raise RuntimeError(f"no first sync or watch channel: {d.log('worker')}")
        time.sleep(0.2)
    sdk = d.sdk(app, d.token(app.client_id, linked.subject))
    channel = sdk.create_notification_channel(f"{inbox.url}?account=google")
    if inbox.take(channel["channel_id"], "verification", 0, 30) is None:
        raise RuntimeError(f"no verification: {d.log('worker')}")
    return sdk, channel["channel_id"], linked.profile_id


def run(opts: GoogleOptions, workdir: Path, log: Any) -> dict[str, Any]:
    """The whole Google half: emulator, deployment, changes. Returns the records."""
    from tests.emulators.google import GoogleEmulator
    from tests.emulators.google.shared import CLIENT_ID, CLIENT_SECRET

    day0 = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    with GoogleEmulator.running() as emu:
        emu.register_app(CLIENT_ID, CLIENT_SECRET, "Calgate Latency Bench", [])
        emu.add_user(EMAIL)
        events = _seed(emu, opts.events, day0)
        times = RequestTimes(emu)
        env = {"CALGATE_SYNC_INTERVAL": "3600", "CALGATE_PROVIDER_PUSH": "on",
               "CALGATE_GOOGLE_URL": emu.base_url}
        with Deployment(workdir / "google", env) as d:
            app = d.register_client()
            inbox = Inbox(app.client_id, app.secret)
            try:
                sdk, channel_id, profile_id = _setup(d, emu, inbox, app)
                log(f"google: watch channel open; {opts.changes} changes")
                began, polls = time.monotonic(), emu.count("events.list")
                records, errors = _measure(d, emu, inbox, sdk, channel_id, profile_id, opts,
                                           times, events)
                seconds = time.monotonic() - began
                time.sleep(2)  # anything late or doubled would arrive by now
                extra = inbox.untaken("change")
                valid, received = inbox.signatures_valid()
                alive = d.alive()
                database = d.server_version()
                polls = emu.count("events.list") - polls
            finally:
                inbox.stop()
    return {"records": records, "errors": errors, "untaken": extra,
            "signatures": [valid, received], "seconds": seconds, "processes_alive": alive,
            "postgres": database, "events_list_calls": polls,
            "options": {"changes": opts.changes, "events": opts.events,
                        "pause": list(opts.pause)}}

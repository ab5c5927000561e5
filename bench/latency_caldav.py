"""The CalDAV half of bench/run_latency_bench.py: Radicale accounts polled every ``poll``
seconds, owner edits straight to Radicale, and the time until the app's webhook arrives.

Each of ``accounts`` Radicale users has one calendar seeded with ``events`` events (written
into Radicale's storage before it starts, bench/events_fixtures.py's ``BenchRadicale``),
linked into Calgate with a notification channel of its own (``?account=<user>`` on the
receiver's URL). Per account, a thread makes ``changes`` changes one after the other: it
sleeps a random time uniform in [0, poll) from just after one of the account's polls (so a
change lands at a uniformly random phase of the poll cycle; see :func:`pauses`), then the
owner PUTs one event (a rename, a move or a new event, in turn), and the thread waits for
that channel's first ``change`` notification that arrived after the PUT was sent before it
goes on, so each notification belongs to one change.
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import events_fixtures as fx
from latency_deploy import App, Deployment
from latency_inbox import Inbox

KINDS = ("rename", "move", "add")


@dataclass(frozen=True, slots=True)
class CaldavOptions:
    poll: float = 30.0
    accounts: int = 10
    changes: int = 5  # per account
    events: int = 300  # seeded per calendar
    seed: int = 5
    independent: bool = False  # pauses drawn independently, not stratified


@dataclass
class Account:
    user: str
    profile_id: str
    channel_id: str
    sdk: Any
    rnd: random.Random
    pauses: list[float]  # before each change, as a fraction of the poll period
    events: dict[str, tuple[str, datetime]] = field(default_factory=dict)  # uid -> now


def wire(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def ics(uid: str, summary: str, start: datetime) -> str:
    stamp = "%Y%m%dT%H%M%SZ"
    return ("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Calgate bench//Latency//EN\r\n"
            f"BEGIN:VEVENT\r\nUID:{uid}\r\nDTSTAMP:{datetime.now(UTC).strftime(stamp)}\r\n"
            f"DTSTART:{start.strftime(stamp)}\r\n"
            f"DTEND:{(start + timedelta(minutes=45)).strftime(stamp)}\r\n"
            f"SUMMARY:{summary}\r\nLOCATION:Room 4\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n")


def seeded(user: str, count: int, day0: datetime) -> dict[str, tuple[str, datetime]]:
    """``count`` events over the next 60 days (inside the sync window)."""
    return {f"{user}-{i:04d}": (f"Meeting {i} of {user}",
                                day0 + timedelta(days=1 + i % 60, hours=7 + i % 10))
            for i in range(count)}


def pauses(opts: CaldavOptions) -> list[list[float]]:
    """Each account's pauses before its changes, as fractions of the poll period.

    Each pause is uniform on [0, 1) and starts just after one of the account's polls, so
    the change lands at a uniform phase of the poll cycle. By default the pauses are
    stratified: one draw from each 1/n of the period over all n changes, shuffled, so the
    phases cover the period evenly and the median of n waits for the poll has next to no
    sampling error (independent draws give the median of 50 waits over 30 s a standard
    error of about 2 s, twice the 1 s the target leaves for Calgate)."""
    rnd = random.Random(opts.seed)
    n = opts.accounts * opts.changes
    drawn = [rnd.random() if opts.independent else (i + rnd.random()) / n for i in range(n)]
    rnd.shuffle(drawn)
    return [drawn[a * opts.changes:(a + 1) * opts.changes] for a in range(opts.accounts)]


def _change(account: Account, k: int, base: str) -> dict[str, Any]:
    """One owner PUT; returns what changed and ``t0``, the moment the PUT was sent."""
    kind = KINDS[(int(account.user[-2:]) + k) % len(KINDS)]
    if kind == "add":
        uid = f"{account.user}-late-{k}"
        summary = f"Added by {account.user} #{k}"
        start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(
            days=account.rnd.randrange(2, 50), hours=account.rnd.randrange(10))
    else:
        uid = account.rnd.choice(sorted(account.events))
        summary, start = account.events[uid]
        if kind == "rename":
            summary = f"Renamed by {account.user} #{k}"
        else:
            start += timedelta(minutes=15 * account.rnd.randrange(1, 20))
    account.events[uid] = (summary, start)
    t0 = time.time()
    status, body = fx.dav(base, account.user, "PUT", f"/{account.user}/{fx.CALENDAR}/{uid}.ics",
                          ics(uid, summary, start),
                          {"Content-Type": "text/calendar; charset=utf-8"})
    put_s = time.time() - t0
    if status not in (201, 204):
        raise RuntimeError(f"PUT {uid}: HTTP {status}: {body[:300]!r}")
    return {"kind": kind, "uid": uid, "summary": summary, "start": wire(start), "t0": t0,
            "put_s": put_s}


def _verified(account: Account, note: dict[str, Any], change: dict[str, Any]) -> bool:
    """The read the app would make next shows this change."""
    seen = account.sdk.read_events(last_modified=note["changes_since"], tzid="Etc/UTC")
    return any(e.get("summary") == change["summary"] and e.get("start") == change["start"]
               for e in seen)


def measure_account(d: Deployment, inbox: Inbox, account: Account, opts: CaldavOptions,
                    base: str, out: list[dict[str, Any]], errors: list[str]) -> None:
    """The account's changes, one at a time: random pause, PUT, wait for its webhook."""
    try:
        _measure(d, inbox, account, opts, base, out, errors)
    except Exception as exc:  # reported, and the other accounts carry on
        errors.append(f"{account.user}: {type(exc).__name__}: {exc}")


def _after_a_poll(d: Deployment, profile_id: str, poll: float) -> None:
    """Return once the profile's next poll has run (its next_sync_at moved on)."""
    due = d.schedule(profile_id)["next_sync_at"]
    if due is not None:  # sleep through most of the wait: ten threads polling cost CPU
        time.sleep(max(0.0, due - time.time()))
    deadline = time.monotonic() + 2 * poll + 30
    while d.schedule(profile_id)["next_sync_at"] == due:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{profile_id} was not polled in {2 * poll + 30:g} s")
        time.sleep(0.05)


def _measure(d: Deployment, inbox: Inbox, account: Account, opts: CaldavOptions,
             base: str, out: list[dict[str, Any]], errors: list[str]) -> None:
    # Every pause starts just after one of the account's polls: the previous change's
    # notification or, for the first, the first poll. With the pauses stratified, the
    # changes' phases in the poll cycle then cover it evenly.
    _after_a_poll(d, account.profile_id, opts.poll)
    for k in range(opts.changes):
        time.sleep(account.pauses[k] * opts.poll)
        before = d.schedule(account.profile_id)
        change = _change(account, k, base)
        got = inbox.take(account.channel_id, "change", change["t0"], 3 * opts.poll + 30)
        if got is None:
            errors.append(f"{account.user} change {k}: no notification in "
                          f"{3 * opts.poll + 30:.0f} s")
            return  # a late one would be taken for the next change: stop this account
        after = d.schedule(account.profile_id)
        note = got.notification
        times = d.notification(note["notification_id"])
        out.append({**change, "provider": "caldav", "account": account.user, "n": k,
                    "t1": got.at, "latency": got.at - change["t0"],
                    "notification_id": note["notification_id"],
                    "changes_since": note["changes_since"],
                    "poll_due": before["next_sync_at"],
                    "syncing_at_t0": (before["lease_until"] or 0) > change["t0"],
                    "next_poll_after": after["next_sync_at"], "pause": account.pauses[k],
                    **times,
                    "verified": _verified(account, note, change)})


def _setup(d: Deployment, radicale: Any, inbox: Inbox, app: App, opts: CaldavOptions,
           users: list[str], day0: datetime, log: Any) -> list[Account]:
    linked = [d.link(app.client_id, "caldav", user, f"{radicale.url}|{user}",
                     {"server_url": radicale.url, "username": user, "password": fx.PASSWORD})
              for user in users]
    d.start_processes()
    began = time.monotonic()
    while d.initial_syncs_pending():
        if time.monotonic() - began > 180 or not d.alive():
            raise RuntimeError(f"initial syncs did not finish: {d.log('worker')}")
        time.sleep(0.2)
    log(f"caldav: {len(users)} initial syncs done in {time.monotonic() - began:.1f} s")
    accounts = []
    drawn = pauses(opts)
    for n, (user, link) in enumerate(zip(users, linked, strict=True)):
        sdk = d.sdk(app, d.token(app.client_id, link.subject))
        channel = sdk.create_notification_channel(f"{inbox.url}?account={user}")
        accounts.append(Account(user, link.profile_id, channel["channel_id"], sdk,
                                random.Random(opts.seed * 1000 + n), drawn[n],
                                seeded(user, opts.events, day0)))
    for account in accounts:
        if inbox.take(account.channel_id, "verification", 0, 30) is None:
            raise RuntimeError(f"no verification for {account.user}: {d.log('worker')}")
    d.stagger([a.profile_id for a in accounts], opts.poll)
    return accounts


def run(opts: CaldavOptions, workdir: Path, log: Any) -> dict[str, Any]:
    """The whole CalDAV half: Radicale, the deployment, the changes. Returns the records."""
    day0 = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    users = [f"user{n:02d}" for n in range(opts.accounts)]
    items = {f"{u}/{fx.CALENDAR}": [(f"{uid}.ics", ics(uid, *what)) for uid, what in
                                     seeded(u, opts.events, day0).items()] for u in users}
    radicale = fx.BenchRadicale(items).start()
    try:
        for path in items:
            fx.warm(radicale.base, path)
        env = {"CALGATE_SYNC_INTERVAL": f"{opts.poll:g}"}
        with Deployment(workdir / "caldav", env) as d:
            app = d.register_client()
            inbox = Inbox(app.client_id, app.secret)
            try:
                accounts = _setup(d, radicale, inbox, app, opts, users, day0, log)
                log(f"caldav: {opts.accounts} x {opts.changes} changes, poll {opts.poll:g} s")
                records: list[dict[str, Any]] = []
                errors: list[str] = []
                began = time.monotonic()
                threads = [threading.Thread(target=measure_account, args=(
                    d, inbox, a, opts, radicale.base, records, errors)) for a in accounts]
                for thread in threads:
                    thread.start()
                for thread in threads:
                    thread.join()
                seconds = time.monotonic() - began
                time.sleep(2)  # anything late or doubled would arrive by now
                extra = inbox.untaken("change")
                valid, received = inbox.signatures_valid()
                alive = d.alive()
                database = d.server_version()
            finally:
                inbox.stop()
    finally:
        radicale.stop()
    return {"records": sorted(records, key=lambda r: r["t0"]), "errors": errors,
            "untaken": extra, "signatures": [valid, received], "seconds": seconds,
            "processes_alive": alive, "postgres": database,
            "options": {"poll": opts.poll, "accounts": opts.accounts,
                        "changes": opts.changes, "events": opts.events,
                        "independent": opts.independent}}

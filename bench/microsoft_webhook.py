"""The webhook half of bench/run_microsoft_bench.py: change → webhook through a Graph
subscription, with polling set to an hour.

A second mailbox on the same emulator gets ``events`` events and is linked (the real msal
sign-in, then park + link) into a production-like deployment (bench/latency_deploy.py: a
fresh PostgreSQL database, one ``calgate serve`` and one ``calgate worker`` process,
``CALGATE_PROVIDER_PUSH=on``). After the first sync the worker subscribes to the calendar's
events; the emulator validates the subscription at ``/webhooks/office365`` and POSTs a
change notification there for every change. The client app's receiver (bench/latency_inbox.py,
checking both signatures) gets Calgate's ``change`` notification. ``changes`` renames are
made one after the other through the emulator's API (as the owner in Outlook), each after a
random 0.2-1 s pause; the latency is from just before the rename to the receiver's arrival
time, and the app's read with the notification's ``changes_since`` must show the rename.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import microsoft_fixtures as fx
import sync_bench
from latency_deploy import App, Deployment
from latency_inbox import Inbox

EMAIL = "push@contoso.example"


@dataclass(frozen=True, slots=True)
class WebhookOptions:
    changes: int = 30
    events: int = 300
    pause: tuple[float, float] = (0.2, 1.0)
    seed: int = 12


def _setup(d: Deployment, emu: Any, inbox: Inbox, app: App) -> tuple[Any, str]:
    """Link, start the processes, wait for the first sync and the subscription, open the
    app's notification channel. Returns (sdk, channel id)."""
    credentials = fx.sign_in(emu, EMAIL)
    linked = d.link(app.client_id, "office365", EMAIL, credentials["account_id"],
                    credentials)
    d.start_processes()
    deadline = time.monotonic() + 120
    while d.initial_syncs_pending() or not emu.subscriptions():
        if time.monotonic() > deadline or not d.alive():
            raise RuntimeError(f"no first sync or subscription: {d.log('worker')}")
        time.sleep(0.2)
    sdk = d.sdk(app, d.token(app.client_id, linked.subject))
    channel = sdk.create_notification_channel(inbox.url)
    if inbox.take(channel["channel_id"], "verification", 0, 30) is None:
        raise RuntimeError(f"no verification: {d.log('worker')}")
    return sdk, channel["channel_id"]


def _measure(emu: Any, inbox: Inbox, sdk: Any, channel_id: str, ids: list[str],
             opts: WebhookOptions) -> tuple[list[dict[str, Any]], list[str]]:
    rnd = random.Random(opts.seed)
    records: list[dict[str, Any]] = []
    for k in range(opts.changes):
        pause = rnd.uniform(*opts.pause)
        time.sleep(pause)  # the changes come at random moments, not in lockstep
        pushed = len(emu.deliveries())
        summary = f"Renamed in Outlook #{k}"
        t0 = time.time()
        emu.update_event(EMAIL, rnd.choice(ids), {"subject": summary})
        got = inbox.take(channel_id, "change", t0, 60)
        if got is None:
            return records, [f"change {k}: no notification in 60 s"]
        note = got.notification
        seen = sdk.read_events(last_modified=note["changes_since"], tzid="Etc/UTC")
        records.append({"n": k, "t0": t0, "t1": got.at, "latency": got.at - t0,
                        "pause_before": pause, "pushes": len(emu.deliveries()) - pushed,
                        "verified": any(e.get("summary") == summary for e in seen)})
    return records, []


def run(emu: Any, opts: WebhookOptions, workdir: Path, env: dict[str, str],
        log: Any) -> dict[str, Any]:
    """Seed, deploy, change, measure; every process started here is stopped here."""
    emu.add_user(EMAIL, "Push User")
    ids = fx.fill(emu, EMAIL, opts.events, sync_bench.today())[:opts.events]
    deploy_env = {"CALGATE_SYNC_INTERVAL": "3600", "CALGATE_PROVIDER_PUSH": "on",
                  **{k: v for k, v in env.items() if k.startswith("CALGATE_OFFICE365_")}}
    with Deployment(workdir, deploy_env) as d:
        app = d.register_client()
        inbox = Inbox(app.client_id, app.secret)
        try:
            sdk, channel_id = _setup(d, emu, inbox, app)
            log(f"webhook: subscription open; {opts.changes} changes")
            deltas = emu.count("delta")
            records, errors = _measure(emu, inbox, sdk, channel_id, ids, opts)
            time.sleep(2)  # anything late or doubled would arrive by now
            extra = inbox.untaken("change")
            valid, received = inbox.signatures_valid()
            alive = d.alive()
            database = d.server_version()
            deltas = emu.count("delta") - deltas
            subscriptions = len(emu.subscriptions())
        finally:
            inbox.stop()
    return {"records": records, "errors": errors, "untaken": extra,
            "signatures": [valid, received], "processes_alive": alive, "postgres": database,
            "delta_calls": deltas, "subscriptions": subscriptions,
            "options": {"changes": opts.changes, "events": opts.events,
                        "pause": list(opts.pause)}}

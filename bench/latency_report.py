"""The Markdown of bench/run_latency_bench.py's report (RESULTS-latency.md): results against
the targets, the split of each latency into its parts, every change, and the method."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from latency_stats import Record, caldav_parts, google_parts, median_ci, summary


def s(value: float) -> str:
    return f"{value:.3f} s"


def verdict(ok: bool) -> str:
    return "**pass**" if ok else "**miss**"


def targets(caldav: dict[str, Any] | None, google: dict[str, Any] | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if caldav:
        out["caldav_p50"] = caldav["options"]["poll"] / 2 + 1
    if google:
        out["google_p50"] = 2.0
    return out


def ci_row(part: dict[str, Any]) -> list[str]:
    """The median's 95% interval; it assumes independent samples, so only for those."""
    if not part["options"]["independent"]:
        return []
    low, high = median_ci([r["latency"] for r in part["records"]])
    return [f"|   95% confidence interval of the p50 (order statistics) | {s(low)} to "
            f"{s(high)} | | |"]


def results_rows(caldav: dict[str, Any] | None, google: dict[str, Any] | None) -> list[str]:
    goal = targets(caldav, google)
    rows = ["| metric | measured | target | verdict |", "|---|---:|---:|---|"]
    if caldav and caldav["records"]:
        recs, poll = caldav["records"], caldav["options"]["poll"]
        lat = summary([r["latency"] for r in recs])
        after = summary([r["t1"] - max(r["poll_due"], r["t0"]) for r in recs])
        rows += [
            f"| CalDAV, polled every {poll:g} s: change → webhook, p50 ({len(recs)} changes) "
            f"| {s(lat['p50'])} | ≤ {s(goal['caldav_p50'])} | "
            f"{verdict(lat['p50'] <= goal['caldav_p50'])} |",
            f"|   p95 | {s(lat['p95'])} | | |",
            f"|   min; max | {s(lat['min'])}; {s(lat['max'])} | | |",
            *ci_row(caldav),
            f"|   Calgate's part, from the poll's due time to the webhook: p50; p95 | "
            f"{s(after['p50'])}; {s(after['p95'])} | ≤ 1 s (implied) | "
            f"{verdict(after['p50'] <= 1.0)} |",
            f"|   changes the app's next read showed | {sum(r['verified'] for r in recs)} of "
            f"{len(recs)} | all | {verdict(all(r['verified'] for r in recs))} |"]
    if google and google["records"]:
        recs = google["records"]
        lat = summary([r["latency"] for r in recs])
        pushed = sum(1 for r in recs if r["pushes"] == 1 and r["push_statuses"] == [200])
        rows += [
            f"| Google, through its push (polling hourly): change → webhook, p50 "
            f"({len(recs)} changes) | {s(lat['p50'])} | ≤ {s(goal['google_p50'])} | "
            f"{verdict(lat['p50'] <= goal['google_p50'])} |",
            f"|   p95 | {s(lat['p95'])} | | |",
            f"|   min; max | {s(lat['min'])}; {s(lat['max'])} | | |",
            f"|   changes with exactly one push from the emulator (answered 200) | {pushed} of "
            f"{len(recs)} | all | {verdict(pushed == len(recs))} |",
            f"|   changes the app's next read showed | {sum(r['verified'] for r in recs)} of "
            f"{len(recs)} | all | {verdict(all(r['verified'] for r in recs))} |"]
    return rows


def parts_table(records: list[Record], split: Callable[[Record], dict[str, float]]
                ) -> list[str]:
    parts = [split(r) for r in records]
    rows = ["| part | p50 | p95 | mean | max |", "|---|---:|---:|---:|---:|"]
    for name in parts[0]:
        x = summary([p[name] for p in parts])
        rows.append(f"| {name} | {s(x['p50'])} | {s(x['p95'])} | {s(x['mean'])} | "
                    f"{s(x['max'])} |")
    total = summary([r["latency"] for r in records])
    rows.append(f"| **total** | {s(total['p50'])} | {s(total['p95'])} | {s(total['mean'])} "
                f"| {s(total['max'])} |")
    return rows


def per_change(records: list[Record], split: Callable[[Record], dict[str, float]],
               label: str, cell: Callable[[Record], str]) -> list[str]:
    names = list(split(records[0]))
    rows = [f"| # | {label} | kind | latency | " + " | ".join(names) + " | read shows it |",
            "|---:|---|---|---:|" + "---:|" * len(names) + "---|"]
    for n, r in enumerate(records, 1):
        cells = " | ".join(f"{v:.3f}" for v in split(r).values())
        rows.append(f"| {n} | {cell(r)} | {r['kind']} | {r['latency']:.3f} | {cells} | "
                    f"{'yes' if r['verified'] else '**no**'} |")
    return rows


def problems(part: dict[str, Any]) -> list[str]:
    out = [f"- error: {e}" for e in part["errors"]]
    if part["untaken"]:
        out.append(f"- change notifications no change claimed (extra or doubled): "
                   f"{part['untaken']}")
    valid, received = part["signatures"]
    if valid != received:
        out.append(f"- {received - valid} of {received} notifications failed a signature "
                   "check")
    if not part["processes_alive"]:
        out.append("- the API or worker process had exited by the end of the run")
    return out


def caldav_notes(part: dict[str, Any]) -> list[str]:
    recs, poll = part["records"], part["options"]["poll"]
    waits = [caldav_parts(r)["wait for the poll"] for r in recs]
    after = summary([r["t1"] - max(r["poll_due"], r["t0"]) for r in recs])
    during = sum(1 for r in recs if r["syncing_at_t0"])
    wait = summary(waits)
    n = len(recs)
    return [
        f"- **The poll interval dominates.** A change waits for its account's next poll: "
        f"{s(wait['mean'])} on average (p50 {s(wait['p50'])}, max {s(wait['max'])}), as a "
        f"wait uniform over the {poll:g} s period should ({s(poll / 2)} on average). "
        f"Calgate's own part, from the poll's due time to the webhook's arrival (the "
        f"worker's pick-up, the incremental sync of one changed event, queueing and the "
        f"POST), is p50 {s(after['p50'])}, p95 {s(after['p95'])}, max {s(after['max'])}.",
        sampling_note(part),
        f"- {during} of {n} changes were sent while that account's sync was running."]


def sampling_note(part: dict[str, Any]) -> str:
    poll, n = part["options"]["poll"], len(part["records"])
    error = (f"the median of {n} waits drawn independently and uniformly over {poll:g} s has a "
             f"standard error of about {poll:g} / (2·√{n}) = {s(poll / (2 * n ** 0.5))}, "
             f"while the target leaves 1 s above {s(poll / 2)} for Calgate")
    if part["options"]["independent"]:
        return (f"- **The p50 of {n} changes is noisy by construction** (independent "
                f"pauses, `--independent-pauses`): {error}, so a run can pass or miss the "
                "p50 target by chance alone; the confidence interval and Calgate's part "
                "are the stable figures.")
    return ("- **The pauses are stratified**: each is uniform over the period, but the "
            f"{n} of them are one draw from each 1/{n} of it, shuffled over the changes, so "
            f"the phases cover the period evenly. With independent draws {error}: the "
            "verdict would depend on the draw (`--independent-pauses` runs that way).")


def google_notes(part: dict[str, Any]) -> list[str]:
    recs = part["records"]
    parts = [google_parts(r) for r in recs]
    sweep = summary([p["push → worker's events.list"] for p in parts])
    rest = summary([r["latency"] - p["push → worker's events.list"]
                    for p, r in zip(parts, recs, strict=True)])
    return [
        f"- **From the push to the worker's sync**: from the push reaching the API process "
        f"to the worker's `events.list`, p50 {s(sweep['p50'])}, max {s(sweep['max'])}; "
        f"everything else (the emulator's push, the API marking the profile due, the sync, "
        f"queueing and the POST) is p50 {s(rest['p50'])}, max {s(rest['max'])}.",
        "- How the worker hears of it at once: `POST /webhooks/google` makes the profile "
        "due, then publishes a wake-up (`NOTIFY calgate_wake` on PostgreSQL) that every "
        "`calgate worker` process listens for (`gateway/persistence/wakeups.py`), so the "
        "sync starts without waiting for the next sweep (`CALGATE_WORKER_TICK`, 2 s). "
        "Before that wake-up existed, this part was the wait for the next sweep: p50 "
        "1.47 s, total p50 1.52 s (an earlier run of this benchmark, same machine).",
        f"- `events.list` calls during the changes: {part['events_list_calls']} for "
        f"{len(recs)} changes (polling is hourly, so each came from a push)."]


def machine_rows(info: dict[str, str]) -> list[str]:
    return ["| | |", "|---|---|"] + [f"| {k} | {v} |" for k, v in info.items()]


def setup_line(result: dict[str, Any]) -> str:
    bits = []
    if result["caldav"]:
        o = result["caldav"]["options"]
        bits.append(f"CalDAV: {o['accounts']} Radicale accounts (one calendar of "
                    f"{o['events']} events each, one channel each), polled every "
                    f"{o['poll']:g} s (`CALGATE_SYNC_INTERVAL`), {o['changes']} owner PUTs per "
                    "account at random moments ("
                    + ("independent" if o["independent"] else "stratified") + " pauses)")
    if result["google"]:
        o = result["google"]["options"]
        bits.append(f"Google: the emulator with {o['events']} events, a watch channel to "
                    f"`/webhooks/google`, polling hourly, {o['changes']} changes in sequence")
    return ("One `calgate serve` and one `calgate worker` process (`CALGATE_WORKER_MODE="
            "external`, default 2 s worker tick), PostgreSQL, local secret store; the app's "
            "receiver on loopback checking both signatures. " + "; ".join(bits) + ".")


def method(result: dict[str, Any]) -> list[str]:
    accounts = result["caldav"]["options"]["accounts"] if result["caldav"] else 0
    return [
        "- t0: the moment the change is sent upstream (just before the owner's PUT to "
        "Radicale, or the emulator's `update_event`/`add_event` call); t1: the receiver's "
        "arrival time of the first `change` notification of that account's channel after "
        "t0. Latency = t1 - t0. The next change on an account is made only once that "
        "notification arrived, so each notification belongs to one change; every "
        "notification is counted once (by id), and any the changes did not claim are "
        "listed under the part's notes.",
        "- Each change is checked: the app's next read (`read_events(last_modified="
        "changes_since)`) shows it.",
        "- CalDAV: one change after another per account, each after a pause uniform over "
        "the poll period, counted from just after one of the account's polls (the previous "
        "change's notification, or the account's first poll of the run), so the change "
        f"lands at a uniformly random phase of its poll cycle; {accounts} accounts at once; "
        "the accounts' polls are spread evenly over the period once their first syncs are "
        "done (as if linked at different moments), so syncs rarely overlap. The changes "
        "alternate between renaming an event, moving one and adding one; each is one PUT of "
        "the whole event by its owner (not through Calgate).",
        "- Google: `CALGATE_PROVIDER_PUSH=on`, `CALGATE_SYNC_INTERVAL=3600`; the emulator "
        "pushes `exists` to Calgate's `/webhooks/google` after each change, and its push "
        "log must grow by exactly one per change.",
        "- The parts come from timestamps the processes write: the profile's `next_sync_at` "
        "read just before the change (its poll's due time) and its `sync_requested_at` "
        "(set when the API handled the push); the notification's `created_at` (queued, in "
        "the sync's mirror transaction) and its delivery attempt (`deliveries.at` minus "
        "`duration_ms`: the POST's start); the emulator's own arrival times of "
        "Calendar API requests."]


def part_section(title: str, part: dict[str, Any] | None, split: Any, notes: Any,
                 label: str, cell: Any) -> list[str]:
    if not part:
        return []
    out = [f"## {title}", "",
           f"{len(part['records'])} changes in {part['wall_s']:.0f} s; the machine's CPUs "
           f"were busy {part['machine_cores_busy']:.2f} cores on average meanwhile (every "
           "process, these included).", ""]
    if part["records"]:
        out += [*parts_table(part["records"], split), "", *notes(part), ""]
    out += problems(part) or ["No errors, no extra or doubled notification, every "
                              "signature valid."]
    if part["records"]:
        out += ["", "<details><summary>Every change (seconds)</summary>", "",
                *per_change(part["records"], split, label, cell), "", "</details>"]
    return [*out, ""]


def render(result: dict[str, Any]) -> str:
    caldav, google = result["caldav"], result["google"]
    lines = ["# Calgate notification latency benchmark results", "",
             "Generated by `bench/run_latency_bench.py` (see its docstring); the whole run "
             f"took {result['seconds'] / 60:.1f} minutes.", "", "## Machine", "",
             *machine_rows(result["machine"]), "", "## Results vs targets", "",
             setup_line(result), "", *results_rows(caldav, google), "", "## Method", "",
             *method(result), ""]
    lines += part_section("CalDAV: where the time goes", caldav, caldav_parts, caldav_notes,
                          "account", lambda r: r["account"])
    lines += part_section("Google: where the time goes", google, google_parts, google_notes,
                          "pause before", lambda r: f"{r['pause_before']:.2f}")
    lines += ["## Reproduce", "", "```",
              "# PostgreSQL on CALGATE_TEST_PG_URL (default postgres@127.0.0.1:5432)",
              " ".join([".venv/bin/python bench/run_latency_bench.py", *result["argv"]]),
              "```", ""]
    return "\n".join(lines)

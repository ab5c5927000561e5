"""The projection of bench/run_scale_bench.py's measurements to a cluster.

Three readings of the same round:

- **as measured**: profiles synced per second by the two worker processes on this 2-core
  machine, which they share with Radicale (the upstream), PostgreSQL and the API;
- **Radicale's share removed**: the same rate, scaled as if the CPU Radicale used had gone
  to the rest (rate * busy cores / (busy cores - Radicale's cores));
- **Calgate only**: the workers' own CPU seconds per sync. In a cluster the upstream and
  the database run elsewhere, and a worker replica is one Python process, bound to one
  core by the GIL, so a replica with one CPU syncs at most ``1 / cpu_per_sync`` profiles
  a second, and ``BUSY`` of that is planned for.

Keeping every profile within the freshness ``F`` seconds needs ``profiles / F`` syncs a
second: capacity at freshness F = sync rate * F * ``BUSY``.
"""

from __future__ import annotations

import math
from typing import Any

FRESHNESS = 300.0  # seconds: CALGATE_SYNC_INTERVAL, the freshness asked for
BUSY = 0.7  # plan for at most 70% busy: headroom for bursts, retries, initial syncs
SIZES = (1_000, 10_000, 100_000)
MIN_REPLICAS = 2  # for availability, whatever the load
WORKERS = "worker"  # group names start with this
API = "API"
RADICALE = "Radicale"
POSTGRES = "PostgreSQL"


def per_sync(window: dict[str, Any], synced: int, prefix: str) -> float:
    """CPU seconds per sync of the groups whose name starts with ``prefix``."""
    cpu = sum(v for k, v in window["cpu_s"].items() if k.startswith(prefix))
    return cpu / synced if synced else 0.0


def replicas(load: float, per_replica: float) -> int:
    return max(MIN_REPLICAS, math.ceil(load / per_replica)) if per_replica else 0


def project(result: dict[str, Any]) -> dict[str, Any]:
    """Capacity at 5-minute freshness, per worker replica and for each of ``SIZES``."""
    rnd = result["round_a"]
    window, synced = rnd["window"], rnd["synced"]
    workers = result["options"]["workers"]
    rate = rnd["steady_rate"]
    worker_cpu = per_sync(window, synced, WORKERS)
    radicale_cpu = per_sync(window, synced, RADICALE)
    pg_cpu = per_sync(window, synced, POSTGRES)
    worker_cores = sum(v for k, v in window["cpu_s"].items()
                       if k.startswith(WORKERS)) / window["wall_s"]
    measured_capacity = rate * FRESHNESS * BUSY
    busy_cores = window["machine_cpu_s"] / window["wall_s"]
    radicale_cores = window["cpu_s"].get(RADICALE, 0.0) / window["wall_s"]
    rate_without = rate * busy_cores / max(0.01, busy_cores - radicale_cores)
    replica_rate = 1.0 / worker_cpu if worker_cpu else 0.0  # one core, Calgate only
    replica_capacity = replica_rate * FRESHNESS * BUSY
    requests = rnd.get("upstream_requests", 0) / synced if synced else 0.0
    sizes = []
    for profiles in SIZES:
        syncs = profiles / FRESHNESS
        sizes.append({"profiles": profiles, "syncs_per_s": syncs,
                      "workers_measured": replicas(profiles, measured_capacity / workers),
                      "workers": replicas(profiles, replica_capacity),
                      "postgres_cores": syncs * pg_cpu,
                      "upstream_rps": syncs * requests})
    return {"freshness": FRESHNESS, "busy": BUSY, "rate": rate,
            "measured_capacity": measured_capacity,
            "measured_per_worker": measured_capacity / workers,
            "rate_without_radicale": rate_without,
            "capacity_without_radicale": rate_without * FRESHNESS * BUSY,
            "worker_cpu_per_sync": worker_cpu, "radicale_cpu_per_sync": radicale_cpu,
            "postgres_cpu_per_sync": pg_cpu, "worker_cores": worker_cores,
            "replica_rate": replica_rate, "replica_capacity": replica_capacity,
            "requests_per_sync": requests, "sizes": sizes, **_initial(result), **_api(result)}


def _initial(result: dict[str, Any]) -> dict[str, Any]:
    """What a first sync (a new link) costs: it lists and reads everything."""
    init = result["initial"]
    window, synced = init["window"], init["synced"]
    cpu = per_sync(window, synced, WORKERS)
    return {"initial_worker_cpu": cpu, "initial_radicale_cpu": per_sync(window, synced, RADICALE),
            "initial_replica_rate": 1.0 / cpu if cpu else 0.0,
            "initial_requests": init.get("upstream_requests", 0) / synced if synced else 0.0}


def _api(result: dict[str, Any]) -> dict[str, Any]:
    """Reads a one-core API replica serves at ``BUSY``, from the idle window's CPU."""
    idle = result["reads_idle"]
    api_cpu = idle["cpu_s"].get(API, 0.0) / max(1, idle["requests"])
    per_replica = BUSY / api_cpu if api_cpu else 0.0
    return {"api_cpu_per_request": api_cpu, "api_replica_rps": per_replica,
            "api_sizes": [{"rps": rps, "replicas": replicas(rps, per_replica)}
                          for rps in (100, 1_000, 5_000)]}

"""CPU cost of each step of the userinfo and refresh hot paths, measured in-process.

    .venv/bin/python bench/oauth_costs.py

Complements run_oauth_bench.py: that one measures the served throughput; this one says
where each request's CPU time goes, one call at a time (no concurrency), against the same
kind of SQLite database. Each figure is CPU time (``time.process_time``: all threads of
this process, so worker-thread hops are included) per call, the best of 5 rounds, which
keeps it meaningful on a machine other processes are also using. Nothing here changes
product code. A few rows time a query the way the product might run it (statement built per
call, built once, or on a raw sqlite3 connection) to size what a change is worth.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))
sys.path.insert(0, str(BENCH))

import bench_setup as rb  # noqa: E402

ROUNDS = 5


def cost(fn: Callable[[], object], n: int) -> float:
    """Best-of-ROUNDS CPU microseconds per call."""
    for _ in range(min(n, 200)):
        fn()
    best = float("inf")
    for _ in range(ROUNDS):
        t0 = time.process_time()
        for _ in range(n):
            fn()
        best = min(best, (time.process_time() - t0) / n)
    return best * 1e6


def acost(loop: asyncio.AbstractEventLoop, make: Callable[[], Any], n: int) -> float:
    """Like cost() for a coroutine factory, run one at a time on ``loop``."""
    async def many(k: int) -> None:
        for _ in range(k):
            await make()

    loop.run_until_complete(many(min(n, 100)))
    best = float("inf")
    for _ in range(ROUNDS):
        t0 = time.process_time()
        loop.run_until_complete(many(n))
        best = min(best, (time.process_time() - t0) / n)
    return best * 1e6


async def asgi_call(app: Any, method: str, path: str, headers: dict[str, str],
                    body: bytes = b"") -> int:
    """One request straight into the ASGI app (no sockets, no uvicorn); returns the status."""
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": method, "scheme": "http", "path": path, "raw_path": path.encode(),
             "query_string": b"", "root_path": "", "client": ("127.0.0.1", 50000),
             "server": ("127.0.0.1", 8080),
             "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()]}
    messages = [{"type": "http.request", "body": body, "more_body": False}]
    status = 0

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    return status


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-n", type=int, default=1000, help="calls per round")
    args = parser.parse_args(argv)
    n = args.n

    import uvloop
    from anyio import to_thread
    from sqlalchemy import and_, bindparam, select

    from gateway.app import Gateway, create_app
    from gateway.persistence.tables import accounts, profiles
    from gateway.services.identity import userinfo_body
    from gateway.settings import Settings
    from oauth_server.crypto import new_token, seal_with_token
    from oauth_server.grants_store import Issued
    from oauth_server.scopes import expand
    from oauth_server.server import Request
    from oauth_server.tables import families, tokens

    rows: list[tuple[str, str, float]] = []

    def row(section: str, what: str, us: float) -> None:
        rows.append((section, what, us))
        print(f"{section:9s} {what:72s} {us:8.1f} us", flush=True)

    with tempfile.TemporaryDirectory(prefix="calgate-costs-") as tmp:
        data_dir = Path(tmp) / "data"
        port = 8080
        # Enough single-use refresh tokens for every refresh measurement below.
        refresh_calls = 4 * (ROUNDS * n + 200) + 16 * 200
        fx = rb.prepare(data_dir, port, {"costs": refresh_calls + 10_000})
        settings = Settings.from_env(rb.server_env(data_dir, port))
        gateway = Gateway.build(settings)
        store, accounts_svc, keys = gateway.oauth.store, gateway.accounts, gateway.oauth.store.keys
        server = gateway.oauth.server
        app = create_app(gateway)
        rts = iter(fx.token_files["costs"].read_text().split())
        loop = uvloop.new_event_loop()
        asyncio.set_event_loop(loop)
        at, sub = fx.access_token, fx.subject
        grants = expand(("read_write",))

        # -- userinfo ------------------------------------------------------------------
        auth = {"authorization": f"Bearer {at}"}
        row("userinfo", "whole request through the ASGI app (no uvicorn, no sockets)",
            acost(loop, lambda: asgi_call(app, "GET", "/v1/userinfo", auth), n))
        row("userinfo", "  /healthz through the same app, for scale",
            acost(loop, lambda: asgi_call(app, "GET", "/healthz", {}), n))
        row("userinfo", "  anyio to_thread.run_sync(no-op) hop (up to 2 per request)",
            acost(loop, lambda: to_thread.run_sync(lambda: None), n))
        row("userinfo", "  GrantStore.validate_access", cost(lambda: store.validate_access(at), n))
        row("userinfo", "    ServerKeys.token_digest (re-derives the key each call)",
            cost(lambda: keys.token_digest(at), n))
        h = keys.token_digest(at)

        def build_validate() -> Any:
            return (select(tokens.c.scope, tokens.c.expires_at, tokens.c.family_id,
                           families.c.client_id, families.c.subject)
                    .join(families, families.c.id == tokens.c.family_id)
                    .where(and_(tokens.c.token_hash == h, tokens.c.kind == "access",
                                families.c.revoked_at.is_(None))))

        row("userinfo", "    building a select() like its query (paid when built per call)",
            cost(build_validate, n))
        prebuilt = (select(tokens.c.scope, tokens.c.expires_at, tokens.c.family_id,
                           families.c.client_id, families.c.subject)
                    .join(families, families.c.id == tokens.c.family_id)
                    .where(and_(tokens.c.token_hash == bindparam("h"),
                                tokens.c.kind == "access", families.c.revoked_at.is_(None))))

        def run_prebuilt() -> Any:
            with gateway.engine.connect() as conn:
                return conn.execute(prebuilt, {"h": h}).first()

        row("userinfo", "    that query with the statement built once (bindparam)",
            cost(run_prebuilt, n))
        sql = str(prebuilt.compile(gateway.engine))
        raw = sqlite3.connect(str(data_dir / "calgate.db"), check_same_thread=False)
        row("userinfo", "    that query on a raw sqlite3 connection",
            cost(lambda: raw.execute(sql, (h, "access")).fetchone(), n))

        def checkout() -> None:
            with gateway.engine.connect():
                pass

        row("userinfo", "    engine.connect() checkout + return (1 per store call)",
            cost(checkout, n))
        accounts_svc.cache.clear()
        row("userinfo", "  AccountService.find_identity (account + profiles, uncached)",
            cost(lambda: (accounts_svc.cache.clear(), accounts_svc.find_identity(sub)), n))
        identity = accounts_svc.find_identity(sub)
        assert identity is not None
        row("userinfo", "  userinfo_body (from the cached identity)",
            cost(lambda: userinfo_body(identity, sub, ("read_write",), grants), n))
        row("userinfo", "    AccountService.find_account",
            cost(lambda: accounts_svc.find_account(sub), n))
        row("userinfo", "    AccountService.list_profiles",
            cost(lambda: accounts_svc.list_profiles(sub), n))
        acc_q = select(accounts).where(accounts.c.id == bindparam("s"))
        pro_q = (select(profiles).where(profiles.c.account_id == bindparam("s"))
                 .order_by(profiles.c.created_at, profiles.c.id))

        def both_one_conn() -> Any:
            with gateway.engine.connect() as conn:
                a = conn.execute(acc_q, {"s": sub}).first()
                p = conn.execute(pro_q, {"s": sub}).all()
            return a, p

        row("userinfo", "    alternative: both queries prebuilt, one connection",
            cost(both_one_conn, n))
        body = userinfo_body(identity, sub, ("read_write",), grants)
        row("userinfo", "  json.dumps of the body (JSONResponse render)",
            cost(lambda: json.dumps(body, ensure_ascii=False, separators=(",", ":")), n))

        # -- refresh -------------------------------------------------------------------
        def token_body() -> bytes:
            return json.dumps({"grant_type": "refresh_token", "refresh_token": next(rts),
                               "client_id": fx.client_id,
                               "client_secret": fx.client_secret}).encode()

        jh = {"content-type": "application/json"}
        row("refresh", "whole request through the ASGI app (no uvicorn, no sockets)",
            acost(loop, lambda: asgi_call(app, "POST", "/oauth/token", jh, token_body()), n))

        def authlib_only() -> Any:
            items = list(json.loads(token_body()).items())
            req = Request("POST", "http://127.0.0.1/oauth/token", items, jh, "127.0.0.1")
            status, _, _ = server.create_token_response(req)
            assert status == 200, status

        row("refresh", "  server.create_token_response (the lane-thread part, alone)",
            cost(authlib_only, n))

        def batch_of_16() -> Any:
            reqs = [Request("POST", "http://127.0.0.1/oauth/token",
                            list(json.loads(token_body()).items()), jh, "127.0.0.1")
                    for _ in range(16)]
            for result in server.create_token_responses(reqs):
                assert not isinstance(result, Exception) and result[0] == 200, result

        row("refresh", "  server.create_token_responses, 16 a batch (per request)",
            cost(batch_of_16, max(1, n // 16)) / 16)
        throttle = getattr(server, "throttle", None)
        if throttle is not None:
            row("refresh", "    FailureThrottle.retry_after (per token request)",
                cost(lambda: throttle.retry_after((fx.client_id, "127.0.0.1")), n))
        row("refresh", "    ClientRegistry.find (per token request)",
            cost(lambda: gateway.oauth.registry.find(fx.client_id), n))
        row("refresh", "    ServerKeys.secret_digest",
            cost(lambda: keys.secret_digest("x" * 43), n))
        spare = [next(rts) for _ in range(ROUNDS * n + 200)]
        it = iter(spare)
        row("refresh", "    GrantStore.find_refresh", cost(lambda: store.find_refresh(next(it)), n))
        records = [(t, store.find_refresh(t)) for t in spare[:ROUNDS * n + 200]]
        it2 = iter(records)

        def rotate() -> Any:
            token, record = next(it2)
            assert record is not None
            return store.rotate(record, token, "read_write")

        row("refresh", "    GrantStore.rotate (UPDATE + 2 INSERTs + commit)", cost(rotate, n))
        pair = Issued(new_token(), new_token(), 3600, "read_write").as_dict()
        row("refresh", "      seal_with_token (AES-GCM of the successor pair)",
            cost(lambda: seal_with_token(at, pair), n))
        row("refresh", "      new_token x2", cost(lambda: (new_token(), new_token()), n))

        gateway.close()

    print()
    print("| path | step | CPU µs/call |")
    print("|---|---|---:|")
    for section, what, us in rows:
        indent = (len(what) - len(what.lstrip())) // 2
        print(f"| {section} | {'· ' * indent}{what.strip()} | {us:,.0f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Issue 6's log scan: a whole journey through a real Calgate API process (uvicorn, as
GatewayServer runs it, logging as `calgate serve` does) and a `calgate worker` process, both
at CALGATE_LOG_LEVEL=debug, with every secret of the journey known to the test. Afterwards
every line either process wrote is a JSON object, the served requests carry request ids,
and no secret is anywhere in the logs: not the client secret, the authorization code, an
access or refresh token, the upstream (Radicale) password, the event's summary,
description or location, nor the local secret store's or the server's keys.

The journey: link a CalDAV account through the consent screen over HTTP, exchange the code
with pycronofy, create a notification channel to a receiver, upsert an event (applied
upstream by the worker), read it, refresh the tokens, scrape /metrics, revoke. The two
processes share PROMETHEUS_MULTIPROC_DIR, so the API's /metrics also shows the worker's
upstream calls; the worker serves its own /metrics on CALGATE_WORKER_METRICS_PORT.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pycronofy
from prometheus_client.parser import text_string_to_metric_families

from tests.support.consent_http import consent_over_http
from tests.support.davservers import DavOwner, RadicaleServer
from tests.support.e2e_app import build_gateway
from tests.support.e2e_server import CallbackServer, GatewayServer
from tests.support.processes import free_port, stop_process
from tests.support.receiver import Receiver
from tests.support.waiting import eventually

SCOPE = "read_account list_calendars read_events create_event delete_event"
MARK = uuid.uuid4().hex[:10]
PASSWORD = f"wonderland-{MARK}"
SUMMARY = f"Quarterly salary review {MARK}"
DESCRIPTION = f"Bring the redundancy list {MARK}"
LOCATION = f"Room Zanzibar {MARK}"


def counter(text: str, name: str, **labels: str) -> float:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and labels.items() <= sample.labels.items():
                return float(sample.value)
    return 0.0


def read_lines(paths: list[Path]) -> list[tuple[str, dict[str, Any]]]:
    """(file name, parsed line) for every non-empty line; a line that is not a JSON
    object fails the test, naming the file and the line."""
    lines = []
    for path in paths:
        for raw in path.read_text(errors="replace").splitlines():
            if not raw.strip():
                continue
            try:
                parsed = json.loads(raw)
            except ValueError:
                raise AssertionError(f"{path.name}: not a JSON line: {raw!r}") from None
            assert isinstance(parsed, dict), raw
            lines.append((path.name, parsed))
    return lines


def test_no_secret_of_a_whole_journey_reaches_the_logs(tmp_path: Path) -> None:
    multiproc = tmp_path / "prometheus"
    multiproc.mkdir()
    worker_port = free_port()
    env = {"CALGATE_WORKER_MODE": "external", "CALGATE_LOG_LEVEL": "debug",
           "CALGATE_CALLBACK_HTTP_HOSTS": "127.0.0.1",
           "CALGATE_OUTBOUND_ALLOW_NETWORKS": "127.0.0.0/8,::1/128", "CALGATE_SHUTDOWN_GRACE": "1",
           "CALGATE_WORKER_METRICS_PORT": str(worker_port),
           "PROMETHEUS_MULTIPROC_DIR": str(multiproc)}
    secrets: list[str] = [PASSWORD, SUMMARY, DESCRIPTION, LOCATION]
    with (RadicaleServer(users={"alice": PASSWORD}) as dav,
          GatewayServer(tmp_path / "gw", env=env) as server, CallbackServer() as callback):
        owner = DavOwner(dav.url, "alice", PASSWORD)
        owner.make_calendar("Work")
        app = server.register_client(name="Log Scan App", redirect_uris=[callback.url],
                                     scopes=SCOPE.split(), legacy_no_pkce=True)
        assert app.secret is not None
        secrets.append(app.secret)
        worker = server.spawn_worker("a")
        receiver: Receiver | None = None
        try:
            client = pycronofy.Client(client_id=app.client_id, client_secret=app.secret)
            client.request_handler.base_url = server.url
            client.app_base_url = server.url
            got = consent_over_http(
                client.user_auth_link(callback.url, scope=SCOPE, state="scan"), server.url,
                callback, "caldav",
                {"server_url": dav.url, "username": "alice", "password": PASSWORD})
            secrets.append(got["code"])
            tokens = client.get_authorization_from_code(got["code"], redirect_uri=callback.url)
            secrets += [tokens["access_token"], tokens["refresh_token"]]
            eventually(lambda: not client.userinfo()["cronofy.data"]["profiles"][0][
                "profile_initial_sync_required"], timeout=30)

            receiver = Receiver(app.client_id, app.secret).start()
            client.create_notification_channel(receiver.url)
            eventually(lambda: receiver.of_type("verification"), timeout=30)

            [calendar] = [c for c in client.list_calendars() if c["calendar_name"] == "Work"]
            start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + \
                timedelta(days=2)
            client.upsert_event(calendar["calendar_id"], {
                "event_id": "scan-1", "summary": SUMMARY, "description": DESCRIPTION,
                "location": {"description": LOCATION}, "tzid": "Etc/UTC",
                "start": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "end": (start + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")})

            def read_back() -> list[dict[str, Any]]:
                return [e for e in client.read_events(
                    tzid="Etc/UTC", include_managed=True,
                    from_date=start.date().isoformat(),
                    to_date=(start + timedelta(days=1)).date().isoformat())
                    if e.get("summary") == SUMMARY and e.get("event_status") != "cancelled"]

            [event] = eventually(read_back, timeout=60)
            assert event["description"] == DESCRIPTION
            eventually(lambda: receiver.of_type("change"), timeout=30)

            with httpx.Client(base_url=server.url, timeout=30) as http:
                r = http.get("/v1/events", params={"tzid": "Etc/UTC", "include_managed": "true"},
                             headers={"Authorization": f"Bearer {client.auth.access_token}",
                                      "X-Request-Id": f"log-scan-{MARK}"})
                assert r.status_code == 200 and SUMMARY in r.text
                assert r.headers["X-Request-Id"] == f"log-scan-{MARK}"
                refreshed = client.refresh_authorization()
                secrets += [refreshed["access_token"], refreshed["refresh_token"]]

                api_metrics = http.get("/metrics").text
            # The worker's counters, summed into the API's /metrics through the shared dir.
            assert counter(api_metrics, "calgate_upstream_calls_total", provider="caldav",
                           operation="put_event", outcome="ok") >= 1
            assert counter(api_metrics, "calgate_upstream_calls_total", provider="caldav",
                           operation="sync", outcome="ok") >= 1
            assert counter(api_metrics, "calgate_oauth_tokens_issued_total",
                           grant_type="refresh_token") == 1
            assert counter(api_metrics, "calgate_outbox_pending", kind="write") == 0
            with httpx.Client(timeout=10) as http:
                own = http.get(f"http://127.0.0.1:{worker_port}/metrics").text
            assert counter(own, "calgate_notification_deliveries_total", outcome="ok") >= 2

            client.revoke_authorization()
            time.sleep(1)  # the worker notices what the revocation left behind, if anything
        finally:
            if receiver is not None:
                receiver.stop()
            stop_process(worker)
            owner.close()
        keeper = build_gateway(server.settings())
        try:
            secrets.append(keeper.secrets.get("server/keys")["master"])
        finally:
            keeper.close()
    master = (server.data_dir / "secrets" / "master.key").read_bytes()
    secrets += [master.hex(), base64.b64encode(master).decode(),
                base64.urlsafe_b64encode(master).decode().rstrip("=")]

    files = [server.log_path, server.workdir / "worker-a.log"]
    lines = read_lines(files)
    by_file = {name for name, _ in lines}
    assert by_file == {"uvicorn.log", "worker-a.log"}, by_file
    for _name, line in lines:
        assert {"time", "level", "logger", "message", "request_id"} <= line.keys(), line
    access = [line for _name, line in lines if line["logger"] == "calgate.access"]
    assert len(access) > 10
    assert all(line["request_id"] and line["route"] for line in access)
    assert [line["route"] for line in access
            if line["request_id"] == f"log-scan-{MARK}"] == ["/v1/events"]
    assert {"/oauth/token", "/oauth/flow/{flow_id}/connect", "/v1/channels",
            "/v1/calendars/{calendar_id}/events"} <= {line["route"] for line in access}

    text = "\n".join(path.read_text(errors="replace") for path in files)
    for secret in secrets:
        assert secret and secret not in text, f"a secret is in the logs: {secret[:4]}…"

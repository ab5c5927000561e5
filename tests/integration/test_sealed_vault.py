"""A sealed Vault (OpenBao sealed through its API): the API process stays alive, /readyz
says unready, and what needs the secret store answers 503 with Retry-After instead of a
500, on SQLite and PostgreSQL. Unsealed, it all works again."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update
from starlette.testclient import TestClient

from gateway.app import Gateway, create_app
from gateway.persistence.tables import managed_events
from gateway.services.accounts import PendingAccount
from gateway.services.linking import ConnectorRegistry
from oauth_server.scopes import expand
from providers.memory.provider import WORLD
from tests.conftest import ISSUER
from tests.support.aio import run
from tests.support.linked import Linked
from tests.support.memory_connector import MemoryConnector
from tests.support.oauth import REDIRECT, make_client


def build(settings, store) -> Gateway:
    connectors = ConnectorRegistry()
    connectors.register(MemoryConnector())
    return Gateway.build(settings, secrets=store, connectors=connectors)


def test_a_sealed_vault_makes_the_api_unready_and_answer_503(settings, vault_store, openbao):
    gateway = build(settings, vault_store)
    name = f"sealed-{uuid.uuid4().hex[:8]}@example.com"
    WORLD.add_account(name, "pw")
    try:
        client = make_client(gateway)
        parked = gateway.accounts.park_credentials(uuid.uuid4().hex,
                                                   {"account": name, "password": "pw"})
        linked = gateway.accounts.link(client.client_id, PendingAccount(
            "memory", "memory", name, name, parked), None, sorted(expand(["read_write"])))
        store = gateway.oauth.store
        code = store.save_code(client_id=client.client_id, redirect_uri=REDIRECT,
                               scope="read_write", subject=linked.subject,
                               linking_profile=None, code_challenge=None)
        token = store.redeem_code(store.find_code(code, client.client_id)).access_token
        headers = {"Authorization": f"Bearer {token}"}
        account = Linked(gateway, client.client_id, linked.subject, linked.profile_id, name,
                         f"{name}/default")
        account.sync()
        calendar_id = account.calendar_id
        start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)
        body = {"event_id": "e1", "summary": "Sealed", "tzid": "Etc/UTC",
                "start": start.isoformat(), "end": (start + timedelta(hours=1)).isoformat()}
        with TestClient(create_app(gateway), base_url=ISSUER) as http:  # accepted before
            r = http.post(f"/v1/calendars/{calendar_id}/events", headers=headers,
                          json=body | {"event_id": "accepted-before"})
            assert r.status_code == 202
        [pending] = gateway.worker.outbox.due()
        openbao.seal()
        try:
            gateway.writes.keys._keys.clear()  # as in a process that never used it
            # A worker cannot apply it now (the data key and credentials are sealed
            # away): the write is kept and due again in seconds, not after a 2-minute claim.
            applied = run(gateway.worker.outbox.apply(pending))
            assert not applied.ok and "Vault is sealed" in (applied.error or "")
            with gateway.engine.connect() as conn:
                again = conn.execute(select(managed_events.c.next_attempt_at).where(
                    managed_events.c.id == pending)).scalar_one()
            wait = (again.replace(tzinfo=UTC) - datetime.now(UTC)).total_seconds()
            assert 5 < wait <= 15, wait
            with TestClient(create_app(gateway), base_url=ISSUER) as http:
                assert http.get("/healthz").status_code == 200
                ready = http.get("/readyz")
                assert ready.status_code == 503
                r = http.post(f"/v1/calendars/{calendar_id}/events", json=body,
                              headers=headers)
                assert r.status_code == 503, r.text
                assert r.json() == {"error": "service_unavailable"}
                assert int(r.headers["Retry-After"]) > 0
        finally:
            openbao.unseal()
        with TestClient(create_app(gateway), base_url=ISSUER) as http:
            assert http.get("/readyz").status_code == 200
            r = http.post(f"/v1/calendars/{calendar_id}/events", json=body, headers=headers)
            assert r.status_code == 202, r.text
        with gateway.engine.begin() as conn:
            conn.execute(update(managed_events).values(next_attempt_at=datetime.now(UTC)))
        for managed_id in gateway.worker.outbox.due():
            assert run(gateway.worker.outbox.apply(managed_id)).ok
        assert {e.summary for e in WORLD.accounts[name].calendars[f"{name}/default"]
                .resources.values() for e in e} == {"Sealed"}
        assert len(WORLD.accounts[name].calendars[f"{name}/default"].resources) == 2
    finally:
        WORLD.accounts.pop(name, None)
        gateway.close()

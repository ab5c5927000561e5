"""The OpenAPI document (GET /openapi.json) covers every route, and real answers match it.

Each journey drives the app as a client would, on SQLite and PostgreSQL, and checks every
response against the documented schema for its status (tests/support/openapi_check.py).
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from jsonschema import Draft202012Validator
from starlette.routing import Mount, Route

from gateway.app import create_app
from tests.conftest import ISSUER
from tests.support.linked import hour, link  # noqa: F401 (fixture)
from tests.support.oauth import REDIRECT
from tests.support.openapi_check import DOC, conforms

pytestmark = pytest.mark.usefixtures("db_url")
UTC_ZONE = {"tzid": "Etc/UTC"}


def served_operations(app) -> set[tuple[str, str]]:
    """(method, path) of every route; the 405-only twins of the OAuth POST endpoints
    (``post_only``) and the static-file mount are not operations of their own."""
    found = set()
    for route in app.routes:
        if isinstance(route, Mount):
            continue
        assert isinstance(route, Route), route
        if route.endpoint.__name__ == "post_only":
            continue
        found |= {(m, route.path) for m in route.methods or () if m != "HEAD"}
    return found


def test_every_route_is_documented_and_every_operation_served(gateway):
    documented = {(method.upper(), path) for path, item in DOC["paths"].items()
                  for method in item}
    served = served_operations(create_app(gateway))
    assert served - documented == set(), "routes missing from the OpenAPI document"
    assert documented - served == set(), "documented operations the app does not serve"


def test_the_document_is_openapi_3_1_with_valid_schemas():
    assert DOC["openapi"].startswith("3.1.")
    operation_ids = []
    for item in DOC["paths"].values():
        for operation in item.values():
            operation_ids.append(operation["operationId"])
            assert operation["responses"], operation["operationId"]
            for answer in operation["responses"].values():
                for media in answer.get("content", {}).values():
                    Draft202012Validator.check_schema(media["schema"])
    assert len(operation_ids) == len(set(operation_ids))
    for schema in DOC["components"]["schemas"].values():
        Draft202012Validator.check_schema(schema)


def test_served_without_authentication(http):
    answer = http.get("/openapi.json")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("application/json")
    assert answer.json() == DOC
    assert answer.json()["servers"] == [{"url": ISSUER}]


def test_identity_and_calendars_match(http, link):  # noqa: F811
    linked = link()
    headers = linked.token("read_write")
    linked.sync()
    for template in ("/v1/userinfo", "/v1/account", "/v1/profiles", "/v1/calendars"):
        assert conforms(http.get(template, headers=headers), "GET", template).status_code == 200
    narrow = linked.token("read_free_busy")
    assert conforms(http.get("/v1/account", headers=narrow), "GET", "/v1/account"
                    ).status_code == 403
    assert conforms(http.get("/v1/userinfo", headers=narrow), "GET", "/v1/userinfo"
                    ).status_code == 200
    assert conforms(http.get("/v1/calendars", headers={"Authorization": "Bearer nope"}),
                    "GET", "/v1/calendars").status_code == 401
    created = http.post("/v1/calendars", headers=headers,
                        json={"profile_id": linked.profile_id, "name": "Work"})
    conforms(created, "POST", "/v1/calendars")
    conforms(http.post("/v1/calendars", headers=headers, json={"name": "x"}),
             "POST", "/v1/calendars")
    conforms(http.post("/v1/calendars", headers=headers,
                       json={"profile_id": "pro_nope", "name": "x"}), "POST", "/v1/calendars")
    revoke = "/v1/profiles/{profile_id}/revoke"
    assert conforms(http.post("/v1/profiles/pro_nope/revoke", headers=headers), "POST",
                    revoke).status_code == 404


def test_reads_match(http, link):  # noqa: F811
    linked = link()
    headers = linked.token("read_write")
    linked.put("timed", hour(2), location="Room 1")
    linked.put("allday", hour(24).date(), hour(48).date())
    linked.sync()
    for params in ({}, {"localized_times": "true"}, {"include_deleted": "true",
                                                     "include_managed": "1"},
                   {"from": hour(-1).date().isoformat(), "to": hour(72).date().isoformat()}):
        answer = conforms(http.get("/v1/events", params=UTC_ZONE | params, headers=headers),
                          "GET", "/v1/events")
        assert len(answer.json()["events"]) == 2
        conforms(http.get("/v1/free_busy", params=UTC_ZONE | params, headers=headers),
                 "GET", "/v1/free_busy")
    for bad in ({}, {"tzid": "Mars/Base"}, UTC_ZONE | {"from": "yesterday"}):
        assert conforms(http.get("/v1/events", params=bad, headers=headers), "GET",
                        "/v1/events").status_code == 422
    conforms(http.get("/v1/events", params=UTC_ZONE | {"calendar_ids[]": "cal_nope"},
                      headers=headers), "GET", "/v1/events")
    conforms(http.get("/v1/events/pages/forged", headers=headers), "GET",
             "/v1/events/pages/{token}")
    conforms(http.get("/v1/free_busy/pages/forged", headers=headers), "GET",
             "/v1/free_busy/pages/{token}")
    conforms(http.get("/v1/free_busy", params=UTC_ZONE, headers=linked.token("read_account")),
             "GET", "/v1/free_busy")


def test_a_second_page_matches(http, link, monkeypatch):  # noqa: F811
    from gateway.services import reads

    linked = link()
    monkeypatch.setattr(reads, "PAGE_SIZE", 1)  # two events make two pages
    headers = linked.token("read_write")
    linked.put("one", hour(2))
    linked.put("two", hour(3))
    linked.sync()
    first = conforms(http.get("/v1/events", params=UTC_ZONE, headers=headers), "GET",
                     "/v1/events").json()
    assert first["pages"]["total"] == 2
    following = http.get(first["pages"]["next_page"].removeprefix(ISSUER), headers=headers)
    assert conforms(following, "GET", "/v1/events/pages/{token}").status_code == 200


def test_writes_and_batches_match(http, link):  # noqa: F811
    linked = link()
    headers = linked.token("read_write")
    linked.sync()
    events = "/v1/calendars/{calendar_id}/events"
    url = f"/v1/calendars/{linked.calendar_id}/events"
    start = hour(5)
    good = {"event_id": "e1", "summary": "Planning", "start": start.isoformat().replace(
        "+00:00", "Z"), "end": (start + timedelta(hours=1)).isoformat().replace("+00:00", "Z"),
        "attendees": {"invite": [{"email": "a@example.com"}]}, "reminders": [{"minutes": 5}]}
    assert conforms(http.post(url, headers=headers, json=good), "POST", events
                    ).status_code == 202
    for bad in ({"summary": "x"}, good | {"summary": "x" * 2000}, good | {"end": good["start"]},
                {"event_uid": "evt_external_1"}):
        assert conforms(http.post(url, headers=headers, json=bad), "POST", events
                        ).status_code in (403, 422)
    conforms(http.post("/v1/calendars/cal_nope/events", headers=headers, json=good), "POST",
             events)
    conforms(http.post(url, headers=linked.token("read_events"), json=good), "POST", events)
    assert conforms(http.request("DELETE", url, headers=headers, json={"event_id": "e1"}),
                    "DELETE", events).status_code == 202
    for query in ({"delete_all": "true"}, {}, {"delete_all": "true",
                                                "calendar_ids[]": linked.calendar_id}):
        conforms(http.delete("/v1/events", params=query, headers=headers), "DELETE",
                 "/v1/events")
    status = "/v1/calendars/{calendar_id}/events/{event_uid}/participation_status"
    for answer in ("maybe", "accepted"):
        conforms(http.post(f"{url}/evt_1/participation_status", headers=headers,
                           json={"status": answer}), "POST", status)
    batch = http.post("/v1/batch", headers=headers, json={"batch": [
        {"method": "POST", "relative_url": url, "data": good},
        {"method": "DELETE", "relative_url": url, "data": {}},
        {"method": "PATCH", "relative_url": url, "data": {}}]})
    assert conforms(batch, "POST", "/v1/batch").status_code == 207
    progress = http.get(f"/v1/batch/{batch.json()['batch_id']}", headers=headers)
    assert conforms(progress, "GET", "/v1/batch/{batch_id}").status_code == 200
    conforms(http.get("/v1/batch/bat_nope", headers=headers), "GET", "/v1/batch/{batch_id}")
    conforms(http.post("/v1/batch", headers=headers, json={"batch": []}), "POST", "/v1/batch")
    conforms(http.post("/v1/batch", headers=headers, content=b"{nope",
                       ), "POST", "/v1/batch")


def test_channels_match(http, link):  # noqa: F811
    linked = link()
    headers = linked.token("read_write")
    created = http.post("/v1/channels", headers=headers,
                        json={"callback_url": "https://hooks.example.com/calgate",
                              "filters": {"only_managed": True}})
    conforms(created, "POST", "/v1/channels")
    conforms(http.post("/v1/channels", headers=headers, json={"callback_url": "ftp://x"}),
             "POST", "/v1/channels")
    conforms(http.post("/v1/channels", headers=linked.token("create_event"),
                       json={"callback_url": "https://hooks.example.com/x"}),
             "POST", "/v1/channels")
    assert conforms(http.get("/v1/channels", headers=headers), "GET", "/v1/channels"
                    ).status_code == 200
    channel = created.json()["channel"]["channel_id"] if created.status_code == 200 else "chn_x"
    base = "/v1/channels/{channel_id}"
    conforms(http.get(f"/v1/channels/{channel}/deliveries", headers=headers), "GET",
             base + "/deliveries")
    conforms(http.get(f"/v1/channels/{channel}/deliveries", params={"limit": "0"},
                      headers=headers), "GET", base + "/deliveries")
    conforms(http.post(f"/v1/channels/{channel}/replay", headers=headers,
                       json={"since": "2026-01-01T00:00:00Z"}), "POST", base + "/replay")
    conforms(http.post(f"/v1/channels/{channel}/replay", headers=headers, json={}),
             "POST", base + "/replay")
    conforms(http.delete(f"/v1/channels/{channel}", headers=headers), "DELETE", base)
    conforms(http.delete("/v1/channels/chn_nope", headers=headers), "DELETE", base)


def test_oauth_endpoints_match(http, link):  # noqa: F811
    linked = link()
    store = linked.gateway.oauth.store
    code = store.save_code(client_id=linked.client_id, redirect_uri=REDIRECT,
                           scope="read_write", subject=linked.subject, linking_profile=None,
                           code_challenge=None)
    issued = store.redeem_code(store.find_code(code, linked.client_id))
    conforms(http.get("/.well-known/oauth-authorization-server"), "GET",
             "/.well-known/oauth-authorization-server")
    secret = _secret_of(linked)
    form = {"client_id": linked.client_id, "client_secret": secret}
    refreshed = http.post("/oauth/token", data=form | {"grant_type": "refresh_token",
                                                       "refresh_token": issued.refresh_token})
    assert conforms(refreshed, "POST", "/oauth/token").status_code == 200
    for bad in ({"grant_type": "refresh_token", "refresh_token": "nope"} | form,
                {"grant_type": "password"} | form, {},
                {"grant_type": "refresh_token", "client_id": linked.client_id,
                 "client_secret": "wrong", "refresh_token": "x"}):
        assert conforms(http.post("/oauth/token", data=bad), "POST", "/oauth/token"
                        ).status_code in (400, 401)
    token = refreshed.json()["access_token"]
    assert conforms(http.post("/oauth/introspect", data=form | {"token": token}), "POST",
                    "/oauth/introspect").json()["active"] is True
    conforms(http.post("/oauth/introspect", data=form), "POST", "/oauth/introspect")
    conforms(http.post("/oauth/token/revoke", json=form | {"token": "unknown"}), "POST",
             "/oauth/token/revoke")
    conforms(http.post("/oauth/token/revoke", data=form), "POST", "/oauth/token/revoke")


def _secret_of(linked) -> str:
    """link() registers its client without handing back the secret: rotate one in."""
    secret: str = linked.gateway.oauth.registry.rotate_secret(linked.client_id)
    return secret


def test_consent_pages_and_operations_match(http, gateway):
    from tests.support.oauth import Pkce, make_client

    client = make_client(gateway)
    query = {"response_type": "code", "client_id": client.client_id, "redirect_uri": REDIRECT,
             "scope": "read_write", "state": "s", "code_challenge": Pkce().challenge,
             "code_challenge_method": "S256"}
    started = conforms(http.get("/oauth/authorize", params=query), "GET", "/oauth/authorize")
    assert started.status_code == 303
    flow = started.headers["location"]
    assert flow.startswith("/oauth/flow/")
    assert conforms(http.get(flow), "GET", "/oauth/flow/{flow_id}").status_code == 200
    assert conforms(http.post(f"{flow}/decision", data={"csrf_token": "x"}), "POST",
                    "/oauth/flow/{flow_id}/decision").status_code == 403
    conforms(http.get("/oauth/authorize", params=query | {"client_id": "nope"}), "GET",
             "/oauth/authorize")
    conforms(http.get("/oauth/flow/nope"), "GET", "/oauth/flow/{flow_id}")
    conforms(http.get("/oauth/callback/google", params={"state": "x"}), "GET",
             "/oauth/callback/{provider}")
    conforms(http.get(f"/oauth/branding/{client.client_id}.css"), "GET",
             "/oauth/branding/{client_id}.css")
    for template in ("/healthz", "/readyz", "/metrics", "/openapi.json"):
        assert conforms(http.get(template), "GET", template).status_code == 200
    conforms(http.post("/webhooks/google"), "POST", "/webhooks/{provider}")

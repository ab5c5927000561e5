"""Managed and sequenced availability through the official Cronofy SDKs, unmodified,
against a running Calgate (issue 15): pycronofy's availability-rule methods and
``sequenced_availability``, and the Node SDK's rule and available-period methods (paging
through ``next_page`` included) and ``sequencedAvailability``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pycronofy
import pytest
from pycronofy.exceptions import PyCronofyRequestError

from tests.e2e.test_pycronofy import SCOPE, consent_over_http, sdk_client
from tests.support.e2e_server import CallbackServer, GatewayServer, RegisteredApp
from tests.support.node_sdk import NodeSdk
from tests.support.waiting import eventually

RULE = {
    "availability_rule_id": "default",
    "tzid": "America/Chicago",
    "weekly_periods": [
        {"day": "monday", "start_time": "09:30", "end_time": "12:30"},
        {"day": "wednesday", "start_time": "09:30", "end_time": "12:30"},
    ],
}


@pytest.fixture
def app(server: GatewayServer, callback: CallbackServer) -> RegisteredApp:
    return server.register_client(name="Scheduling App", redirect_uris=[callback.url],
                                  scopes=SCOPE.split(), legacy_no_pkce=True)


def linked(server: GatewayServer, app: RegisteredApp, callback: CallbackServer
           ) -> pycronofy.Client:
    client = sdk_client(server, app)
    got = consent_over_http(client.user_auth_link(callback.url, scope=SCOPE, state="s"),
                            server, callback)
    client.get_authorization_from_code(got["code"], redirect_uri=callback.url)
    return client


def test_pycronofy_availability_rules(server: GatewayServer, app: RegisteredApp,
                                      callback: CallbackServer) -> None:
    client = linked(server, app, callback)
    calendar_id = eventually(client.list_calendars)[0]["calendar_id"]  # the first sync
    rule = RULE | {"calendar_ids": [calendar_id]}
    assert client.upsert_availability_rule(rule) == rule
    assert client.get_availability_rule("default") == rule
    evening = RULE | {"availability_rule_id": "evenings", "tzid": "Europe/London",
                      "weekly_periods": [{"day": "friday", "start_time": "18:00",
                                          "end_time": "24:00"}]}
    assert client.upsert_availability_rule(evening) == evening
    assert client.list_availability_rules() == [rule, evening]
    client.delete_availability_rule("evenings")
    assert client.list_availability_rules() == [rule]
    with pytest.raises(PyCronofyRequestError) as raised:
        client.get_availability_rule("evenings")
    assert raised.value.response.status_code == 404
    with pytest.raises(PyCronofyRequestError) as raised:
        client.upsert_availability_rule(RULE | {"weekly_periods": [
            {"day": "monday", "start_time": "25:00", "end_time": "26:00"}]})
    assert raised.value.response.status_code == 422
    assert list(raised.value.response.json()["errors"]) == ["weekly_periods[0].start_time"]


def test_node_sdk_availability_rules_and_periods(server: GatewayServer, app: RegisteredApp,
                                                 callback: CallbackServer) -> None:
    token = linked(server, app, callback).auth.access_token
    sdk = NodeSdk(server.url, {"client_id": app.client_id, "client_secret": app.secret,
                               "access_token": token})
    upserted, listed, read, deleted, gone = sdk.calls([
        ("upsertAvailabilityRule", RULE),
        ("listAvailabilityRules", {}),
        ("readAvailabilityRule", {"availability_rule_id": "default"}),
        ("deleteAvailabilityRule", {"availability_rule_id": "default"}),
        ("readAvailabilityRule", {"availability_rule_id": "default"}),
    ])
    assert upserted.unwrap() == {"availability_rule": RULE}
    assert listed.unwrap() == {"availability_rules": [RULE]}
    assert read.unwrap() == {"availability_rule": RULE}
    assert deleted.ok and gone.status == 404

    periods = [("upsertAvailablePeriod", {
        "available_period_id": f"slot-{n:03d}", "start": f"2031-05-{1 + n % 28:02d}T09:00:00Z",
        "end": f"2031-05-{1 + n % 28:02d}T10:00:00Z"}) for n in range(105)]
    assert all(result.ok for result in sdk.calls(periods))
    first = sdk.call("listAvailablePeriods", {"tzid": "Etc/UTC"}).unwrap()
    assert first["pages"]["current"] == 1 and first["pages"]["total"] == 2
    # The SDK appends its options to next_page as a query string: that must not matter.
    second = sdk.call("listAvailablePeriods",
                      {"next_page": first["pages"]["next_page"]}).unwrap()
    ids = sorted(p["available_period_id"] for p in first["available_periods"]
                 + second["available_periods"])
    assert ids == [f"slot-{n:03d}" for n in range(105)]
    localized = sdk.call("listAvailablePeriods", {
        "from": "2031-05-02", "to": "2031-05-03", "tzid": "Europe/Paris",
        "localized_times": True}).unwrap()
    assert {p["start"] for p in localized["available_periods"]} == {
        "2031-05-02T11:00:00+02:00"}
    bad = sdk.call("upsertAvailablePeriod", {"available_period_id": "x",
                                             "start": "2031-05-02T10:00:00Z",
                                             "end": "2031-05-02T09:00:00Z"})
    assert bad.status == 422 and list(bad.body["errors"]) == ["end"]
    one, every = sdk.calls([
        ("deleteAvailablePeriods", {"available_period_id": "slot-000"}),
        ("deleteAvailablePeriods", {"delete_all": True}),
    ])
    assert one.ok and every.ok
    assert sdk.call("listAvailablePeriods", {}).unwrap()["available_periods"] == []


def sequence_question(member: str) -> tuple[list[dict], list[dict], list[tuple[str, str]]]:
    """Two events for one member tomorrow 09:00-12:00 UTC: an hour, then half an hour 30 to
    45 minutes after it; and the sequences that answer it."""
    day = (datetime.now(UTC) + timedelta(days=1)).replace(hour=0, minute=0, second=0,
                                                          microsecond=0)

    def at(hours: float) -> str:
        return (day + timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M:%SZ")

    group = {"members": [member], "required": "all"}
    steps = [{"sequence_id": "interview", "ordinal": 1, "participants": [dict(group)],
              "required_duration": 60, "start_interval": 60},
             {"sequence_id": "debrief", "ordinal": 2, "participants": [dict(group)],
              "required_duration": 30, "start_interval": 30,
              "buffer": {"before": {"minimum": 30, "maximum": 45}}}]
    periods = [{"start": at(9), "end": at(12)}]
    return steps, periods, [(at(9), at(10.5)), (at(10), at(11.5))]


def test_pycronofy_sequenced_availability(server: GatewayServer, app: RegisteredApp,
                                          callback: CallbackServer) -> None:
    client = linked(server, app, callback)
    sub = client.account()["account_id"]
    eventually(client.list_calendars)  # the first sync: the member's busy time is known
    steps, periods, expected = sequence_question(sub)
    found = client.sequenced_availability(sequence=steps, available_periods=periods)
    assert [(s["sequence"][0]["start"], s["sequence"][1]["start"]) for s in found] == expected
    assert [item["sequence_id"] for item in found[0]["sequence"]] == ["interview", "debrief"]
    assert found[0]["sequence"][1]["participants"] == [{"sub": sub}]


def test_node_sdk_sequenced_availability(server: GatewayServer, app: RegisteredApp,
                                         callback: CallbackServer) -> None:
    client = linked(server, app, callback)
    sub = client.account()["account_id"]
    eventually(client.list_calendars)
    steps, periods, expected = sequence_question(sub)
    for item in steps:  # the Node SDK sends what it is given: Cronofy's Duration objects
        item["required_duration"] = {"minutes": item["required_duration"]}
        item["start_interval"] = {"minutes": item["start_interval"]}
        item["participants"] = [{"members": [{"sub": sub}], "required": "all"}]
    steps[1]["buffer"] = {"before": {"minimum": {"minutes": 30}, "maximum": {"minutes": 45}}}
    sdk = NodeSdk(server.url, {"client_id": app.client_id, "client_secret": app.secret,
                               "access_token": client.auth.access_token})
    answer = sdk.call("sequencedAvailability", {"sequence": steps,
                                                "query_periods": periods}).unwrap()
    assert [(s["sequence"][0]["start"], s["sequence"][1]["start"])
            for s in answer["sequences"]] == expected

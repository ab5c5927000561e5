"""Per-event ``subscriptions`` on upserts (issue 13; Cronofy's Conferencing Services push
notifications): validated into a 422 naming ``subscriptions``, their ``uri`` checked like a
channel's callback_url, and kept with the event's desired state (given: replaces the list;
omitted: kept; ``[]``: clears), through the memory provider."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from gateway.domain.desired import DesiredEvent, Subscription
from gateway.domain.managed import managed_context
from gateway.domain.sealing import unseal
from gateway.persistence.tables import managed_events
from tests.integration.test_api_writes import body, errors_of, setup  # noqa: F401  (fixture)
from tests.support.outbound import LOOPBACK_NETWORKS

HOOK = "https://127.0.0.1:9/hooks/conferencing"
ASSIGNED = [{"type": "conferencing_assigned"}]


@pytest.fixture
def settings(settings):
    return settings.replace(outbound_allow_networks=LOOPBACK_NETWORKS)


def sub(uri: str = HOOK, interactions=ASSIGNED, **more):
    return {"type": "webhook", "uri": uri, "interactions": interactions, **more}


@pytest.mark.parametrize(("subscriptions", "key"), [
    ({"type": "webhook"}, "errors.invalid"),  # not a list
    ([sub()] * 11, "errors.invalid"),  # over ten
    (["https://example.com/"], "errors.invalid"),
    ([sub(type="email")], "errors.unsupported"),
    ([sub(interactions=[{"type": "conferencing_failing"}])], "errors.unsupported"),
    ([sub(interactions=[{"type": "event_start"}])], "errors.unsupported"),
    ([sub(interactions=[])], "errors.invalid"),
    ([sub(interactions=None)], "errors.invalid"),
    ([sub(uri=None)], "errors.invalid"),
    ([sub(uri="https://127.0.0.1/a b")], "errors.invalid"),
    ([sub(uri="http://127.0.0.1:9/hook")], "errors.https_required"),
    ([sub(uri="ftp://127.0.0.1/hook")], "errors.invalid"),
    ([sub(uri="https://user:pw@127.0.0.1:9/hook")], "errors.invalid"),
    ([sub(uri="https://169.254.169.254/latest")], "errors.forbidden_address"),
])
def test_bad_subscriptions_are_a_422_naming_them(http, gateway, setup,  # noqa: F811
                                                 subscriptions, key):
    headers, calendar_id, *_ = setup
    r = http.post(f"/v1/calendars/{calendar_id}/events", headers=headers,
                  json=body(subscriptions=subscriptions))
    assert errors_of(r) == {"subscriptions": [key]}
    with gateway.engine.connect() as conn:  # refused before anything was recorded
        assert conn.execute(select(managed_events.c.id)).first() is None


def stored(gateway, subject: str, calendar_id: str) -> DesiredEvent:
    with gateway.engine.connect() as conn:
        row = conn.execute(select(managed_events.c.desired).where(
            managed_events.c.calendar_id == calendar_id,
            managed_events.c.event_id == "e1")).one()
    key = gateway.writes.keys.key(subject)
    return DesiredEvent.from_stored(unseal(key, row.desired, managed_context(calendar_id,
                                                                               "e1")))


def test_subscriptions_are_kept_replaced_and_cleared(http, gateway, setup):  # noqa: F811
    headers, calendar_id, _name, _cal, profile = setup

    def upsert(**changes) -> DesiredEvent:
        r = http.post(f"/v1/calendars/{calendar_id}/events", headers=headers,
                      json=body(**changes))
        assert r.status_code == 202, r.text
        return stored(gateway, profile.subject, calendar_id)

    doubled = ASSIGNED * 2  # a repeated interaction is one
    assert upsert(subscriptions=[sub(interactions=doubled)]).subscriptions == (
        Subscription(HOOK, ("conferencing_assigned",)),)
    assert upsert(description="kept").subscriptions == (
        Subscription(HOOK, ("conferencing_assigned",)),)
    other = "https://127.0.0.2:9/other"
    assert upsert(subscriptions=[sub(uri=other)]).subscriptions == (
        Subscription(other, ("conferencing_assigned",)),)
    cleared = upsert(subscriptions=[])
    assert cleared.subscriptions == ()
    assert "subscriptions" not in cleared.to_stored()  # nothing stored for none
    assert cleared.description == "kept"

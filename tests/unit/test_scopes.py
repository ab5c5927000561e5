"""The scope catalogue (oauth_server/scopes.py): pure functions behind OAUTH.md 21, 73-75, 90
and API.md s2.6."""

from __future__ import annotations

import pytest

from oauth_server import scopes


def test_parse_splits_on_any_whitespace_keeps_order_and_drops_repeats():
    assert scopes.parse("read_events  create_event\tread_events") == ["read_events",
                                                                      "create_event"]
    assert scopes.parse(None) == [] and scopes.parse("  ") == []


def test_validate_refuses_empty_and_unknown_scopes():
    """OAUTH.md 21."""
    assert scopes.validate("read_account read_write") == ["read_account", "read_write"]
    for bad in (None, "", "read_events admin", "READ_EVENTS", "read_events,create_event"):
        with pytest.raises(scopes.ScopeError):
            scopes.validate(bad)


def test_aggregates_expand_as_api_md_decides():
    """API.md decisions table."""
    assert scopes.expand(["read_write"]) == frozenset(scopes.INDIVIDUAL) - {"read_resources"}
    assert scopes.expand(["read_only"]) == {"read_account", "list_calendars", "read_events",
                                            "read_free_busy"}
    assert scopes.expand(["write_only"]) == {"create_event", "delete_event"}
    assert scopes.expand(["free_busy_write"]) == {"read_free_busy", "create_event",
                                                  "delete_event"}


def test_read_events_implies_read_free_busy():
    assert scopes.allows(["read_events"], "read_free_busy")
    assert not scopes.allows(["read_free_busy"], "read_events")


def test_unknown_scopes_carry_nothing():
    assert scopes.expand(["admin", "read_account"]) == {"read_account"}
    assert not scopes.allows(["admin"], "admin")


def test_allows_checks_the_individual_scope():
    """OAUTH.md 90: the API's scope check."""
    assert scopes.allows(["read_only"], "read_account")
    assert not scopes.allows(["list_calendars"], "read_account")
    assert not scopes.allows(["write_only"], "read_events")


def test_within_is_a_subset_check_on_expansions():
    """OAUTH.md 73-75: narrowing is allowed, widening is not."""
    assert scopes.within(["read_account"], ["read_account", "list_calendars"])
    assert scopes.within(["read_only"], ["read_write"])
    assert scopes.within(["read_free_busy"], ["read_events"])
    assert not scopes.within(["read_write"], ["read_only"])
    assert not scopes.within(["read_events"], ["read_free_busy"])
    assert scopes.within([], ["read_account"])


def test_describe_says_each_power_once_in_words():
    """OAUTH.md 35: each scope in words; read_free_busy not repeated under read_events."""
    may, promises = scopes.describe(["read_events", "create_event"])
    assert scopes.INDIVIDUAL["read_events"] in may
    assert scopes.INDIVIDUAL["create_event"] in may
    assert scopes.INDIVIDUAL["read_free_busy"] not in may
    assert any("only change or delete events it creates" in p for p in promises)
    may, promises = scopes.describe(["read_free_busy"])
    assert may == [scopes.INDIVIDUAL["read_free_busy"]]
    assert any("only when you are busy" in p for p in promises)
    _, promises = scopes.describe(["write_only"])
    assert any("never your other events" in p for p in promises)
    assert all(promises[-1].startswith("You can disconnect") for promises in
               (scopes.describe([s])[1] for s in scopes.KNOWN))


def test_read_resources_is_an_extension_no_aggregate_carries():
    """Its upstream permission needs an administrator: read_write must not ask for it."""
    assert scopes.validate("read_resources list_calendars") == ["read_resources",
                                                                 "list_calendars"]
    assert scopes.expand(["read_resources"]) == {"read_resources"}
    for aggregate in scopes.AGGREGATES:
        assert not scopes.allows([aggregate], "read_resources")
    assert not scopes.within(["read_resources"], ["read_write"])
    may, promises = scopes.describe(["read_resources"])
    assert may == [scopes.INDIVIDUAL["read_resources"]]
    assert "meeting rooms" in may[0]
    assert any("never their bookings" in p for p in promises)

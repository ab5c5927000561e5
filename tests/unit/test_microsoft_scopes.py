"""The Microsoft scope table: least privilege per Calgate scope, nesting, the granted-scope
check."""

from __future__ import annotations

import pytest

from providers.microsoft import scopes

FREE_BUSY_ONLY = ("read_account", "list_calendars", "read_free_busy")


def test_free_busy_only_asks_for_read_basic_and_nothing_that_reads_bodies_or_mail():
    asked = scopes.requested_scopes(FREE_BUSY_ONLY)
    assert asked == ("Calendars.ReadBasic", "offline_access", "openid", "profile")
    assert not any("Mail" in s or s in ("Calendars.Read", "User.Read") for s in asked)


def test_reads_need_calendars_read_and_writes_readwrite():
    assert scopes.graph_scopes(("read_events",)) == ("Calendars.Read",)
    assert scopes.graph_scopes(("read_events", "create_event")) == ("Calendars.ReadWrite",)
    assert scopes.graph_scopes(("change_participation_status",)) == ("Calendars.ReadWrite",)


def test_shared_calendars_widen_to_the_shared_permissions():
    assert scopes.graph_scopes(("read_events",), other_calendars=True) == (
        "Calendars.Read.Shared",)
    assert scopes.graph_scopes(("read_free_busy",), other_calendars=True) == (
        "Calendars.ReadBasic",)


def test_every_row_is_a_calendars_permission_and_never_a_reserved_scope():
    for rule in scopes.SCOPE_TABLE:
        for permission in (rule.owned, rule.any_calendar):
            # The one exception: rooms are places, asked for only with read_resources.
            expected = "Place." if rule.calgate_scope == "read_resources" else "Calendars."
            assert permission.startswith(expected), rule
            assert permission not in scopes.ALWAYS
        assert rule.methods and rule.why
    assert set(scopes.ALWAYS) == {"offline_access", "openid", "profile"}


def test_an_unknown_calgate_scope_is_an_error():
    with pytest.raises(ValueError, match="no Microsoft Graph permission"):
        scopes.graph_scopes(("read_mail",))


def test_granted_scopes_compare_without_prefix_and_case():
    needed = scopes.graph_scopes(("read_events",))
    granted = ["https://graph.microsoft.com/calendars.read", "openid"]
    assert scopes.missing_scopes(needed, granted) == ()
    assert scopes.missing_scopes(("Calendars.ReadBasic",), ["Calendars.ReadWrite"]) == ()
    assert scopes.missing_scopes(("Calendars.ReadWrite",), ["Calendars.Read"]) == (
        "Calendars.ReadWrite",)
    assert scopes.missing_scopes(("Calendars.Read",), ["Calendars.ReadBasic"]) == (
        "Calendars.Read",)


def test_descriptions_cover_the_table():
    for rule in scopes.SCOPE_TABLE:
        assert scopes.describe_scope(rule.owned) != rule.owned
    assert scopes.describe_scope("https://graph.microsoft.com/Calendars.Read") == \
        "Read your calendars"



def test_rooms_need_place_read_all_and_nothing_else_asks_for_it():
    assert scopes.graph_scopes(("read_resources",)) == ("Calendars.ReadBasic",
                                                        "Place.Read.All")
    everything_else = [r.calgate_scope for r in scopes.SCOPE_TABLE
                       if r.calgate_scope != "read_resources"]
    assert scopes.PLACE_READ_ALL not in scopes.graph_scopes(everything_else)
    assert scopes.describe_scope("Place.Read.All") == "Read all company places"

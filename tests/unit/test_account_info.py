"""Whose account it is, as the providers' pure mappings read it (issue 13)."""

from __future__ import annotations

from providers.google.mapping import account_from_primary
from providers.microsoft.mapping import zone_from_schedule


def test_google_consumer_and_workspace_accounts():
    consumer = account_from_primary({"id": "ada@gmail.com", "summary": "Ada Lovelace",
                                     "timeZone": "Europe/London", "primary": True})
    assert (consumer.name, consumer.tzid, consumer.service) == (
        "Ada Lovelace", "Europe/London", "google")
    assert account_from_primary({"id": "a@GoogleMail.com"}).service == "google"
    workspace = account_from_primary({"id": "bob@example.org", "summary": "bob@example.org"})
    # Older accounts title the primary calendar with the address: that is no name.
    assert (workspace.name, workspace.tzid, workspace.service) == (None, None, "gsuite")
    assert (workspace.profile_name, workspace.upstream_id) == ("bob@example.org",) * 2


def test_microsoft_zone_from_working_hours():
    assert zone_from_schedule({"workingHours": {"timeZone": {
        "name": "Pacific Standard Time"}}}) == "America/Los_Angeles"
    assert zone_from_schedule({"workingHours": {"timeZone": {
        "name": "Europe/Berlin"}}}) == "Europe/Berlin"
    assert zone_from_schedule({"workingHours": {"timeZone": {
        "name": "tzone://Microsoft/Custom"}}}) is None
    assert zone_from_schedule({"error": {"message": "no"}}) is None
    assert zone_from_schedule({}) is None

"""What each provider does with the upsert fields that differ between providers, in words,
for the API reference (``gateway.api.openapi`` renders these notes; the gateway itself names
no provider). The machine-readable half is ``ProviderEntry.write_fields``."""

from __future__ import annotations

FIELD_SUPPORT: dict[str, str] = {
    "location": (
        "Coordinates: CalDAV GEO; Microsoft location.coordinates; Google has none, so "
        "Calgate keeps them in the event's private extended properties and gives them back "
        "on reads with include_geo=true"),
    "url": "Google source.url, CalDAV URL; Microsoft calendars have no event URL: a 422",
    "extended_transparency": (
        "Microsoft writes every value (showAs: busy, free, tentative, oof, "
        "workingElsewhere); Google and CalDAV only opaque and transparent, the others are "
        "a 422 there"),
    "event_private": "Google visibility private, Microsoft sensitivity private, CalDAV "
                     "CLASS:PRIVATE",
    "reminders": "Google keeps the first 5, Microsoft the first only, CalDAV all (VALARMs)",
    "color": (
        "Google: the nearest of its 11 event colours (colorId); CalDAV: the nearest CSS "
        "colour name (COLOR, RFC 7986); Microsoft colours events only through the mailbox's "
        "named categories: a 422 there"),
    "attendees": (
        "Google with sendUpdates=all when the event has guests or the write removed one "
        "(otherwise none); Microsoft: Graph itself sends invitations and cancellations; "
        "CalDAV: a server with scheduling (RFC 6638) sends them, one without sends nothing"),
    "url_read": "where the provider has one (Google, CalDAV)",
}

"""What Google events add to Calgate's reads when a client asks (a provider read extra).

Cronofy's ``google_event_ids=true`` adds ``google_event_id``: the id Google's own API knows
the event by. The mirror's instance id is exactly that: the event's id, or for an occurrence
of a series Google's instance id (``<series id>_<original start>``), which events.get takes.
"""

from __future__ import annotations


def google_event_id(resource_id: str, instance_id: str) -> str | None:
    """The Google Calendar API's id of a mirrored Google event."""
    return instance_id or None

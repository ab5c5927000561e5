"""The mirror's sealed text is typed, and its sealed JSON form is the one older rows hold."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.exceptions import InvalidTag

from gateway.domain.mirror import text_of
from gateway.domain.sealing import EventText, TextPerson, seal, seal_text, unseal_text
from providers.model import Event, Person

START = datetime(2030, 5, 1, 9, tzinfo=UTC)


def event(**changes):
    values = {"resource_id": "r1", "instance_id": "r1", "start": START,
              "end": START + timedelta(hours=1), "summary": "Planning",
              "description": "notes", "location": "Room 4",
              "attendees": (Person("a@example.com", "A", "accepted"),),
              "organizer": Person("o@example.com", None, "accepted")}
    return Event(**(values | changes))


def test_the_stored_form_is_the_one_older_releases_sealed():
    stored = text_of(event()).to_stored()
    assert stored == {
        "summary": "Planning", "description": "notes", "location": "Room 4", "url": None,
        "categories": [], "participation_status": event().participation_status,
        "attendees": [{"email": "a@example.com", "display_name": "A", "status": "accepted"}],
        "organizer": {"email": "o@example.com", "display_name": None, "status": "accepted"}}
    meeting = text_of(event(meeting_url="https://meet.example/abc")).to_stored()
    assert meeting["meeting_url"] == "https://meet.example/abc"


def test_sealed_text_round_trips_and_is_bound_to_its_row():
    key = os.urandom(32)
    text = text_of(event(categories=("work",)))
    blob = seal_text(key, text, "cal|r1")
    assert unseal_text(key, blob, "cal|r1") == text
    with pytest.raises(InvalidTag):
        unseal_text(key, blob, "cal|r2")


def test_an_older_row_with_fewer_keys_still_opens():
    key = os.urandom(32)
    blob = seal(key, {"summary": "Old", "attendees": [{"email": "x@example.com"}]}, "c|i")
    assert unseal_text(key, blob, "c|i") == EventText(
        summary="Old", attendees=(TextPerson("x@example.com"),))

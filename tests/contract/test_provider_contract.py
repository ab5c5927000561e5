"""The provider contract, proven against every provider within its declared capabilities."""

from __future__ import annotations

from datetime import UTC

import pytest

from providers.errors import CursorExpired, Forbidden, NotFound
from providers.model import EventDraft, EventPatch, SyncCursor, TimeWindow
from tests.contract.harness import SERIES_EXPECTED_STARTS, WINDOW, at
from tests.support import aio


def run(coro):
    return aio.run(coro)


def starts(changes, uid):
    return sorted(e.start for e in changes.changed.get(uid, []))


def test_verify_names_the_account(h):
    info = run(h.provider.verify())
    assert info.profile_name and info.upstream_id


def test_lists_the_calendar(h):
    calendars = run(h.provider.list_calendars())
    assert h.calendar_id in [c.calendar_id for c in calendars]


def test_initial_sync_is_a_full_listing_with_a_cursor(h):
    h.upstream_add("single-1", "Dentist", at(10, 9))
    changes = run(h.provider.sync(h.calendar_id, None, WINDOW))
    assert changes.full
    assert changes.cursor is not None
    (event,) = changes.changed["single-1"]
    assert event.summary == "Dentist"
    assert event.start == at(10, 9) and event.end == at(10, 10)


def test_incremental_sync_reports_edits_and_deletions(h):
    h.upstream_add("keep", "Keep", at(10, 9))
    h.upstream_add("edit", "Before", at(11, 9))
    h.upstream_add("drop", "Drop", at(12, 9))
    first = run(h.provider.sync(h.calendar_id, None, WINDOW))
    h.upstream_rename("edit", "After")
    h.upstream_remove("drop")
    second = run(h.provider.sync(h.calendar_id, first.cursor, WINDOW))
    if second.full:  # a provider without incremental sync lists everything again
        assert "drop" not in second.changed
    else:
        assert "keep" not in second.changed
        assert "drop" in second.deleted
    assert [e.summary for e in second.changed["edit"]] == ["After"]


def test_an_unusable_cursor_means_a_full_resync(h):
    if not h.provider.capabilities.incremental_sync:
        pytest.skip("no incremental sync")
    with pytest.raises(CursorExpired):
        run(h.provider.sync(h.calendar_id, SyncCursor("not-a-real-cursor"), WINDOW))


def test_recurring_series_is_expanded_across_dst_with_exdate_and_override(h):
    h.upstream_add_series("series-1")
    changes = run(h.provider.sync(h.calendar_id, None, WINDOW))
    instances = changes.changed["series-1"]
    assert sorted(e.start for e in instances) == list(SERIES_EXPECTED_STARTS)
    assert all(e.recurring for e in instances)
    assert len({e.instance_id for e in instances}) == len(instances)


def test_free_busy_counts_opaque_events_only(h):
    h.upstream_add("busy", "Busy", at(15, 9))
    h.upstream_add("free", "Free", at(15, 11), transparent=True)
    window = TimeWindow(at(15, 0), at(16, 0))
    blocks = run(h.provider.free_busy([h.calendar_id], window))
    busy = sorted(b.start for cal, b in blocks if cal == h.calendar_id and b.status == "busy")
    assert busy == [at(15, 9)]


def draft(key: str, summary: str = "Mentoring session") -> EventDraft:
    return EventDraft(managed_key=key, summary=summary, start=at(20, 14), end=at(20, 15),
                      description="Bring questions", location="Room 4")


def test_managed_event_write_is_idempotent_and_round_trips(h):
    if not h.writable:
        with pytest.raises(Forbidden):
            run(h.provider.put_event(h.calendar_id, draft("k1"), None, None))
        return
    written = run(h.provider.put_event(h.calendar_id, draft("k1"), None, None))
    # A retry after a lost answer finds the same event instead of making a second one.
    again = run(h.provider.put_event(h.calendar_id, draft("k1"), None, None))
    assert again.resource_id == written.resource_id
    changes = run(h.provider.sync(h.calendar_id, None, WINDOW))
    mine = [e for events in changes.changed.values() for e in events if e.managed_key == "k1"]
    assert len(mine) == 1
    assert (mine[0].summary, mine[0].description, mine[0].location) == (
        "Mentoring session", "Bring questions", "Room 4")
    assert mine[0].start == at(20, 14)


def test_managed_event_update_and_delete(h):
    if not h.writable:
        pytest.skip("read-only provider")
    written = run(h.provider.put_event(h.calendar_id, draft("k2"), None, None))
    run(h.provider.put_event(h.calendar_id, draft("k2", "Moved"), written.resource_id, None))
    changes = run(h.provider.sync(h.calendar_id, None, WINDOW))
    assert [e.summary for e in changes.changed[written.resource_id]] == ["Moved"]
    run(h.provider.delete_event(h.calendar_id, written.resource_id, None))
    run(h.provider.delete_event(h.calendar_id, written.resource_id, None))  # already gone: fine
    changes = run(h.provider.sync(h.calendar_id, None, WINDOW))
    assert written.resource_id not in changes.changed


def test_external_event_patch_changes_only_the_fields_sent(h):
    """patch_event (elevated permissions): the owner's event, by its upstream id; what the
    patch does not name stays as the owner made it."""
    if not h.writable:
        with pytest.raises(Forbidden):
            run(h.provider.patch_event(h.calendar_id, "ext", EventPatch(summary="No")))
        return
    h.upstream_add("ext", "Owner's meeting", at(13, 9), transparent=True)
    run(h.provider.patch_event(h.calendar_id, "ext", EventPatch(
        summary="Moved by the app", start=at(13, 11), end=at(13, 12))))
    changes = run(h.provider.sync(h.calendar_id, None, WINDOW))
    (event,) = changes.changed["ext"]
    assert (event.summary, event.start, event.end) == ("Moved by the app", at(13, 11),
                                                       at(13, 12))
    assert event.transparency == "transparent" and event.managed_key is None
    run(h.provider.patch_event(h.calendar_id, "ext", EventPatch(description="Notes")))
    (event,) = run(h.provider.sync(h.calendar_id, None, WINDOW)).changed["ext"]
    assert (event.summary, event.description) == ("Moved by the app", "Notes")
    with pytest.raises(NotFound):
        run(h.provider.patch_event(h.calendar_id, "never-made", EventPatch(summary="No")))


def test_all_day_events_are_dates_with_exclusive_end(h):
    if not h.writable:
        pytest.skip("read-only provider")
    from datetime import date

    allday = EventDraft(managed_key="k3", summary="Conference", start=date(2027, 3, 24),
                        end=date(2027, 3, 26))
    written = run(h.provider.put_event(h.calendar_id, allday, None, None))
    changes = run(h.provider.sync(h.calendar_id, None, WINDOW))
    (event,) = changes.changed[written.resource_id]
    assert event.start == date(2027, 3, 24) and event.end == date(2027, 3, 26)
    assert event.all_day


def test_times_are_aware_utc(h):
    h.upstream_add("tz", "Zoned", at(9, 9))
    changes = run(h.provider.sync(h.calendar_id, None, WINDOW))
    (event,) = changes.changed["tz"]
    assert event.start.tzinfo is not None
    assert event.start.astimezone(UTC) == at(9, 9)


"""Calendar sync cursors and their epoch.

A cursor is reset when the upstream says changes were lost (a push ``resync``) or when the
grant widened: the calendar's next sync is then a full one. A sync already running read the
old cursor; when it ends it would save the cursor its round produced over the reset, and the
full sync would never happen. So every reset moves the calendar's ``cursor_epoch`` on, and a
sync saves its cursor only if the epoch it started from is still the calendar's
(:func:`save_cursor`).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ColumnElement, Connection, update

from .tables import calendars


def reset_cursors(conn: Connection, where: ColumnElement[bool]) -> None:
    """Forget the cursor of every calendar ``where`` selects: its next sync is a full one."""
    conn.execute(update(calendars).where(where).values(
        cursor=None, cursor_epoch=calendars.c.cursor_epoch + 1))


def save_cursor(conn: Connection, calendar_id: str, epoch: int, cursor: str | None,
                synced_at: datetime) -> bool:
    """Keep the cursor a sync that started at ``epoch`` ended with; False (and the cursor
    left as it is) when it was reset meanwhile."""
    saved = conn.execute(update(calendars).where(
        calendars.c.id == calendar_id, calendars.c.cursor_epoch == epoch,
    ).values(cursor=cursor, synced_at=synced_at)).rowcount == 1
    if not saved:
        conn.execute(update(calendars).where(calendars.c.id == calendar_id)
                     .values(synced_at=synced_at))
    return saved

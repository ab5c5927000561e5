"""The account's mirror generation: a counter bumped in the same transaction as every change
to what its reads show (event rows, calendars, profiles). A read page rendered under one
generation is never served once the counter has moved (services/pagecache.py)."""

from __future__ import annotations

from sqlalchemy import Connection, select, update

from .tables import accounts, calendars, profiles


def bump_generation(conn: Connection, *, account_id: str | None = None,
                    profile_id: str | None = None, calendar_id: str | None = None) -> None:
    """Mark the account's mirror changed, inside the transaction that changed it: read pages
    cached under the old generation are never served again."""
    if account_id is None:
        owner = select(profiles.c.account_id)
        if profile_id is not None:
            owner = owner.where(profiles.c.id == profile_id)
        else:
            owner = owner.join(calendars, calendars.c.profile_id == profiles.c.id).where(
                calendars.c.id == calendar_id)
        account_id = conn.execute(owner).scalar()
        if account_id is None:
            return
    conn.execute(update(accounts).where(accounts.c.id == account_id)
                 .values(mirror_generation=accounts.c.mirror_generation + 1))


def read_generation(conn: Connection, account_id: str) -> int | None:
    """The account's current generation; None when there is no such account."""
    value = conn.execute(select(accounts.c.mirror_generation).where(
        accounts.c.id == account_id)).scalar()
    return None if value is None else int(value)

"""An account's calendars: listing them from the mirror, creating one upstream (API.md s4)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from anyio import to_thread
from sqlalchemy import Connection, Engine, insert, select, update

from providers.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    ProviderError,
    RateLimited,
    Unauthorized,
)
from providers.model import Calendar
from providers.protocol import CalendarProvider
from providers.registry import ProviderOptions, UnknownProvider, find_entry

from ..domain.external import PERMISSION_SANDBOX
from ..domain.ids import new_id
from ..domain.opener import ProfileOpener
from ..persistence.generation import bump_generation
from ..persistence.tables import calendars, profiles
from ..secrets import SecretStore


class CalendarError(Exception):
    """Creating a calendar failed in a way the API reports to the client."""


class ProfileNotFound(CalendarError):
    """No such profile under this account."""


class DuplicateCalendarName(CalendarError):
    """The provider already has a calendar of that name and refuses another."""


class InvalidCalendarName(CalendarError):
    """The provider refused the name (or colour) as malformed."""


class CreateNotSupported(CalendarError):
    """The profile's provider cannot create calendars."""


class ProfileNeedsRelink(CalendarError):
    """The profile's upstream credentials no longer work."""


class UpstreamUnavailable(CalendarError):
    """The provider failed or asked us to slow down; try again later."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def calendar_body(row: Any) -> dict[str, Any]:
    """A calendar as ``GET /v1/calendars`` lists it; ``row`` joins calendars and profiles."""
    return {
        "provider_name": row.provider_name, "profile_id": row.profile_id,
        "profile_name": row.profile_name, "calendar_id": row.id, "calendar_name": row.name,
        "calendar_readonly": bool(row.readonly), "calendar_deleted": bool(row.deleted),
        "calendar_primary": bool(row.primary),
        "calendar_integrated_conferencing_available": _conferencing(row.provider_name),
        "calendar_attachments_available": False,
        "permission_level": row.permission_level or PERMISSION_SANDBOX,
        "calendar_color": row.color,
    }


def _conferencing(provider_name: str) -> bool:
    entry = find_entry(provider_name)
    return entry is not None and entry.integrated_conferencing


def save_calendar(conn: Connection, profile_id: str, cal: Calendar, now: datetime) -> str:
    """Upsert one upstream calendar into the mirror's calendars table; returns its ``cal_`` id.

    The same row shape as the sync engine's ``_save_calendars``, so the next sync adopts it.
    """
    values = {"name": cal.name, "readonly": cal.readonly, "primary": cal.primary,
              "color": cal.color, "tzid": cal.tzid, "deleted": False}
    found = conn.execute(select(calendars.c.id).where(
        calendars.c.profile_id == profile_id, calendars.c.upstream_id == cal.calendar_id)
    ).scalar()
    bump_generation(conn, profile_id=profile_id)
    if found is not None:
        conn.execute(update(calendars).where(calendars.c.id == found).values(**values))
        return str(found)
    calendar_id = new_id("cal_")
    conn.execute(insert(calendars).values(id=calendar_id, profile_id=profile_id,
                                          upstream_id=cal.calendar_id, created_at=now,
                                          **values))
    return calendar_id


_LISTED = (select(calendars, profiles.c.provider_name, profiles.c.profile_name)
           .join(profiles, profiles.c.id == calendars.c.profile_id))


class CalendarService:
    """Lists an account's calendars and creates new ones at the profile's provider."""

    def __init__(self, engine: Engine, secrets: SecretStore,
                 options: ProviderOptions | None = None) -> None:
        self.engine = engine
        self.secrets = secrets
        self.options = options or ProviderOptions()


    @property
    def opener(self) -> ProfileOpener:
        """Opens a profile's account with its credentials (and its upstream app's)."""
        return ProfileOpener(self.secrets, self.options)
    def list_calendars(self, subject: str) -> list[dict[str, Any]]:
        query = _LISTED.where(profiles.c.account_id == subject).order_by(
            profiles.c.created_at, profiles.c.id, calendars.c.created_at, calendars.c.id)
        with self.engine.connect() as conn:
            return [calendar_body(r) for r in conn.execute(query).all()]

    async def create_calendar(self, subject: str, profile_id: str, name: str,
                              color: str | None) -> dict[str, Any]:
        """Create ``name`` upstream, record it in the mirror, and describe it."""
        profile = await to_thread.run_sync(self._profile, subject, profile_id)
        if not profile.connected or not profile.credential_path:
            raise ProfileNeedsRelink(profile_id)
        try:
            provider = await self.opener.open(profile.provider_name, profile.credential_path)
        except UnknownProvider:
            raise CreateNotSupported(profile.provider_name) from None
        try:
            created = await _create(provider, name, color)
        finally:
            await provider.close()
        return await to_thread.run_sync(self._record, profile_id, created)

    def _profile(self, subject: str, profile_id: str) -> Any:
        with self.engine.connect() as conn:
            row = conn.execute(select(profiles).where(
                profiles.c.id == profile_id, profiles.c.account_id == subject)).first()
        if row is None:
            raise ProfileNotFound(profile_id)
        return row

    def _record(self, profile_id: str, cal: Calendar) -> dict[str, Any]:
        with self.engine.begin() as conn:
            calendar_id = save_calendar(conn, profile_id, cal, datetime.now(UTC))
            row = conn.execute(_LISTED.where(calendars.c.id == calendar_id)).one()
        return calendar_body(row)


async def _create(provider: CalendarProvider, name: str, color: str | None) -> Calendar:
    """The provider's error tree, translated once into this service's."""
    if not provider.capabilities.create_calendar:
        raise CreateNotSupported(provider.name)
    try:
        return await provider.create_calendar(name, color)
    except Conflict as exc:
        raise DuplicateCalendarName(name) from exc
    except Unauthorized as exc:
        raise ProfileNeedsRelink(str(exc)) from exc
    except Forbidden as exc:
        raise CreateNotSupported(str(exc)) from exc
    except InvalidInput as exc:
        raise InvalidCalendarName(str(exc)) from exc
    except RateLimited as exc:
        raise UpstreamUnavailable(str(exc), exc.retry_after) from exc
    except ProviderError as exc:
        raise UpstreamUnavailable(str(exc)) from exc

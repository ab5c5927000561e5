"""The organisation's rooms: ``GET /v1/resources`` (Cronofy's List Resources, API.md s11).

Cronofy lists resources to Enterprise Connect service accounts only; Calgate lists them to
an ordinary account's token that carries ``read_resources``, asking the upstream live each
time (nothing is kept): the rooms of every profile whose provider has a room directory
(``capabilities.resources``), merged by address in the profiles' order. Profiles of other
providers (CalDAV, iCloud, ICS) add nothing, so an account with none of those answers an
empty list. The upstream decides who may see its directory (often only an administrator,
or a tenant whose administrator consented): a refusal names the profile.
"""

from __future__ import annotations

from typing import Any

from anyio import to_thread
from sqlalchemy import Engine, select

from providers.errors import Forbidden, NotFound, ProviderError, RateLimited, Unauthorized
from providers.model import Resource
from providers.protocol import CalendarProvider, RoomDirectory
from providers.registry import find_entry

from ..domain.opener import ProfileOpener
from ..persistence.tables import profiles


class ResourceError(Exception):
    """Listing rooms failed at one profile, in a way the API reports to the client."""

    def __init__(self, profile_id: str, message: str = "") -> None:
        super().__init__(message or profile_id)
        self.profile_id = profile_id


class ProfileNeedsRelink(ResourceError):
    """The profile's upstream credentials no longer work."""


class DirectoryRefused(ResourceError):
    """The upstream will not show this account its directory (not an administrator, no
    admin consent, or linked before the app asked for read_resources)."""


class UpstreamUnavailable(ResourceError):
    """The provider failed or asked us to slow down; try again later."""

    def __init__(self, profile_id: str, message: str,
                 retry_after: float | None = None) -> None:
        super().__init__(profile_id, message)
        self.retry_after = retry_after


class ResourceService:
    """Lists the rooms an account's profiles can see at their upstreams."""

    def __init__(self, engine: Engine, opener: ProfileOpener) -> None:
        self.engine = engine
        self.opener = opener

    async def list_resources(self, subject: str) -> list[dict[str, str]]:
        """Cronofy's ``resources`` items, ``{"email", "name"}``, one per address."""
        found: dict[str, dict[str, str]] = {}
        for profile in await to_thread.run_sync(self._with_rooms, subject):
            for room in await self._rooms_of(profile):
                found.setdefault(room.email.casefold(), {"email": room.email,
                                                         "name": room.name})
        return list(found.values())

    def _with_rooms(self, subject: str) -> list[Any]:
        query = select(profiles.c.id, profiles.c.provider_name, profiles.c.connected,
                       profiles.c.credential_path).where(
            profiles.c.account_id == subject).order_by(profiles.c.created_at, profiles.c.id)
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [r for r in rows if _has_rooms(r.provider_name)]

    async def _rooms_of(self, profile: Any) -> list[Resource]:
        if not profile.connected or not profile.credential_path:
            raise ProfileNeedsRelink(profile.id)
        provider = await self.opener.open(profile.provider_name, profile.credential_path)
        try:
            return await _list(provider, profile.id)
        finally:
            await provider.close()


def _has_rooms(provider_name: str) -> bool:
    entry = find_entry(provider_name)
    return entry is not None and entry.implemented and entry.capabilities.resources


async def _list(provider: CalendarProvider, profile_id: str) -> list[Resource]:
    """The provider's error tree, translated once into this service's."""
    if not provider.capabilities.resources or not isinstance(provider, RoomDirectory):
        return []  # this kind of account of the provider has none (a personal one)
    try:
        return await provider.list_resources()
    except Unauthorized as exc:
        raise ProfileNeedsRelink(profile_id, str(exc)) from exc
    except (Forbidden, NotFound) as exc:
        raise DirectoryRefused(profile_id, str(exc)) from exc
    except RateLimited as exc:
        raise UpstreamUnavailable(profile_id, str(exc), exc.retry_after) from exc
    except ProviderError as exc:
        raise UpstreamUnavailable(profile_id, str(exc)) from exc

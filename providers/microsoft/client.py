"""The wire calls to Microsoft Graph v1.0 over async httpx, with the payloads typed so that
``Any`` stops here.

Every call goes through :meth:`GraphClient._send`: the bearer token (refreshed once after a
401), Graph's error answers and httpx's exceptions turned into :mod:`providers.errors`
(:mod:`.errors`), and throttling or transient failures retried after the Retry-After Graph
sent, per mailbox (:mod:`.retry`). Reads ask for UTC times and immutable ids, so an event's
id survives a move between calendars and the mirror never sees it change.
https://learn.microsoft.com/graph/outlook-immutable-id
"""

from __future__ import annotations

import ssl
from typing import Any, Protocol, cast
from urllib.parse import quote

import httpx

from .config import GraphSettings
from .errors import from_response, translated
from .mapping import EXPAND_MANAGED
from .payloads import (
    CalendarsPage,
    EventsPage,
    GraphCalendar,
    GraphEvent,
    GraphRoom,
    RoomsPage,
    ScheduleInformation,
)
from .retry import with_retries

READ_PREFER = 'outlook.timezone="UTC", IdType="ImmutableId"'


class AccessToken(Protocol):
    """Where the client gets a bearer token; ``fresh`` skips any cached one."""

    async def __call__(self, fresh: bool = False) -> str: ...


def tls_context(ca_bundle: str | None) -> ssl.SSLContext:
    """The system's trust store, or only ``ca_bundle`` when one is configured."""
    return ssl.create_default_context(cafile=ca_bundle) if ca_bundle else \
        ssl.create_default_context()


class GraphClient:
    """One mailbox's calls to Graph. ``mailbox`` keys the throttling pause."""

    def __init__(self, settings: GraphSettings, token: AccessToken, mailbox: str, *,
                 user_agent: str = "Calgate",
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.settings = settings
        self.token = token
        self.mailbox = mailbox
        timeout = httpx.Timeout(settings.timeout, connect=settings.connect_timeout)
        self.http = httpx.AsyncClient(
            base_url=settings.graph_root, timeout=timeout, trust_env=False,
            verify=tls_context(settings.ca_bundle), transport=transport,
            headers={"User-Agent": user_agent, "Accept": "application/json"})

    async def close(self) -> None:
        await self.http.aclose()

    async def _send(self, what: str, method: str, url: str, *,
                    params: dict[str, str] | None = None, body: object = None,
                    headers: dict[str, str] | None = None) -> object:
        """One Graph call, retried while throttled or failing; the decoded JSON (None for
        204). Any failure leaves as a :class:`providers.errors.ProviderError`."""
        async def attempt() -> object:
            with translated(what):
                response = await self._once(method, url, params, body, headers, False)
                if response.status_code == 401:  # expired or revoked early: refresh once
                    response = await self._once(method, url, params, body, headers, True)
                if response.status_code >= 400:
                    raise from_response(response, what)
                return response.json() if response.content else None
        return await with_retries(self.mailbox, self.settings.retry_attempts,
                                  self.settings.retry_max_wait, attempt)

    async def _once(self, method: str, url: str, params: dict[str, str] | None, body: object,
                    headers: dict[str, str] | None, fresh: bool) -> httpx.Response:
        bearer = await self.token(fresh)
        return await self.http.request(
            method, url, params=params, json=body,
            headers={"Authorization": f"Bearer {bearer}", **(headers or {})})

    async def _pages(self, what: str, url: str, params: dict[str, str] | None,
                     headers: dict[str, str]) -> tuple[list[GraphEvent], str | None]:
        """Every page of an events listing (nextLink followed verbatim: the window and the
        options are encoded in it); the items and the final deltaLink, if any."""
        items: list[GraphEvent] = []
        next_url: str | None = url
        while next_url:
            page = cast(EventsPage, await self._send(what, "GET", next_url, params=params,
                                                     headers=headers))
            items += page.get("value") or []
            params = None
            next_url = page.get("@odata.nextLink")
            if not next_url:
                return items, page.get("@odata.deltaLink")
        return items, None

    def _read_prefer(self) -> dict[str, str]:
        return {"Prefer": f"odata.maxpagesize={self.settings.page_size}, {READ_PREFER}"}

    # -- calendars ------------------------------------------------------------------------

    async def calendars(self) -> list[GraphCalendar]:
        out: list[GraphCalendar] = []
        url: str | None = "/me/calendars"
        while url:
            page = cast(CalendarsPage, await self._send(
                "calendars.list", "GET", url, headers={"Prefer": READ_PREFER}))
            out += page.get("value") or []
            url = page.get("@odata.nextLink")
        return out

    async def rooms(self) -> list[GraphRoom]:
        """Every room of the tenant (List places, 100 a page by default; the nextLink is
        followed verbatim). https://learn.microsoft.com/graph/api/place-list"""
        out: list[GraphRoom] = []
        url: str | None = "/places/microsoft.graph.room"
        while url:
            page = cast(RoomsPage, await self._send("places.list", "GET", url))
            out += page.get("value") or []
            url = page.get("@odata.nextLink")
        return out

    async def calendar(self, calendar_id: str) -> GraphCalendar:
        return cast(GraphCalendar, await self._send(
            "calendars.get", "GET", f"/me/calendars/{_seg(calendar_id)}",
            headers={"Prefer": READ_PREFER}))

    async def create_calendar(self, body: dict[str, Any]) -> GraphCalendar:
        return cast(GraphCalendar, await self._send("calendars.create", "POST",
                                                    "/me/calendars", body=body))

    # -- events ---------------------------------------------------------------------------

    async def delta(self, calendar_id: str, start: str, end: str,
                    link: str | None) -> tuple[list[GraphEvent], str | None]:
        """A calendarView/delta round: from ``link`` (a stored deltaLink), or a first round
        over [start, end); every item and the new deltaLink."""
        if link:
            return await self._pages("calendarView.delta", link, None, self._read_prefer())
        return await self._pages(
            "calendarView.delta", f"/me/calendars/{_seg(calendar_id)}/calendarView/delta",
            {"startDateTime": start, "endDateTime": end}, self._read_prefer())

    async def view(self, calendar_id: str, start: str, end: str) -> list[GraphEvent]:
        items, _ = await self._pages(
            "calendarView", f"/me/calendars/{_seg(calendar_id)}/calendarView",
            {"startDateTime": start, "endDateTime": end}, self._read_prefer())
        return items

    async def create_event(self, calendar_id: str, body: dict[str, Any]) -> GraphEvent:
        """POST with the body's transactionId: a retry after a lost answer (the retry loop
        or a later job) gets the event the first attempt made."""
        return cast(GraphEvent, await self._send(
            "events.create", "POST", f"/me/calendars/{_seg(calendar_id)}/events", body=body,
            params={"$expand": EXPAND_MANAGED}, headers={"Prefer": READ_PREFER}))

    async def update_event(self, event_id: str, body: dict[str, Any],
                           if_match: str | None) -> GraphEvent:
        return cast(GraphEvent, await self._send(
            "events.update", "PATCH", f"/me/events/{_seg(event_id)}", body=body,
            params={"$expand": EXPAND_MANAGED},
            headers={"Prefer": READ_PREFER, **_if_match(if_match)}))

    async def delete_event(self, event_id: str, if_match: str | None) -> None:
        await self._send("events.delete", "DELETE", f"/me/events/{_seg(event_id)}",
                         headers=_if_match(if_match))

    async def answer(self, event_id: str, action: str, body: dict[str, Any]) -> None:
        await self._send(f"events.{action}", "POST",
                         f"/me/events/{_seg(event_id)}/{action}", body=body)

    async def get_schedule(self, body: dict[str, Any]) -> list[ScheduleInformation]:
        answer = await self._send("calendar.getSchedule", "POST", "/me/calendar/getSchedule",
                                  body=body, headers={"Prefer": READ_PREFER})
        return cast(list[ScheduleInformation],
                    (answer or {}).get("value") or [] if isinstance(answer, dict) else [])

    # -- subscriptions --------------------------------------------------------------------

    async def subscribe(self, body: dict[str, Any]) -> dict[str, Any]:
        return cast(dict[str, Any], await self._send("subscriptions.create", "POST",
                                                     "/subscriptions", body=body))

    async def renew(self, subscription_id: str, expires: str) -> dict[str, Any]:
        return cast(dict[str, Any], await self._send(
            "subscriptions.renew", "PATCH", f"/subscriptions/{_seg(subscription_id)}",
            body={"expirationDateTime": expires}))

    async def unsubscribe(self, subscription_id: str) -> None:
        await self._send("subscriptions.delete", "DELETE",
                         f"/subscriptions/{_seg(subscription_id)}")

    async def subscriptions(self) -> list[dict[str, Any]]:
        answer = await self._send("subscriptions.list", "GET", "/subscriptions")
        value = answer.get("value") if isinstance(answer, dict) else None
        return cast(list[dict[str, Any]], value or [])


def _seg(value: str) -> str:
    """An id as one path segment (immutable ids may hold '/' and '+')."""
    return quote(value, safe="")


def _if_match(etag: str | None) -> dict[str, str]:
    return {"If-Match": etag} if etag else {}



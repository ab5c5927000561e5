"""``calendarView/delta``: a round of pages linked by ``@odata.nextLink`` (``$skiptoken``)
ending with ``@odata.deltaLink`` (``$deltatoken``). A delta token remembers what the client
has seen (each instance's id and changeKey) over the round's window, so the next round
returns what was added or changed in full and what went as ``@removed``. Tokens can be
expired on demand: the answer is then 410 Gone with ``syncStateNotFound``. As documented,
delta returns what calendarView returns (``transactionId`` included) and refuses
``$expand``, ``$filter``, ``$orderby`` and ``$search``: extended properties never come
through it. https://learn.microsoft.com/graph/api/event-delta"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .errors import GraphError
from .events import Events
from .render import event_json
from .state import Calendar, StoredEvent
from .timeutil import parse_query_time

_PAGE_SIZE = re.compile(r"odata\.maxpagesize=(\d+)")
DEFAULT_PAGE = 10  # Graph's default page for event delta
UNSUPPORTED = ("$expand", "$filter", "$orderby", "$search")


@dataclass
class Round:
    user: str
    calendar_id: str
    lo: datetime
    hi: datetime
    seen: dict[str, str]  # id -> changeKey as of the round's delta token
    pending: list[dict[str, Any]] = field(default_factory=list)  # pages not yet served
    next_seen: dict[str, str] = field(default_factory=dict)
    expired: bool = False


class Delta:
    def __init__(self) -> None:
        self.tokens: dict[str, Round] = {}

    def expire_all(self) -> None:
        for held in self.tokens.values():
            held.expired = True

    def page(self, events: Events, calendar: Calendar, query: dict[str, str],
             headers: dict[str, str], tz: str, basic: bool, link: str) -> dict[str, Any]:
        size = _page_size(headers)
        refused = [name for name in UNSUPPORTED if name in query]
        if refused:
            raise GraphError(400, "ErrorInvalidUrlQuery", f"The query parameter "
                             f"'{refused[0]}' is not supported with change tracking over the "
                             "'CalendarView' resource.")
        token = query.get("$skiptoken") or query.get("$deltatoken")
        if token is None:
            if "startDateTime" not in query or "endDateTime" not in query:
                raise GraphError(400, "ErrorInvalidParameter", "This request requires a time "
                                 "window specified by the query string parameters "
                                 "StartDateTime and EndDateTime.")
            held = Round(events.box.user.email, calendar.id,
                         parse_query_time(query["startDateTime"]),
                         parse_query_time(query["endDateTime"]), {})
            return self._start(events, calendar, held, size, tz, basic, link)
        held = self._held(token, events.box.user.email, calendar.id)
        if "$deltatoken" in query:
            return self._start(events, calendar, held, size, tz, basic, link)
        return self._serve(held, size, link)

    def _held(self, token: str, user: str, calendar_id: str) -> Round:
        held = self.tokens.get(token)
        if held is None or held.expired or held.user != user or held.calendar_id != calendar_id:
            raise GraphError(410, "syncStateNotFound", "The sync state generation is not "
                             "found. Delete the state and start a new sync.")
        return held

    def _start(self, events: Events, calendar: Calendar, held: Round, size: int, tz: str,
               basic: bool, link: str) -> dict[str, Any]:
        now = events.window(calendar, held.lo, held.hi)
        current = {e.id: str(e.resource["changeKey"]) for e in now}
        rows: list[dict[str, Any]] = [_row(e, tz, basic) for e in now
                                      if held.seen.get(e.id) != current[e.id]]
        rows += [{"@odata.type": "#microsoft.graph.event", "id": gone,
                  "@removed": {"reason": "deleted"}}
                 for gone in held.seen if gone not in current]
        fresh = Round(held.user, held.calendar_id, held.lo, held.hi, held.seen,
                      pending=rows, next_seen=current)
        return self._serve(fresh, size, link)

    def _serve(self, held: Round, size: int, link: str) -> dict[str, Any]:
        page, held.pending = held.pending[:size], held.pending[size:]
        out: dict[str, Any] = {"@odata.context": "https://graph.microsoft.com/v1.0/"
                                                 "$metadata#Collection(event)", "value": page}
        token = secrets.token_urlsafe(24)
        if held.pending:
            self.tokens[token] = held
            out["@odata.nextLink"] = f"{link}?$skiptoken={token}"
        else:
            self.tokens[token] = Round(held.user, held.calendar_id, held.lo, held.hi,
                                       held.next_seen)
            out["@odata.deltaLink"] = f"{link}?$deltatoken={token}"
        return out


def _row(stored: StoredEvent, tz: str, basic: bool) -> dict[str, Any]:
    return {"@odata.type": "#microsoft.graph.event", **event_json(stored, tz, basic=basic)}


def _page_size(headers: dict[str, str]) -> int:
    found = _PAGE_SIZE.search(headers.get("prefer", ""))
    return max(1, int(found.group(1))) if found else DEFAULT_PAGE

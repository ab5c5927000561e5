"""The upsert body of ``POST /v1/calendars/{id}/events`` (API.md s6.1) as a desired state."""

from __future__ import annotations

import re
import unicodedata
from datetime import date, datetime
from math import isfinite
from typing import Any
from urllib.parse import urlsplit

from providers.model import ConferenceLink

from ..domain.desired import DesiredEvent, EventUpsert, Invitee, Subscription
from .params import InvalidParam, Params, find_zone, parse_date, parse_time
from .recurrence_body import recurrence_rule

MAX_SUMMARY, MAX_DESCRIPTION = 1024, 4096
MAX_EVENT_ID = 256  # it travels upstream (an upstream's extended property, a CalDAV property)
MAX_EMAIL, MAX_NAME = 254, 256  # RFC 5321's longest path; a display name of a line
MAX_REMINDERS, MAX_REMINDER_MINUTES = 10, 40320  # Cronofy's range: up to four weeks before
TRANSPARENCY = {"opaque", "transparent"}
EXTENDED_TRANSPARENCY = {"opaque", "transparent", "tentative", "out_of_office",
                         "working_elsewhere"}
# The busy states that leave the time open (as Outlook's free and workingElsewhere do).
OPEN = {"transparent", "working_elsewhere"}
MAX_URL = 2048
_COLOR = re.compile(r"#[0-9a-fA-F]{6}")
# The optional fields whose presence an update honours (absent: kept as they were).
OPTIONAL = ("description", "location", "url", "transparency", "extended_transparency",
            "event_private", "reminders", "color", "conferencing", "recurrence",
            "subscriptions")
CONFERENCING_PROFILES = frozenset({"default", "integrated", "explicit"})
MAX_JOIN_URL = 2048
MAX_SUBSCRIPTIONS = 10
# Interactions Calgate can honestly detect: the join URL a provider made for the event.
INTERACTIONS = frozenset({"conferencing_assigned"})
# No whitespace or control characters, one "@" with something either side: an address a
# provider (iCalendar's mailto:, an upstream's attendee list) can carry without escaping.
_EMAIL = re.compile(r"[^\s@]+@[^\s@]+")


def desired_event(params: Params) -> DesiredEvent:
    """The body as the event it would create (every absent field at its default)."""
    return event_upsert(params).merge(None)


def event_upsert(params: Params) -> EventUpsert:
    """Validate the body; the result, merged over the event's stored state, is what the
    outbox will make upstream."""
    summary = params.text("summary", required=True)
    assert summary is not None
    if len(summary) > MAX_SUMMARY:
        raise InvalidParam("summary", "too_long", f"summary is over {MAX_SUMMARY} characters")
    description = params.text("description") or ""
    if len(description) > MAX_DESCRIPTION:
        raise InvalidParam("description", "too_long",
                           f"description is over {MAX_DESCRIPTION} characters")
    default_tzid = params.tzid() if params.raw("tzid") else "Etc/UTC"
    start, start_tzid = _when(params, "start", default_tzid)
    end, end_tzid = _when(params, "end", default_tzid)
    if isinstance(start, datetime) != isinstance(end, datetime):
        raise InvalidParam("end", "mismatched_types", "start and end must both be dates or times")
    if end <= start:
        raise InvalidParam("end", "end_before_start", "end must be after start")
    extended = _extended_transparency(params)
    transparency = params.text("transparency") or "opaque"
    if transparency not in TRANSPARENCY:
        raise InvalidParam("transparency", "invalid", "transparency is opaque or transparent")
    if extended is not None:
        transparency = "transparent" if extended in OPEN else "opaque"
    location, geo = _location(params.raw("location"))
    invite, remove = _attendees(params.raw("attendees"))
    return EventUpsert(
        summary=summary, start=start, end=end, start_tzid=start_tzid, end_tzid=end_tzid,
        given=frozenset(name for name in (*OPTIONAL, "attendees") if params.given(name)),
        description=description, location=location, geo=geo, url=_url(params),
        transparency="transparent" if transparency == "transparent" else "opaque",
        extended_transparency=extended,  # type: ignore[arg-type]  # checked above
        private=params.flag("event_private"),
        reminders=tuple(_reminders(params.raw("reminders"))),
        reminders_create_only=params.flag("reminders_create_only"),
        color=_color(params), conferencing=_conferencing(params.raw("conferencing")),
        conference_link=conference_link(params.raw("conferencing")),
        recurrence=recurrence_rule(params.raw("recurrence"), start),
        invite=invite, remove=remove,
        subscriptions=subscriptions(params.raw("subscriptions")))


def _extended_transparency(params: Params) -> str | None:
    value = params.text("extended_transparency")
    if value is not None and value not in EXTENDED_TRANSPARENCY:
        raise InvalidParam("extended_transparency", "invalid",
                           "extended_transparency is one of "
                           + ", ".join(sorted(EXTENDED_TRANSPARENCY)))
    return value


def _url(params: Params) -> str | None:
    """A URL for the event; ``null`` (or an empty string) clears it."""
    value = params.text("url")
    if value is not None and (len(value) > MAX_URL or any(_control(c) for c in value)
                              or any(c.isspace() for c in value.strip())):
        raise InvalidParam("url", "invalid", f"url is one line of at most {MAX_URL} characters")
    return value.strip() if value else None


def _color(params: Params) -> str | None:
    value = params.text("color")
    if value is not None and not _COLOR.fullmatch(value.strip()):
        raise InvalidParam("color", "invalid", "color is a hex colour like #49BED8")
    return value.strip().lower() if value else None


def _conferencing(value: Any) -> bool:
    """``{"profile_id": "default" | "integrated"}`` asks for the calendar's own video
    conferencing (the provider's own meeting where its calendars have one; ignored elsewhere).
    ``explicit`` is the app's own link (:func:`conference_link`); third-party conferencing
    profiles are not offered."""
    if value is None:
        return False
    if not isinstance(value, dict) or not isinstance(value.get("profile_id"), str):
        raise InvalidParam("conferencing", "invalid",
                           'conferencing is {"profile_id": "default"}')
    if value["profile_id"] not in CONFERENCING_PROFILES:
        raise InvalidParam("conferencing", "unsupported",
                           "conferencing.profile_id must be default, integrated or explicit")
    return bool(value["profile_id"] != "explicit")


def conference_link(value: Any) -> ConferenceLink | None:
    """``{"profile_id": "explicit", "provider_description", "join_url"}``: the app's own
    meeting link, written next to what the calendar offers natively (Cronofy's Conferencing
    Services reference). Both fields are required; the link must be https."""
    if not isinstance(value, dict) or value.get("profile_id") != "explicit":
        return None
    description = value.get("provider_description")
    if not isinstance(description, str) or not description.strip():
        raise InvalidParam("conferencing.provider_description", "required",
                           "conferencing.provider_description must be specified for explicit "
                           "conferencing")
    if len(description) > MAX_NAME or any(_control(c) for c in description):
        raise InvalidParam("conferencing.provider_description", "invalid",
                           f"conferencing.provider_description is one line of at most "
                           f"{MAX_NAME} characters")
    url = value.get("join_url")
    if not isinstance(url, str) or not url.strip():
        raise InvalidParam("conferencing.join_url", "required",
                           "conferencing.join_url must be specified for explicit conferencing")
    parts = urlsplit(url)
    if (parts.scheme.lower() != "https" or not parts.hostname or len(url) > MAX_JOIN_URL
            or any(c.isspace() or _control(c) for c in url)):
        raise InvalidParam("conferencing.join_url", "invalid",
                           f"conferencing.join_url must be an https URL of at most "
                           f"{MAX_JOIN_URL} characters")
    return ConferenceLink(url, description.strip())


def subscriptions(value: Any) -> tuple[Subscription, ...]:
    """``[{"type": "webhook", "uri", "interactions": [{"type": "conferencing_assigned"}]}]``
    (Cronofy's Conferencing Services push notifications); ``null`` or ``[]`` clears them.
    The ``uri`` is checked like a channel's callback_url when the write is recorded."""
    if value is None:
        return ()

    def refuse(code: str, text: str) -> InvalidParam:
        return InvalidParam("subscriptions", code, text)

    if not isinstance(value, list) or len(value) > MAX_SUBSCRIPTIONS:
        raise refuse("invalid", f"subscriptions is a list of at most {MAX_SUBSCRIPTIONS} "
                     '{"type": "webhook", "uri", "interactions": [{"type"}]}')
    result: list[Subscription] = []
    for entry in value:
        if not isinstance(entry, dict):
            raise refuse("invalid", 'each subscription is {"type": "webhook", "uri", '
                         '"interactions": [{"type"}]}')
        if entry.get("type", "webhook") != "webhook":
            raise refuse("unsupported", "a subscription's type must be webhook")
        uri = entry.get("uri")
        if not isinstance(uri, str) or not uri.strip() or len(uri) > MAX_URL \
                or any(c.isspace() or _control(c) for c in uri):
            raise refuse("invalid", f"a subscription's uri is a URL of at most {MAX_URL} "
                         "characters")
        interactions = entry.get("interactions")
        if not isinstance(interactions, list) or not interactions:
            raise refuse("invalid", "a subscription's interactions is a list of "
                         '[{"type": "conferencing_assigned"}]')
        kinds: list[str] = []
        for interaction in interactions:
            kind = interaction.get("type") if isinstance(interaction, dict) else None
            if kind not in INTERACTIONS:
                raise refuse("unsupported", "the interaction types supported are: "
                             + ", ".join(sorted(INTERACTIONS)))
            if kind not in kinds:
                kinds.append(kind)
        result.append(Subscription(uri=uri, interactions=tuple(kinds)))
    return tuple(result)


def _when(params: Params, name: str, default_tzid: str) -> tuple[date | datetime, str]:
    value = params.raw(name)
    tzid = default_tzid
    if isinstance(value, dict):
        tzid = value.get("tzid") or default_tzid
        if not isinstance(tzid, str) or find_zone(tzid) is None:
            raise InvalidParam(name, "invalid_tzid", f"{name}.tzid is not a known time zone")
        value = value.get("time")
    if not isinstance(value, str) or not value.strip():
        raise InvalidParam(name, "required", f"{name} must be specified")
    try:
        if len(value.strip()) == 10:
            return parse_date(value.strip()), tzid
        return parse_time(value), tzid
    except ValueError as exc:
        raise InvalidParam(name, "invalid_time",
                           f"{name} must be a Date or a Time like 2014-08-05T14:30:00Z ({exc})"
                           ) from None


def valid_event_id(value: str) -> str:
    """The client's ``event_id``: it names the event upstream and in logs, so it is one line
    of bounded text without ``/`` or ``\\`` (they turn into paths in CalDAV and URLs)."""
    if len(value) > MAX_EVENT_ID:
        raise InvalidParam("event_id", "too_long", f"event_id is over {MAX_EVENT_ID} characters")
    if any(c in "/\\" or _control(c) for c in value):
        raise InvalidParam("event_id", "invalid",
                           "event_id must not contain /, \\ or control characters")
    return value


def _control(char: str) -> bool:
    return unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp")


def _location(value: Any) -> tuple[str, tuple[str, str] | None]:
    """``{"description", "lat", "long"}``: the text, and the coordinates (strings, as
    Cronofy takes them: a latitude from -90 to 90 and a longitude from -180 to 180)."""
    if value is None or isinstance(value, str):
        return value or "", None
    if not isinstance(value, dict) or not isinstance(value.get("description") or "", str):
        raise InvalidParam("location", "invalid", 'location is {"description": "…"}')
    description = str(value.get("description") or "")
    lat, long = value.get("lat"), value.get("long")
    if lat is None and long is None:
        return description, None
    return description, (_coordinate(lat, 90), _coordinate(long, 180))


def _coordinate(value: Any, limit: int) -> str:
    text = str(value).strip() if isinstance(value, str | int | float) \
        and not isinstance(value, bool) else ""
    try:
        number = float(text)
    except ValueError:
        number = float("nan")
    if not isfinite(number) or not -limit <= number <= limit or len(text) > 32:
        raise InvalidParam("location", "invalid",
                           "location.lat and location.long are given together, as decimal "
                           "degrees (-90 to 90, -180 to 180)")
    return text


def _attendees(value: Any) -> tuple[tuple[Invitee, ...], frozenset[str]]:
    """Who to invite (added, or their names updated) and whose address to take off:
    ``reject`` (Ruby, PHP, the docs) and ``remove`` (the C# SDK) both remove."""
    if value is None:
        return (), frozenset()
    if not isinstance(value, dict):
        raise InvalidParam("attendees", "invalid",
                           'attendees is {"invite": [{"email": …}], "reject": [...]}')
    removed = frozenset(_person(p).email.lower() for key in ("reject", "remove")
                        for p in _people(value, key))
    return tuple(_person(p) for p in _people(value, "invite")), removed


def _people(value: dict[str, Any], key: str) -> list[Any]:
    people = value.get(key)
    if people is None:
        return []
    if not isinstance(people, list):
        raise InvalidParam("attendees", "invalid", f"attendees.{key} must be a list")
    return people


def _person(person: Any) -> Invitee:
    email = person.get("email") if isinstance(person, dict) else None
    if not isinstance(email, str) or len(email) > MAX_EMAIL or not _EMAIL.fullmatch(email) \
            or any(_control(c) for c in email):
        raise InvalidParam("attendees", "invalid", "each attendee needs an email address")
    name = person.get("display_name")
    if name is not None and (not isinstance(name, str) or len(name) > MAX_NAME
                             or any(_control(c) for c in name)):
        raise InvalidParam("attendees", "invalid",
                           "an attendee's display_name is one line of text")
    return Invitee(email, name)


def _reminders(value: Any) -> list[int]:
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > MAX_REMINDERS:
        raise InvalidParam("reminders", "invalid",
                           f'reminders are at most {MAX_REMINDERS} of [{{"minutes": n}}]')
    return [_minutes(r.get("minutes") if isinstance(r, dict) else None) for r in value]


def _minutes(value: Any) -> int:
    """Whole minutes: ``10``, ``10.0`` or ``"10"``; never a bool, a fraction or infinity."""
    whole_float = isinstance(value, float) and isfinite(value) and value.is_integer()
    if whole_float or (isinstance(value, str) and value.strip().isdigit()):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) \
            or not 0 <= value <= MAX_REMINDER_MINUTES:
        raise InvalidParam("reminders", "invalid",
                           f"a reminder's minutes is a whole number, 0 to {MAX_REMINDER_MINUTES}")
    return value

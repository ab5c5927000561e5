"""The event properties beyond RFC 5545's core that Calgate reads and writes on CalDAV:
alarms (reminders), GEO, RFC 7986 COLOR (as a CSS colour name) and CONFERENCE."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import icalendar

CSS_COLORS: dict[str, str] = {
    "black": "#000000", "silver": "#c0c0c0", "gray": "#808080", "white": "#ffffff",
    "maroon": "#800000", "red": "#ff0000", "purple": "#800080", "fuchsia": "#ff00ff",
    "green": "#008000", "lime": "#00ff00", "olive": "#808000", "yellow": "#ffff00",
    "navy": "#000080", "blue": "#0000ff", "teal": "#008080", "aqua": "#00ffff"}


def reminders_of(component: Any) -> tuple[int, ...] | None:
    """Minutes before the start of each VALARM triggered relative to the start, in the
    object's order; None when it has no alarms (the calendar's defaults apply)."""
    minutes = []
    for alarm in component.walk("VALARM"):
        trigger = alarm.get("TRIGGER")
        value = getattr(trigger, "dt", None)
        related = str(getattr(trigger, "params", {}).get("RELATED", "START")).upper()
        if isinstance(value, timedelta) and related == "START" and value <= timedelta(0):
            minutes.append(int(-value.total_seconds() // 60))
    return tuple(minutes) or None


def geo_of(component: Any) -> tuple[str, str] | None:
    """GEO (RFC 5545 s3.8.1.6) as Cronofy's lat/long strings."""
    geo = component.get("GEO")
    if geo is None:
        return None
    return format(float(geo.latitude), "g"), format(float(geo.longitude), "g")


def css_color(color: str) -> str:
    """The CSS colour name nearest to ``color`` (``#rrggbb``)."""
    wanted = _rgb(color)
    return min(CSS_COLORS, key=lambda name: sum(
        (a - b) ** 2 for a, b in zip(_rgb(CSS_COLORS[name]), wanted, strict=True)))


def _rgb(color: str) -> tuple[int, int, int]:
    return int(color[1:3], 16), int(color[3:5], 16), int(color[5:7], 16)


def alarms_of(text: str) -> list[Any]:
    """The VALARMs of a stored object's first VEVENT (kept when the client's reminders are
    create-only)."""
    for component in icalendar.Calendar.from_ical(text).walk("VEVENT"):
        return list(component.walk("VALARM"))
    return []


def conference(component: Any) -> tuple[str | None, str | None]:
    """The meeting link of an RFC 7986 s5.11 ``CONFERENCE`` (the video one, else the first)
    and its ``LABEL``, the name its writer gave it."""
    found = [c for c in listed(component.get("CONFERENCE")) if str(c).strip()]
    if not found:
        return None, None
    video = next((c for c in found
                  if "VIDEO" in str(c.params.get("FEATURE", "")).upper()), found[0])
    label = video.params.get("LABEL")
    return str(video).strip(), str(label) if label else None


def listed(value: Any) -> list[Any]:
    """A property that may occur once or several times, as a list."""
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]

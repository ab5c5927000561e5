"""What Google sends Calgate: events.watch notifications, and the Meet links it makes.

A watch notification is headers only (https://developers.google.com/calendar/api/guides/push):
the channel id, our verification token, the watched resource's id and the state (``sync``
when the channel opens, then ``exists``/``not_exists``).
"""

from __future__ import annotations

from ..plugin import Conferencing, PushNotice, PushReceipt, PushRequest

MEET_HOST = "meet.google.com"


def parse(request: PushRequest) -> PushReceipt:
    """The notice in a watch notification; none when the headers are not a channel's."""
    headers = request.headers
    channel_id = headers.get("x-goog-channel-id", "")
    token = headers.get("x-goog-channel-token", "")
    if not channel_id or not token:
        return PushReceipt()
    return PushReceipt((PushNotice(channel_id, token, headers.get("x-goog-resource-id"),
                                   headers.get("x-goog-resource-state", "exists")),))


def recognise_meeting(url: str) -> Conferencing | None:
    """A Google Meet link, as Cronofy reports it."""
    if MEET_HOST in url:
        return Conferencing("google_meet", url)
    return None

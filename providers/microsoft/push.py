"""What Microsoft Graph sends Calgate: subscription handshakes, change and lifecycle
notifications, and the Teams links it makes.

https://learn.microsoft.com/graph/change-notifications-delivery-webhooks: creating a
subscription makes Graph POST ``?validationToken=…`` to the notification URL, which must
echo the token as text/plain within 10 seconds. Notifications are a JSON ``value`` list;
each carries the subscription id and our ``clientState`` (the channel's token, checked by
the gateway). The notification URL names the gateway's channel (``?channel=``, set by
:meth:`GraphProvider.watch`), since Graph knows only its own subscription id.

Lifecycle notifications (https://learn.microsoft.com/graph/change-notifications-lifecycle-events)
arrive at the same address: ``reauthorizationRequired`` and ``subscriptionRemoved`` mean the
subscription must be replaced; ``missed`` means changes were not delivered, so the calendar is
synced in full.
"""

from __future__ import annotations

import json
from typing import Any

from ..plugin import Conferencing, PushNotice, PushReceipt, PushRequest

CHANNEL_PARAMETER = "channel"
LIFECYCLE = {"reauthorizationRequired": "renew", "subscriptionRemoved": "renew",
             "missed": "resync"}
TEAMS_HOSTS = ("teams.microsoft.com", "teams.live.com")


def parse(request: PushRequest) -> PushReceipt:
    """The handshake's reply, or the notices of a notification; none when it is not one."""
    token = request.query.get("validationToken")
    if token is not None:
        return PushReceipt(reply=token)
    channel = request.query.get(CHANNEL_PARAMETER, "")
    if not channel:
        return PushReceipt()
    return PushReceipt(tuple(_notice(channel, item) for item in _items(request.body)))


def _items(body: bytes) -> list[dict[str, Any]]:
    try:
        payload = json.loads(body or b"null")
    except ValueError:
        return []
    value = payload.get("value") if isinstance(payload, dict) else None
    if not isinstance(value, list):
        return []
    return [item for item in value if isinstance(item, dict) and item.get("clientState")]


def _notice(channel: str, item: dict[str, Any]) -> PushNotice:
    event = item.get("lifecycleEvent")
    state = LIFECYCLE.get(str(event), "exists") if event else "exists"
    return PushNotice(channel, str(item["clientState"]),
                      str(item.get("subscriptionId") or "") or None, state)


def recognise_meeting(url: str) -> Conferencing | None:
    """A Microsoft Teams join link, as Cronofy reports it."""
    if any(host in url for host in TEAMS_HOSTS):
        return Conferencing("ms_teams", url)
    return None

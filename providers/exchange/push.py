"""Change notifications from Exchange: EWS pull subscriptions, one per calendar folder.

Why pull subscriptions: Calgate's worker runs short tasks from a sweep, and any of its
processes may take the next one. A pull subscription fits that: the server queues the
folder's changes, one short ``GetEvents`` request with the last watermark reads them, and
the watermark (kept in the channel row, see :func:`encode`) lets whichever worker comes next
carry on. A streaming subscription would hold an HTTP connection, and a worker thread,
open per mailbox for up to 30 minutes; a push subscription needs the Exchange server to
reach Calgate's public URL, which servers in an organisation's own data centre often
cannot. The subscription lives as long as it is read within :data:`TIMEOUT_MINUTES`; one the
server forgot (a restart, a failover, a timeout) answers ``ErrorSubscriptionNotFound`` or
``ErrorExpiredSubscription`` and is reported as :class:`providers.errors.NotFound`, after
which the gateway makes a new one and syncs (changes in between are not lost: the sync
state is the truth, the subscription only says when to look).
https://learn.microsoft.com/exchange/client-developer/exchange-web-services/pull-notifications-exchange
"""

from __future__ import annotations

from typing import Any

from exchangelib import Account
from exchangelib import errors as ews
from exchangelib.properties import StatusEvent
from exchangelib.services import GetEvents, Unsubscribe

from ..errors import NotFound

TIMEOUT_MINUTES = 30  # Exchange drops a subscription nobody read for this long
# Item changes only (no NewMail, no free/busy-only events: the items' changes cover them).
EVENT_TYPES = ("CreatedEvent", "ModifiedEvent", "DeletedEvent", "MovedEvent", "CopiedEvent")
_GONE = (ews.ErrorSubscriptionNotFound, ews.ErrorExpiredSubscription,
         ews.ErrorInvalidSubscription, ews.ErrorInvalidWatermark)
_SEPARATOR = " "  # neither subscription ids nor watermarks (base64) contain a space


def encode(subscription_id: str, watermark: str) -> str:
    """What the channel row keeps as its ``resource_id``: both halves of the next read."""
    return f"{subscription_id}{_SEPARATOR}{watermark}"


def decode(resource_id: str) -> tuple[str, str]:
    subscription_id, _, watermark = resource_id.partition(_SEPARATOR)
    return subscription_id, watermark


def subscribe(folder: Any) -> str:
    """A new pull subscription on ``folder``; returns its encoded id and first watermark."""
    subscription_id, watermark = folder.subscribe_to_pull(event_types=EVENT_TYPES,
                                                          timeout=TIMEOUT_MINUTES)
    return encode(subscription_id, watermark)


def read_events(account: Account, resource_id: str) -> tuple[bool, str]:
    """(whether an item changed since the watermark, the encoded next watermark).

    One ``GetEvents`` page per call, through exchangelib's service: the folder method
    ``get_events`` re-sends the same watermark while the server says ``MoreEvents``. A
    full page already says something changed; the next read carries on from its end."""
    subscription_id, watermark = decode(resource_id)
    try:
        notification = GetEvents(account=account).get(subscription_id=subscription_id,
                                                       watermark=watermark)
    except _GONE as exc:
        raise NotFound(f"Exchange dropped the subscription: {type(exc).__name__}") from None
    changed = False
    for event in notification.events or ():
        changed = changed or not isinstance(event, StatusEvent)
        watermark = event.watermark or watermark
    return changed, encode(subscription_id, watermark)


def unsubscribe(account: Account, resource_id: str) -> None:
    """End a subscription; one the server no longer knows is fine."""
    subscription_id, _ = decode(resource_id)
    try:
        Unsubscribe(account=account).get(subscription_id=subscription_id)
    except _GONE:
        return

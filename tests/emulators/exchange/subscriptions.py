"""EWS pull subscriptions, kept by the emulator: ``Subscribe`` (PullSubscriptionRequest),
``GetEvents`` and ``Unsubscribe``, read off the mailbox's change log.

A subscription names its folders and the change sequence it has been told about (its
watermark, ``base64("<subscription>:<seq>")``). ``GetEvents`` answers the changes in those
folders after the watermark as Created/Modified/Deleted events, or a ``StatusEvent`` when
there are none, as Exchange does. Tests can make the server forget subscriptions
(``drop``: ``ErrorSubscriptionNotFound``) or let them time out (``expire``:
``ErrorExpiredSubscription``), as a restarted or throttled mailbox server does.
"""

from __future__ import annotations

import base64
import threading
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import UTC, datetime

from .mailbox import Mailbox, new_id
from .soap import EwsError, error, local, m, ok, response, t

_EVENTS = {"Create": "CreatedEvent", "Update": "ModifiedEvent", "Delete": "DeletedEvent"}
MAX_EVENTS = 50  # per GetEvents answer; MoreEvents says when there are more


@dataclass
class Subscription:
    subscription_id: str
    email: str
    folders: frozenset[str]
    seq: int  # the last change the client has been told about
    expired: bool = False
    polls: int = 0


@dataclass
class Subscriptions:
    """Every mailbox's pull subscriptions (thread-safe; the mailbox lock is held by the
    caller for the change log)."""

    live: dict[str, Subscription] = field(default_factory=dict)
    made: int = 0  # subscriptions ever created
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def subscribe(self, box: Mailbox, op: ET.Element) -> bytes:
        request = op.find(m("PullSubscriptionRequest"))
        if request is None:  # push and streaming subscriptions are not offered
            return response("Subscribe", [error(
                "Subscribe", "ErrorInvalidSubscriptionRequest", "Only pull subscriptions.")])
        try:
            folders = frozenset(_folder_id(box, ref) for ref in
                                request.find(t("FolderIds")) or [])
        except EwsError as exc:
            return response("Subscribe", [error("Subscribe", exc.code, exc.text)])
        sub = Subscription(new_id("sub"), box.email.lower(), folders, box.seq)
        with self._lock:
            self.live[sub.subscription_id] = sub
            self.made += 1
        inner = (f"<m:SubscriptionId>{sub.subscription_id}</m:SubscriptionId>"
                 f"<m:Watermark>{_mark(sub.subscription_id, sub.seq)}</m:Watermark>")
        return response("Subscribe", [ok("Subscribe", inner)])

    def get_events(self, box: Mailbox, op: ET.Element) -> bytes:
        sub_id = op.findtext(m("SubscriptionId")) or ""
        try:
            sub = self._find(box, sub_id)
            seq = _seq(sub_id, op.findtext(m("Watermark")) or "")
        except EwsError as exc:
            return response("GetEvents", [error("GetEvents", exc.code, exc.text)])
        changes = sorted(((c, folder) for folder in sub.folders
                          for c in box.log.get(folder, []) if c.seq > seq),
                         key=lambda pair: pair[0].seq)
        page, more = changes[:MAX_EVENTS], len(changes) > MAX_EVENTS
        top = page[-1][0].seq if page else max(seq, box.seq)
        with self._lock:
            sub.seq, sub.polls = top, sub.polls + 1
        stamp = f"{datetime.now(UTC):%Y-%m-%dT%H:%M:%SZ}"
        events = "".join(
            f"<t:{_EVENTS[c.kind]}><t:Watermark>{_mark(sub_id, c.seq)}</t:Watermark>"
            f"<t:TimeStamp>{stamp}</t:TimeStamp><t:ItemId Id=\"{c.item_id}\" ChangeKey=\"AA==\"/>"
            f"<t:ParentFolderId Id=\"{folder}\" ChangeKey=\"AQ==\"/>"
            f"</t:{_EVENTS[c.kind]}>" for c, folder in page) or (
            f"<t:StatusEvent><t:Watermark>{_mark(sub_id, top)}</t:Watermark></t:StatusEvent>")
        inner = (f"<m:Notification><t:SubscriptionId>{sub_id}</t:SubscriptionId>"
                 f"<t:PreviousWatermark>{_mark(sub_id, seq)}</t:PreviousWatermark>"
                 f"<t:MoreEvents>{str(more).lower()}</t:MoreEvents>{events}</m:Notification>")
        return response("GetEvents", [ok("GetEvents", inner)])

    def unsubscribe(self, box: Mailbox, op: ET.Element) -> bytes:
        sub_id = op.findtext(m("SubscriptionId")) or ""
        try:
            self._find(box, sub_id)
        except EwsError as exc:
            return response("Unsubscribe", [error("Unsubscribe", exc.code, exc.text)])
        with self._lock:
            self.live.pop(sub_id, None)
        return response("Unsubscribe", [ok("Unsubscribe")])

    def of(self, email: str) -> list[Subscription]:
        with self._lock:
            return [s for s in self.live.values() if s.email == email.lower()]

    def drop(self, email: str) -> int:
        """The server forgets the mailbox's subscriptions (a restart, a failover)."""
        with self._lock:
            gone = [k for k, s in self.live.items() if s.email == email.lower()]
            for key in gone:
                del self.live[key]
        return len(gone)

    def expire(self, email: str) -> int:
        """The mailbox's subscriptions time out: the next GetEvents on them is refused."""
        with self._lock:
            found = [s for s in self.live.values() if s.email == email.lower()]
            for sub in found:
                sub.expired = True
        return len(found)

    def _find(self, box: Mailbox, sub_id: str) -> Subscription:
        with self._lock:
            sub = self.live.get(sub_id)
            if sub is not None and sub.expired:
                del self.live[sub_id]
                raise EwsError("ErrorExpiredSubscription", "The subscription has expired.")
        if sub is None or sub.email != box.email.lower():
            raise EwsError("ErrorSubscriptionNotFound", "The subscription was not found.")
        return sub


def _folder_id(box: Mailbox, ref: ET.Element) -> str:
    if local(ref.tag) == "DistinguishedFolderId":
        return box.folder(None, ref.get("Id")).folder_id
    return box.folder(ref.get("Id"), None).folder_id


def _mark(sub_id: str, seq: int) -> str:
    return base64.b64encode(f"{sub_id}:{seq}".encode()).decode()


def _seq(sub_id: str, watermark: str) -> int:
    try:
        owner, _, seq = base64.b64decode(watermark).decode().rpartition(":")
        if owner != sub_id:
            raise ValueError(owner)
        return int(seq)
    except ValueError:
        raise EwsError("ErrorInvalidWatermark", "The watermark is invalid.") from None

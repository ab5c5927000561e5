"""Smart Invites (API.md s11): calendar invitations a client app emails to people who have
linked no calendar, and their answers.

An invite belongs to one client app and is named by the app's ``smart_invite_id``; its
recipients are rows of their own, each with the status their last answer gave. The
invitation itself is an iTIP message (services/itip.py) whose ORGANIZER is the operator's
mailbox; its UID is random, made once per (client app, ``smart_invite_id``), and its
SEQUENCE grows whenever what the recipients were sent changes (the event, a cancellation).
Answers come back by email through the inbound webhook (api/smart_invites.py): one is
recorded only for a recipient of the invite it names, and a changed status queues a
``smart_invite`` notification to the invite's ``callback_url`` in the same transaction.

The event and the notification bodies are calendar contents: they are stored sealed with
the server key, never in clear.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Literal, Protocol

from sqlalchemy import Connection, Engine, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from ..domain.desired import DesiredEvent
from ..domain.ids import new_id
from ..persistence.tables import (
    smart_invite_notifications,
    smart_invite_recipients,
    smart_invites,
)
from .channels import ChannelError, ChannelSettings, check_callback_url
from .itip import Invitation, Method, Reply, build

EVENT_PURPOSE = "smart_invite"
NOTIFICATION_PURPOSE = "smart_invite_notification"
MAX_RECIPIENTS = 100


class Sealer(Protocol):
    """Authenticated encryption with the server key (``oauth_server.crypto.ServerKeys``)."""

    def seal(self, purpose: str, data: dict[str, Any]) -> str: ...
    def unseal(self, purpose: str, sealed: str) -> dict[str, Any] | None: ...


class SmartInviteError(Exception):
    """A request Calgate refuses: ``field`` and ``code`` name it for a 422."""

    def __init__(self, field: str, code: str, description: str) -> None:
        super().__init__(description)
        self.field, self.code, self.description = field, code, description


class InviteNotFound(Exception):
    pass


@dataclass(frozen=True, slots=True)
class InviteSettings:
    mailbox: str  # the ORGANIZER of every invitation; "" turns Smart Invites off
    callbacks: ChannelSettings  # where a callback_url may point (as channels)


@dataclass(frozen=True, slots=True)
class Organizer:
    name: str | None = None
    email: str | None = None  # echoed; the ORGANIZER stays the mailbox, which gets replies


@dataclass(frozen=True, slots=True)
class InviteRequest:
    """``POST /v1/smart_invites``, validated (api/smart_invites.py)."""

    smart_invite_id: str
    method: Literal["request", "cancel"]
    recipients: tuple[str, ...]
    many: bool  # sent as ``recipients`` (answered the same way) rather than ``recipient``
    event: DesiredEvent | None = None  # required for a request
    geo: tuple[float, float] | None = None
    organizer: Organizer = Organizer()
    callback_url: str | None = None


ReplyOutcome = Literal["recorded", "unchanged", "unknown", "refused", "ignored"]


def _key(email: str) -> str:
    return email.strip().lower()


def _fingerprint(stored: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(stored, sort_keys=True).encode()).hexdigest()


def _wire(value: date | datetime) -> str:
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return value.isoformat()


def _person(row: Any) -> dict[str, Any]:
    person: dict[str, Any] = {"email": row.email, "status": row.status}
    if row.comment:
        person["comment"] = row.comment
    return person


class SmartInviteService:
    """Create, update, cancel and read Smart Invites; record the answers. Blocking calls."""

    def __init__(self, engine: Engine, sealer: Sealer, settings: InviteSettings) -> None:
        self.engine = engine
        self.sealer = sealer
        self.settings = settings

    @property
    def enabled(self) -> bool:
        return bool(self.settings.mailbox)

    # -- the API --------------------------------------------------------------------------
    def upsert(self, client_id: str, request: InviteRequest) -> dict[str, Any]:
        """Record a request or a cancellation; the answer carries the iCalendar to send."""
        if request.callback_url is not None:
            try:
                check_callback_url(request.callback_url, self.settings.callbacks)
            except ChannelError as exc:
                raise SmartInviteError(exc.field, exc.code, exc.description) from None
        for attempt in range(2):
            try:
                with self.engine.begin() as conn:
                    return self._upsert(conn, client_id, request)
            except IntegrityError:  # a concurrent first request made the same invite
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def get(self, client_id: str, smart_invite_id: str, email: str) -> dict[str, Any]:
        with self.engine.connect() as conn:
            invite = self._find(conn, client_id, smart_invite_id)
            if invite is None:
                raise InviteNotFound(smart_invite_id)
            people = self._recipients(conn, invite.id)
        mine = [p for p in people if p.email_key == _key(email)]
        if not mine:
            raise InviteNotFound(smart_invite_id)
        stored = self._stored(invite)
        method: Method = "CANCEL" if mine[0].cancelled else "REQUEST"
        body = self._answer(invite, stored, mine, many=False, method=method)
        body["replies"] = [_person(p) for p in people if p.replied_at is not None]
        return body

    def forget_client(self, client_id: str) -> int:
        """Erase every invite of a client app (it is being deleted)."""
        with self.engine.begin() as conn:
            return int(conn.execute(delete(smart_invites).where(
                smart_invites.c.client_id == client_id)).rowcount)

    # -- answers --------------------------------------------------------------------------
    def record_reply(self, reply: Reply, now: datetime | None = None) -> ReplyOutcome:
        """Record one attendee's answer, if it is a recipient's answer to a live invite."""
        now = now or datetime.now(UTC)
        status = reply.status
        with self.engine.begin() as conn:
            invite = conn.execute(select(smart_invites).where(
                smart_invites.c.uid == reply.uid)).first()
            if invite is None:
                return "unknown"
            person = conn.execute(select(smart_invite_recipients).where(
                smart_invite_recipients.c.invite_id == invite.id,
                smart_invite_recipients.c.email_key == _key(reply.attendee))).first()
            # Someone who was not invited, or an answer to a version never sent: forged.
            if person is None or reply.sequence > invite.sequence:
                return "refused"
            if person.cancelled or status is None:
                return "ignored"
            if (person.status, person.comment) == (status, reply.comment):
                return "unchanged"
            conn.execute(update(smart_invite_recipients).where(
                smart_invite_recipients.c.id == person.id).values(
                status=status, comment=reply.comment, replied_at=now))
            if invite.callback_url:
                self._notify(conn, invite, person.email, status, reply.comment, now)
        return "recorded"

    def _notify(self, conn: Connection, invite: Any, email: str, status: str,
                comment: str | None, now: datetime) -> None:
        answer: dict[str, Any] = {"email": email, "status": status}
        if comment:
            answer["comment"] = comment
        body = {"smart_invite_id": invite.smart_invite_id, "callback_url": invite.callback_url,
                "recipient": answer, "reply": dict(answer)}
        conn.execute(insert(smart_invite_notifications).values(
            public_id=new_id("ntf_"), invite_id=invite.id, client_id=invite.client_id,
            callback_url=invite.callback_url,
            sealed_body=self.sealer.seal(NOTIFICATION_PURPOSE, {"smart_invite": body}),
            created_at=now, next_attempt_at=now, attempts=0))

    # -- internals ------------------------------------------------------------------------
    def _upsert(self, conn: Connection, client_id: str, request: InviteRequest
                ) -> dict[str, Any]:
        now = datetime.now(UTC)
        invite = self._find(conn, client_id, request.smart_invite_id)
        if request.method == "cancel":
            if invite is None:
                raise InviteNotFound(request.smart_invite_id)
            stored = self._stored(invite)
        else:
            assert request.event is not None
            stored = {"event": request.event.to_stored(),
                      "geo": list(request.geo) if request.geo else None,
                      "organizer": {"name": request.organizer.name,
                                    "email": request.organizer.email}}
            if invite is None:
                invite = self._create(conn, client_id, request, stored, now)
        changed = self._apply_recipients(conn, invite.id, request)
        if request.method == "request":
            changed = changed or _fingerprint(stored) != invite.fingerprint
        values: dict[str, Any] = {"updated_at": now}
        if changed:
            values |= {"sequence": invite.sequence + 1, "fingerprint": _fingerprint(stored),
                       "sealed_event": self.sealer.seal(EVENT_PURPOSE, stored)}
        if request.callback_url is not None:
            values["callback_url"] = request.callback_url
        conn.execute(update(smart_invites).where(smart_invites.c.id == invite.id)
                     .values(**values))
        invite = self._find(conn, client_id, request.smart_invite_id)
        wanted = {_key(e) for e in request.recipients}
        people = [p for p in self._recipients(conn, invite.id) if p.email_key in wanted]
        method: Method = "CANCEL" if request.method == "cancel" else "REQUEST"
        return self._answer(invite, stored, people, many=request.many, method=method)

    def _create(self, conn: Connection, client_id: str, request: InviteRequest,
                stored: dict[str, Any], now: datetime) -> Any:
        domain = self.settings.mailbox.rpartition("@")[2]
        conn.execute(insert(smart_invites).values(
            client_id=client_id, smart_invite_id=request.smart_invite_id,
            uid=f"{secrets.token_hex(16)}@{domain}", sequence=0,
            fingerprint=_fingerprint(stored),
            sealed_event=self.sealer.seal(EVENT_PURPOSE, stored),
            callback_url=request.callback_url, created_at=now, updated_at=now))
        return self._find(conn, client_id, request.smart_invite_id)

    def _apply_recipients(self, conn: Connection, invite_id: int,
                          request: InviteRequest) -> bool:
        """Add or (un)cancel the named recipients; whether anything a recipient was sent
        changed (a new recipient alone changes nothing the others were sent)."""
        existing = {p.email_key: p for p in self._recipients(conn, invite_id)}
        cancel = request.method == "cancel"
        changed = False
        for email in request.recipients:
            person = existing.get(_key(email))
            if person is None:
                if cancel:
                    raise SmartInviteError("recipient.email", "unknown_recipient",
                                           f"{email} is not a recipient of this invite")
                conn.execute(insert(smart_invite_recipients).values(
                    invite_id=invite_id, email=email, email_key=_key(email),
                    status="pending", cancelled=False))
            elif person.cancelled != cancel:
                conn.execute(update(smart_invite_recipients).where(
                    smart_invite_recipients.c.id == person.id).values(cancelled=cancel))
                changed = True
        return changed

    def _answer(self, invite: Any, stored: dict[str, Any], people: Sequence[Any], *,
                many: bool, method: Method) -> dict[str, Any]:
        event = DesiredEvent.from_stored(stored["event"])
        organizer = stored.get("organizer") or {}
        geo = stored.get("geo")
        invitation = Invitation(
            uid=invite.uid, sequence=invite.sequence, event=event,
            organizer_mailbox=self.settings.mailbox, organizer_name=organizer.get("name"),
            attendees=tuple(p.email for p in people),
            geo=(float(geo[0]), float(geo[1])) if geo else None)
        body: dict[str, Any] = {}
        if many:
            body["recipients"] = [_person(p) for p in people]
        else:
            body["recipient"] = _person(people[0])
        body |= {"smart_invite_id": invite.smart_invite_id, "callback_url": invite.callback_url,
                 "event": _event_body(event, geo),
                 "attachments": {"icalendar": build(invitation, method)}}
        return body

    def _stored(self, invite: Any) -> dict[str, Any]:
        stored = self.sealer.unseal(EVENT_PURPOSE, invite.sealed_event)
        if stored is None:  # the server key changed: nothing can be read back
            raise InviteNotFound(invite.smart_invite_id)
        return stored

    @staticmethod
    def _find(conn: Connection, client_id: str, smart_invite_id: str) -> Any:
        return conn.execute(select(smart_invites).where(
            smart_invites.c.client_id == client_id,
            smart_invites.c.smart_invite_id == smart_invite_id)).first()

    @staticmethod
    def _recipients(conn: Connection, invite_id: int) -> list[Any]:
        return list(conn.execute(select(smart_invite_recipients).where(
            smart_invite_recipients.c.invite_id == invite_id)
            .order_by(smart_invite_recipients.c.id)).all())


def _event_body(event: DesiredEvent, geo: Any) -> dict[str, Any]:
    """The event as Cronofy echoes it: times as ``{"time", "tzid"}``."""
    body: dict[str, Any] = {"summary": event.summary}
    if event.description:
        body["description"] = event.description
    body["start"] = {"time": _wire(event.start), "tzid": event.start_tzid}
    body["end"] = {"time": _wire(event.end), "tzid": event.end_tzid}
    if event.location or geo:
        location: dict[str, Any] = {"description": event.location}
        if geo:
            location |= {"lat": str(geo[0]), "long": str(geo[1])}
        body["location"] = location
    if event.url:
        body["url"] = event.url
    return body

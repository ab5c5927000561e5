"""The emulator: routes, authentication, POX Autodiscover, the SOAP dispatcher, fault
injection and a control API for tests (users, folders, items edited "in Outlook")."""

from __future__ import annotations

import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime

from . import availability, operations
from .auth import Authenticator, Challenge, LockedOut, User
from .faults import Faults, server_busy
from .mailbox import Folder, Item, Mailbox
from .server import DROP, Request, Response, Server, TestCA
from .soap import S, error, fault, local, response
from .subscriptions import Subscriptions

EWS_PATH = "/ews/exchange.asmx"
POX_PATH = "/autodiscover/autodiscover.xml"
SOAP_AUTODISCOVER_PATH = "/autodiscover/autodiscover.svc"
_XML = {"Content-Type": "text/xml; charset=utf-8"}
# IIS's 401 page for a locked-out Windows account carries the system's error text.
LOCKED_OUT_PAGE = (b"<html><body><h1>401 - Unauthorized</h1><p>The referenced account is "
                   b"currently locked out and may not be logged on to.</p></body></html>")
_OPERATIONS: dict[str, Callable[..., bytes]] = {
    "GetFolder": operations.get_folder, "FindFolder": operations.find_folder,
    "FindItem": operations.find_item, "GetItem": operations.get_item,
    "CreateItem": operations.create_item, "UpdateItem": operations.update_item,
    "DeleteItem": operations.delete_item, "SyncFolderItems": operations.sync_folder_items,
}


class ExchangeEmulator:
    """A running Exchange 2016 stand-in on https://127.0.0.1:<port>. ``names`` are extra
    host names the certificate carries (tests resolve them to 127.0.0.1)."""

    def __init__(self, names: tuple[str, ...] = (), schemes: tuple[str, ...] = (
            "NTLM", "Basic"), bind: tuple[str, int] = ("127.0.0.1", 0),
                 bearer: Callable[[str], str | None] | None = None) -> None:
        self.ca = TestCA(names)
        self.auth = Authenticator(schemes, bearer)
        self.mailboxes: dict[str, Mailbox] = {}
        self.faults = Faults()
        self.operations: list[str] = []  # every SOAP operation, in order
        self.timeline: list[tuple[str, float]] = []  # (operation, time.monotonic()) each
        self.subscriptions = Subscriptions()
        self.autodiscover_enabled = True
        self.pox_enabled = True  # False: the POX endpoint answers 404, SOAP still answers
        self.autodiscover_asked: list[str] = []  # the Autodiscover paths asked, in order
        self._lock = threading.Lock()
        try:
            self.server = Server(self._app, self.ca, bind)
        except OSError:  # the address is taken (or a privileged port): leave nothing behind
            self.ca.cleanup()
            self.auth.cleanup()
            raise
        self.port = self.server.port

    # -- lifecycle and control -------------------------------------------------------------

    def start(self) -> ExchangeEmulator:
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop()
        self.ca.cleanup()
        self.auth.cleanup()

    def ews_url(self, host: str = "127.0.0.1") -> str:
        port = "" if self.port == 443 else f":{self.port}"
        return f"https://{host}{port}/EWS/Exchange.asmx"

    def add_user(self, email: str, password: str, *, domain: str = "CONTOSO",
                 login: str | None = None, ews_enabled: bool = True,
                 locked: bool = False) -> Mailbox:
        """``locked``: the directory has locked the account out (every sign-in fails)."""
        user = User(domain, login or email.partition("@")[0], password, email, ews_enabled,
                    locked)
        self.auth.add(user)
        box = self.mailboxes.setdefault(email.lower(), Mailbox(email))
        return box

    def mailbox(self, email: str) -> Mailbox:
        return self.mailboxes[email.lower()]

    def add_calendar(self, email: str, name: str, *, writable: bool = True) -> Folder:
        box = self.mailbox(email)
        with box.lock:
            return box.add_folder(name, box.calendar.folder_id, writable=writable)

    def items(self, email: str, folder: Folder | None = None) -> list[Item]:
        box = self.mailbox(email)
        with box.lock:
            wanted = (folder or box.calendar).folder_id
            return [i for i in box.items.values() if i.folder_id == wanted]

    def edit(self, email: str, item_id: str, **texts: str) -> Item:
        """Change an item's text fields as a user in Outlook would (new ChangeKey)."""
        from .soap import t

        box = self.mailbox(email)
        with box.lock:
            item = box.get(item_id)
            for name, text in texts.items():
                element = ET.Element(t(name))
                element.text = text
                item.fields[name] = element
            box.update(item)
            return item

    def add_item(self, email: str, item_id: str, folder: str | None = None,
                 **texts: str) -> Item:
        """An item the owner made in Outlook, with an id the test chooses; ``texts`` are
        t: fields by local name (Start and End as UTC instants, ``...Z``)."""
        from .soap import t

        box = self.mailbox(email)
        with box.lock:
            fields: dict[str, ET.Element] = {}
            for name, text in texts.items():
                element = ET.Element(t(name))
                element.text = text
                fields[name] = element
            return box.create(folder or box.calendar.folder_id, fields, {}, item_id)

    def add_series(self, email: str, item_id: str, start: str, end: str, tzid: str,
                   folder: str | None = None, **texts: str) -> Item:
        """A weekly recurring master (no end) from its first occurrence (UTC instants),
        repeating in ``tzid`` (IANA; the item says the Windows name, as Outlook does)."""
        from .mailbox import Series

        item = self.add_item(email, item_id, folder, Start=start, End=end, **texts)
        with self.mailbox(email).lock:
            item.series = Series(tzid)
        return item

    def cancel_occurrence(self, email: str, item_id: str, original: datetime) -> None:
        """The owner deletes one occurrence of a series (the master changes)."""
        box = self.mailbox(email)
        with box.lock:
            master = box.get(item_id)
            assert master.series is not None
            master.series.deleted.add(original)
            box.update(master)

    def move_occurrence(self, email: str, item_id: str, original: datetime,
                        start: datetime, end: datetime) -> None:
        """The owner moves one occurrence: it becomes an exception of the series."""
        box = self.mailbox(email)
        with box.lock:
            master = box.get(item_id)
            assert master.series is not None
            master.series.moved[original] = (start, end)
            box.update(master)

    def invite(self, email: str, item_id: str, organizer: str,
               weekly_in: str | None = None, **texts: str) -> Item:
        """A meeting ``organizer`` invited ``email`` to, not answered yet; ``weekly_in``
        (an IANA zone) makes it a weekly series repeating in that zone."""
        from .mailbox import Series
        from .soap import t

        item = self.add_item(email, item_id, None, MyResponseType="NoResponseReceived",
                             IsMeeting="true", IsOrganizer="false", **texts)
        with self.mailbox(email).lock:
            holder = ET.Element(t("Organizer"))
            box = ET.SubElement(holder, t("Mailbox"))
            ET.SubElement(box, t("EmailAddress")).text = organizer
            ET.SubElement(box, t("RoutingType")).text = "SMTP"
            item.fields["Organizer"] = holder
            if weekly_in is not None:
                item.series = Series(weekly_in)
        return item

    def remove(self, email: str, item_id: str) -> None:
        """The owner deletes an item in Outlook."""
        box = self.mailbox(email)
        with box.lock:
            box.delete(item_id)

    def drop_next(self, op: str, count: int = 1) -> None:
        """Apply the next ``count`` ``op`` requests but lose their answers."""
        self.faults.count(self.faults.drop, op, count)

    def fail_next(self, op: str, code: str) -> None:
        """The next ``op`` request is answered with error ``code`` (not applied)."""
        self.faults.add(self.faults.errors, op, [code])

    def busy_next(self, op: str, back_off_ms: int, count: int = 1) -> None:
        """The next ``count`` ``op`` requests are throttled: ErrorServerBusy, hint attached."""
        self.faults.add(self.faults.busy, op, [back_off_ms] * count)

    def status_next(self, op: str, status: int = 503, count: int = 1) -> None:
        """The next ``count`` ``op`` requests get a bare HTTP ``status`` (not applied)."""
        self.faults.add(self.faults.statuses, op, [status] * count)

    def reset_next(self, op: str, count: int = 1) -> None:
        """The next ``count`` ``op`` requests lose their connection before being applied."""
        self.faults.count(self.faults.resets, op, count)

    def change_password(self, email: str, password: str) -> None:
        """The user changes their password in the directory: the old one stops working,
        on connections already authenticated too."""
        user = self.auth.users[email.lower()]
        self.auth.add(replace(user, password=password))
        self.auth.forget(email)

    def times(self, op: str) -> list[float]:
        """When each ``op`` request arrived (time.monotonic(), this process's clock)."""
        with self._lock:
            return [at for name, at in self.timeline if name == op]

    # -- HTTP ---------------------------------------------------------------------------

    def _app(self, request: Request) -> Response:
        path = request.path.lower()
        if path not in (EWS_PATH, POX_PATH, SOAP_AUTODISCOVER_PATH) or request.method != "POST":
            return Response(404)
        try:
            user = self.auth.identify(request)
        except Challenge as challenge:
            return Response(401, headers={"WWW-Authenticate": ", ".join(challenge.offers)})
        except LockedOut:
            return Response(401, LOCKED_OUT_PAGE, {"Content-Type": "text/html"})
        if path in (POX_PATH, SOAP_AUTODISCOVER_PATH):
            return self._autodiscover(user, request, path)
        if not user.ews_enabled:  # Set-CASMailbox -EwsEnabled $false: IIS answers 403
            return Response(403, b"", {})
        return self._soap(user, request)

    def _autodiscover(self, user: User, request: Request, path: str) -> Response:
        self.autodiscover_asked.append(path)
        if not self.autodiscover_enabled or (path == POX_PATH and not self.pox_enabled):
            return Response(404)
        from .autodiscover import pox_answer, soap_answer

        host = request.headers.get("host", "127.0.0.1").partition(":")[0]
        answer = pox_answer if path == POX_PATH else soap_answer
        return Response(200, answer(user, request, self.ews_url(host)), _XML)

    def _soap(self, user: User, request: Request) -> Response:
        try:
            body = ET.fromstring(request.body).find(f"{{{S}}}Body")
            op = body[0] if body is not None and len(body) else None
        except ET.ParseError:
            op = None
        if op is None:
            return Response(500, fault("not a SOAP request"), _XML)
        name = local(op.tag).removesuffix("Request")
        self.operations.append(name)
        with self._lock:
            self.timeline.append((name, time.monotonic()))
        injected = self.faults.take(name)
        if injected.reset:  # the connection goes before anything is applied
            return DROP
        if injected.status is not None:
            return Response(injected.status, b"Service Unavailable", {})
        if injected.busy_ms is not None:
            return Response(500, server_busy(injected.busy_ms), _XML)
        if injected.code is not None:
            text = f"injected {injected.code}"
            return Response(200, response(name, [error(name, injected.code, text)]), _XML)
        box = self.mailbox(user.email)
        with box.lock:
            answer = self._dispatch(name, box, op)
        return DROP if injected.drop else Response(200, answer, _XML)

    def _dispatch(self, name: str, box: Mailbox, op: ET.Element) -> bytes:
        if name == "GetUserAvailability":
            return availability.get_user_availability(op, self.mailboxes.get)
        if name == "GetServerTimeZones":
            return availability.get_server_time_zones(op)
        if name == "ConvertId":  # exchangelib's version probe reads the header only
            return response(name, [error(name, "ErrorInvalidIdMalformed", "Id is malformed.")])
        if name in ("Subscribe", "GetEvents", "Unsubscribe"):
            subs = self.subscriptions
            return {"Subscribe": subs.subscribe, "GetEvents": subs.get_events,
                    "Unsubscribe": subs.unsubscribe}[name](box, op)
        handler = _OPERATIONS.get(name)
        if handler is None:
            return fault(f"the emulator does not implement {name}")
        return handler(box, op, self.mailboxes.get)

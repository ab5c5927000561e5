"""A mailbox's state: calendar folders, items kept as the client's own elements (so what
exchangelib wrote is what it reads back), ChangeKeys, extended properties, and a change log
per folder that SyncFolderItems states point into (states from before an expiry are
refused, as Exchange refuses a state it no longer accepts)."""

from __future__ import annotations

import base64
import itertools
import re
import threading
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from .soap import EwsError, t

_IDS = itertools.count(1)
_BOOLEANS = {"IsAllDayEvent", "ReminderIsSet", "IsMeeting", "IsCancelled", "IsOrganizer",
             "IsResponseRequested", "AllowNewTimeProposal", "IsOnlineMeeting"}
_SPAN = timedelta(weeks=1)  # how far an exception may move from its original start


def new_id(prefix: str) -> str:
    raw = f"{prefix}-{next(_IDS):06d}".encode()
    return base64.b64encode(b"AAMkAD" + raw).decode()


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Folder:
    folder_id: str
    name: str
    parent_id: str
    distinguished: str | None = None
    writable: bool = True
    folder_class: str = "IPF.Appointment"


@dataclass
class Item:
    item_id: str
    folder_id: str
    fields: dict[str, ET.Element]  # local name -> the t: element
    extended: dict[tuple[str, ...], ET.Element] = field(default_factory=dict)
    change_key: str = ""
    series: Series | None = None  # a recurring master's pattern
    created_seq: int = 0
    created: str = field(default_factory=_now)
    modified: str = field(default_factory=_now)

    def touch(self) -> None:
        self.change_key = new_id("ck")
        self.modified = _now()

    def text(self, name: str) -> str:
        element = self.fields.get(name)
        return "" if element is None else (element.text or "")

    def element(self) -> ET.Element:
        item = ET.Element(t("CalendarItem"))
        ET.SubElement(item, t("ItemId"), Id=self.item_id, ChangeKey=self.change_key)
        ET.SubElement(item, t("ParentFolderId"), Id=self.folder_id)
        for name, value in self.fields.items():
            if name not in ("ItemId", "ParentFolderId"):
                item.append(value)
        for value in self.extended.values():
            item.append(value)
        for child in item:  # Exchange writes xs:boolean values out as true / false
            if local_name(child.tag) in _BOOLEANS and child.text in ("1", "0"):
                child.text = "true" if child.text == "1" else "false"
        for name, text in (("DateTimeCreated", self.created),
                           ("LastModifiedTime", self.modified)):
            if name not in self.fields:
                ET.SubElement(item, t(name)).text = text
        body = self.fields.get("Body")
        if body is not None and "TextBody" not in self.fields:  # Exchange derives it
            text = body.text or ""
            if body.get("BodyType") == "HTML":
                text = re.sub(r"<[^>]*>", "", text)
            ET.SubElement(item, t("TextBody"), BodyType="Text").text = text
        if "CalendarItemType" not in self.fields:
            ET.SubElement(item, t("CalendarItemType")).text = (
                "RecurringMaster" if self.series else "Single")
        if "UID" not in self.fields:
            ET.SubElement(item, t("UID")).text = self.item_id
        return item


def extended_key(uri: ET.Element) -> tuple[str, ...]:
    """An ExtendedFieldURI's identity (property set and name or tag, and type)."""
    return tuple(f"{k}={v}" for k, v in sorted(uri.attrib.items()))


@dataclass
class Change:
    seq: int
    kind: str  # Create, Update, Delete
    item_id: str


class Mailbox:
    """One user's mailbox: the root, the default calendar, and any sub-calendars."""

    def __init__(self, email: str) -> None:
        self.email = email
        self.lock = threading.RLock()
        self.root = Folder(new_id("root"), "Root", "", "root", writable=True,
                           folder_class="")
        self.folders: dict[str, Folder] = {self.root.folder_id: self.root}
        self.calendar = self.add_folder("Calendar", self.root.folder_id, "calendar")
        # Where a meeting response's copy goes (the responses themselves are not kept).
        self.sent = self.add_folder("Sent Items", self.root.folder_id, "sentitems")
        self.sent.folder_class = "IPF.Note"
        self.responses: list[tuple[str, str]] = []  # (response kind, meeting id) sent
        self.items: dict[str, Item] = {}
        self.log: dict[str, list[Change]] = {}
        self.seq = 0
        self.state_epoch = 1

    def add_folder(self, name: str, parent_id: str, distinguished: str | None = None,
                   writable: bool = True) -> Folder:
        folder = Folder(new_id("folder"), name, parent_id, distinguished, writable)
        self.folders[folder.folder_id] = folder
        return folder

    def folder(self, folder_id: str | None, distinguished: str | None) -> Folder:
        for folder in self.folders.values():
            if folder_id == folder.folder_id or (
                    distinguished and folder.distinguished == distinguished):
                return folder
        raise EwsError("ErrorFolderNotFound",
                       "The specified folder could not be found in the store.")

    def get(self, item_id: str) -> Item:
        item = self.items.get(item_id)
        if item is None:
            raise EwsError("ErrorItemNotFound",
                           "The specified object was not found in the store.")
        return item

    def element(self, item_id: str) -> ET.Element:
        """An item's element by id: a stored item, or an occurrence or exception of a
        series by its occurrence id (GetItem reads those as Exchange does)."""
        if item_id in self.items:
            return self.items[item_id].element()
        master, original = self.occurrence(item_id)
        assert master.series is not None
        found = [e for e in expand(master, master.series, original - _SPAN, original + _SPAN)
                 if e.findtext(t("OriginalStart")) == f"{original:%Y-%m-%dT%H:%M:%SZ}"]
        if not found:
            raise EwsError("ErrorCalendarOccurrenceIsDeletedFromRecurrence",
                           "Occurrence index is out of recurrence range.")
        return found[0]

    def occurrence(self, item_id: str) -> tuple[Item, datetime]:
        """The master and original start an occurrence id names (ErrorItemNotFound when it
        names no series)."""
        try:
            master_id, _, stamp = base64.b64decode(item_id).decode().rpartition("|")
            original = datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        except ValueError:
            master_id, original = "", datetime.min.replace(tzinfo=UTC)
        master = self.items.get(master_id)
        if master is None or master.series is None:
            raise EwsError("ErrorItemNotFound",
                           "The specified object was not found in the store.")
        return master, original

    def record(self, folder_id: str, kind: str, item_id: str) -> None:
        self.seq += 1
        self.log.setdefault(folder_id, []).append(Change(self.seq, kind, item_id))

    def create(self, folder_id: str, fields: dict[str, ET.Element],
               extended: dict[tuple[str, ...], ET.Element], item_id: str | None = None,
               ) -> Item:
        item = Item(item_id or new_id("item"), folder_id, fields, extended)
        item.touch()
        self.items[item.item_id] = item
        self.record(folder_id, "Create", item.item_id)
        item.created_seq = self.seq
        return item

    def update(self, item: Item) -> None:
        item.touch()
        self.record(item.folder_id, "Update", item.item_id)

    def delete(self, item_id: str) -> None:
        item = self.get(item_id)
        del self.items[item_id]
        self.record(item.folder_id, "Delete", item_id)

    # -- sync states: "epoch:folder:base:top:offset:mode", base64 ----------------------
    # mode "full" lists the folder's items created up to sequence ``top``; mode "inc" the
    # items changed after ``base`` up to ``top``. ``offset`` pages through either list.

    def expire_states(self) -> None:
        """Every state handed out so far becomes invalid (ErrorInvalidSyncStateData)."""
        self.state_epoch += 1

    def _encode(self, folder_id: str, base: int, top: int, offset: int, mode: str) -> str:
        text = f"{self.state_epoch}:{folder_id}:{base}:{top}:{offset}:{mode}"
        return base64.b64encode(text.encode()).decode()

    def sync_page(self, folder_id: str, state: str | None, limit: int,
                  ) -> tuple[list[tuple[str, str]], str, bool]:
        """(changes as (kind, item id), the next state, whether this was the last page)."""
        if state is None:
            base, top, offset, mode = 0, self.seq, 0, "full"
        else:
            try:
                epoch, folder, *numbers, mode = base64.b64decode(state).decode().split(":")
                base, top, offset = (int(n) for n in numbers)
            except ValueError:
                epoch, folder, base, top, offset, mode = "", "", 0, 0, 0, ""
            if epoch != str(self.state_epoch) or folder != folder_id:
                raise EwsError("ErrorInvalidSyncStateData",
                               "Synchronization state data is corrupt or otherwise invalid.")
            if mode == "inc" and offset == 0:
                top = self.seq
        listing = (self._full(folder_id, top) if mode == "full"
                   else self._since(folder_id, base, top))
        page = listing[offset:offset + limit]
        if offset + limit < len(listing):
            return page, self._encode(folder_id, base, top, offset + limit, mode), False
        return page, self._encode(folder_id, top, top, 0, "inc"), True

    def _full(self, folder_id: str, top: int) -> list[tuple[str, str]]:
        return [("Create", i.item_id) for i in sorted(self.items.values(),
                                                     key=lambda i: i.created_seq)
                if i.folder_id == folder_id and i.created_seq <= top]

    def _since(self, folder_id: str, base: int, top: int) -> list[tuple[str, str]]:
        first: dict[str, str] = {}
        last: dict[str, str] = {}
        for change in self.log.get(folder_id, []):
            if base < change.seq <= top:
                first.setdefault(change.item_id, change.kind)
                last[change.item_id] = change.kind
        found = []
        for item_id, kind in last.items():
            if kind == "Delete":
                if first[item_id] != "Create":  # created and deleted since: nothing to say
                    found.append(("Delete", item_id))
            else:
                found.append(("Create" if first[item_id] == "Create" else "Update", item_id))
        return found


@dataclass
class Series:
    """A recurring master's pattern as Outlook keeps it: weekly on the master's weekday in
    its zone (``interval`` weeks), occurrences named by their original start; ``deleted``
    occurrences are gone, ``moved`` ones are exceptions with their own start and end."""

    tzid: str  # IANA, the zone the pattern repeats in
    interval: int = 1
    deleted: set[datetime] = field(default_factory=set)
    moved: dict[datetime, tuple[datetime, datetime]] = field(default_factory=dict)
    answers: dict[datetime, str] = field(default_factory=dict)  # one occurrence's response


def occurrence_id(master_id: str, original: datetime) -> str:
    """An occurrence's ItemId: the master's and its original start (as EWS's own
    occurrence ids are derived from the master)."""
    raw = f"{master_id}|{original.astimezone(UTC):%Y%m%dT%H%M%SZ}".encode()
    return base64.b64encode(raw).decode()


def expand(item: Item, series: Series, start: datetime, end: datetime) -> list[ET.Element]:
    """The occurrences and exceptions of a master overlapping [start, end), as a
    CalendarView lists them."""
    from zoneinfo import ZoneInfo

    zone = ZoneInfo(series.tzid)
    first = datetime.fromisoformat(item.text("Start").replace("Z", "+00:00"))
    length = datetime.fromisoformat(item.text("End").replace("Z", "+00:00")) - first
    local_first = first.astimezone(zone).replace(tzinfo=None)
    found = []
    week = 0
    while True:
        original = (local_first + timedelta(weeks=week)).replace(tzinfo=zone).astimezone(UTC)
        week += series.interval
        if original >= end + timedelta(weeks=1):  # an exception moves within its week
            break
        if original in series.deleted:
            continue
        begin, finish = series.moved.get(original, (original, original + length))
        if not (begin < end and finish > start):
            continue
        element = item.element()
        answered = original in series.answers
        for child in list(element):
            if local_name(child.tag) in ("ItemId", "Start", "End", "CalendarItemType") or (
                    answered and local_name(child.tag) == "MyResponseType"):
                element.remove(child)
        if answered:
            ET.SubElement(element, t("MyResponseType")).text = series.answers[original]
        ET.SubElement(element, t("ItemId"), Id=occurrence_id(item.item_id, original),
                      ChangeKey=item.change_key)
        ET.SubElement(element, t("Start")).text = f"{begin:%Y-%m-%dT%H:%M:%SZ}"
        ET.SubElement(element, t("End")).text = f"{finish:%Y-%m-%dT%H:%M:%SZ}"
        ET.SubElement(element, t("OriginalStart")).text = f"{original:%Y-%m-%dT%H:%M:%SZ}"
        ET.SubElement(element, t("CalendarItemType")).text = (
            "Exception" if original in series.moved or answered else "Occurrence")
        found.append(element)
    return found


def local_name(tag: str) -> str:
    return tag.rpartition("}")[2]

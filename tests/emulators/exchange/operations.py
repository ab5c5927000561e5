"""The EWS operations, one function each, over a :class:`Mailbox`. Each takes the operation's
element and answers the response body (messages in request order)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable
from datetime import datetime

from .mailbox import Folder, Item, Mailbox, expand, extended_key
from .soap import EwsError, error, local, m, ok, response, t, xml

Directory = Callable[[str], Mailbox | None]  # email -> mailbox


def _rights(writable: bool) -> str:
    flags = {"CreateAssociated": writable, "CreateContents": writable,
             "CreateHierarchy": writable, "Delete": writable, "Modify": writable,
             "Read": True, "ViewPrivateItems": True}
    inner = "".join(f"<t:{k}>{str(v).lower()}</t:{k}>" for k, v in flags.items())
    return f"<t:EffectiveRights>{inner}</t:EffectiveRights>"


def _folder_xml(box: Mailbox, folder: Folder) -> str:
    tag = "CalendarFolder" if folder.folder_class == "IPF.Appointment" else "Folder"
    children = sum(1 for f in box.folders.values() if f.parent_id == folder.folder_id)
    count = sum(1 for i in box.items.values() if i.folder_id == folder.folder_id)
    parent = (f'<t:ParentFolderId Id="{folder.parent_id}" ChangeKey="AQ=="/>'
              if folder.parent_id else "")
    kind = f"<t:FolderClass>{folder.folder_class}</t:FolderClass>" if folder.folder_class else ""
    return (f'<t:{tag}><t:FolderId Id="{folder.folder_id}" ChangeKey="AQ=="/>{parent}{kind}'
            f"<t:DisplayName>{folder.name}</t:DisplayName><t:TotalCount>{count}</t:TotalCount>"
            f"<t:ChildFolderCount>{children}</t:ChildFolderCount>{_rights(folder.writable)}"
            f"</t:{tag}>")


def _folder_ref(box: Mailbox, ref: ET.Element) -> Folder:
    if local(ref.tag) == "DistinguishedFolderId":
        return box.folder(None, ref.get("Id"))
    return box.folder(ref.get("Id"), None)


def get_folder(box: Mailbox, op: ET.Element, directory: Directory) -> bytes:
    messages = []
    for ref in op.find(m("FolderIds")) or []:
        try:
            folder = _folder_ref(box, ref)
            messages.append(ok("GetFolder", f"<m:Folders>{_folder_xml(box, folder)}</m:Folders>"))
        except EwsError as exc:
            messages.append(error("GetFolder", exc.code, exc.text))
    return response("GetFolder", messages)


def find_folder(box: Mailbox, op: ET.Element, directory: Directory) -> bytes:
    deep = op.get("Traversal") == "Deep"
    parents = [_folder_ref(box, ref) for ref in op.find(m("ParentFolderIds")) or []]
    found: list[Folder] = []
    frontier = [p.folder_id for p in parents]
    while frontier:
        children = [f for f in box.folders.values() if f.parent_id in frontier]
        found += children
        frontier = [f.folder_id for f in children] if deep else []
    inner = "".join(_folder_xml(box, f) for f in found)
    root = (f'<m:RootFolder IndexedPagingOffset="{len(found)}" TotalItemsInView="{len(found)}" '
            f'IncludesLastItemInRange="true"><t:Folders>{inner}</t:Folders></m:RootFolder>')
    return response("FindFolder", [ok("FindFolder", root)])


def _when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _overlaps(item: Item, start: datetime, end: datetime) -> bool:
    try:
        return _when(item.text("Start")) < end and _when(item.text("End")) > start
    except ValueError:
        return False


def _matches(item: Item, restriction: ET.Element | None) -> bool:
    if restriction is None:
        return True
    equal = restriction.find(t("IsEqualTo"))
    if equal is None:
        raise EwsError("ErrorUnsupportedQueryFilter", "only IsEqualTo is emulated")
    uri = equal.find(t("ExtendedFieldURI"))
    constant = equal.find(f"{t('FieldURIOrConstant')}/{t('Constant')}")
    if uri is None or constant is None:
        raise EwsError("ErrorUnsupportedQueryFilter",
                       "only IsEqualTo on an extended property is emulated")
    prop = item.extended.get(extended_key(uri))
    value = None if prop is None else prop.find(t("Value"))
    return value is not None and value.text == constant.get("Value")


def find_item(box: Mailbox, op: ET.Element, directory: Directory) -> bytes:
    parents = [_folder_ref(box, ref) for ref in op.find(m("ParentFolderIds")) or []]
    ids = {p.folder_id for p in parents}
    view = op.find(m("CalendarView"))
    restriction = op.find(m("Restriction"))
    items = [i for i in box.items.values() if i.folder_id in ids and _matches(i, restriction)]
    if view is not None:  # masters are expanded: their occurrences and exceptions
        start, end = _when(view.get("StartDate", "")), _when(view.get("EndDate", ""))
        elements = []
        for i in items:
            if i.series is not None:
                elements += expand(i, i.series, start, end)
            elif _overlaps(i, start, end):
                elements.append(i.element())
    else:
        elements = [i.element() for i in items]
    shape = op.find(m("ItemShape"))
    inner = "".join(xml(_shaped(e, shape)) for e in elements)
    root = (f'<m:RootFolder TotalItemsInView="{len(elements)}" '
            f'IncludesLastItemInRange="true"><t:Items>{inner}</t:Items></m:RootFolder>')
    return response("FindItem", [ok("FindItem", root)])


def _shaped(element: ET.Element, shape: ET.Element | None) -> ET.Element:
    """An item as an IdOnly shape asks for it: its id and the properties named, as Exchange
    answers FindItem. Writing out every field of every item instead made a calendar view of
    thousands of items cost seconds here and in the client that parses it."""
    if shape is None or shape.findtext(t("BaseShape")) != "IdOnly":
        return element
    names = {"ItemId"} | {uri.get("FieldURI", "").partition(":")[2]
                          for uri in shape.iter(t("FieldURI"))}
    extended = {extended_key(uri) for uri in shape.iter(t("ExtendedFieldURI"))}
    for child in list(element):
        uri = child.find(t("ExtendedFieldURI"))
        keep = (local(child.tag) in names if local(child.tag) != "ExtendedProperty"
                else uri is not None and extended_key(uri) in extended)
        if not keep:
            element.remove(child)
    return element


def get_item(box: Mailbox, op: ET.Element, directory: Directory) -> bytes:
    messages = []
    for ref in op.find(m("ItemIds")) or []:
        try:
            element = box.element(ref.get("Id", ""))
            messages.append(ok("GetItem", f"<m:Items>{xml(element)}</m:Items>"))
        except EwsError as exc:
            messages.append(error("GetItem", exc.code, exc.text))
    return response("GetItem", messages)


def _split(element: ET.Element) -> tuple[dict[str, ET.Element],
                                         dict[tuple[str, ...], ET.Element]]:
    fields: dict[str, ET.Element] = {}
    extended: dict[tuple[str, ...], ET.Element] = {}
    for child in element:
        if local(child.tag) == "ExtendedProperty":
            uri = child.find(t("ExtendedFieldURI"))
            extended[extended_key(uri if uri is not None else child)] = child
        else:
            fields[local(child.tag)] = child
    return fields, extended


def create_item(box: Mailbox, op: ET.Element, directory: Directory) -> bytes:
    target = op.find(f"{m('SavedItemFolderId')}/*")
    folder = box.calendar if target is None else _folder_ref(box, target)
    messages = []
    for element in op.find(m("Items")) or []:
        if local(element.tag) in _RESPONSES:
            messages.append(_respond(box, element))
            continue
        if not folder.writable:
            messages.append(error("CreateItem", "ErrorAccessDenied", "Access is denied."))
            continue
        fields, extended = _split(element)
        item = box.create(folder.folder_id, fields, extended)
        ref = f'<t:CalendarItem><t:ItemId Id="{item.item_id}" ChangeKey="{item.change_key}"/>'
        messages.append(ok("CreateItem", f"<m:Items>{ref}</t:CalendarItem></m:Items>"))
    return response("CreateItem", messages)


_RESPONSES = {"AcceptItem": "Accept", "TentativelyAcceptItem": "Tentative",
              "DeclineItem": "Decline"}


def _respond(box: Mailbox, element: ET.Element) -> str:
    """A meeting response (CreateItem with AcceptItem, TentativelyAcceptItem or DeclineItem
    naming the meeting by ReferenceItemId): the attendee's MyResponseType changes; a
    declined meeting leaves the calendar (Exchange moves it to Deleted Items). A response
    to one occurrence of a series makes that occurrence an exception with its own answer
    (declined: it leaves the series)."""
    kind = local(element.tag)
    ref = element.find(t("ReferenceItemId"))
    ref_id = "" if ref is None else ref.get("Id", "")
    try:
        if ref_id and ref_id not in box.items:
            return _respond_to_occurrence(box, kind, ref_id)
        item = box.get(ref_id)
        if ref is not None and ref.get("ChangeKey") not in (None, item.change_key):
            raise EwsError("ErrorIrresolvableConflict",
                           "The change key passed in the request does not match the current "
                           "change key for the item.")
        if item.fields.get("Organizer") is None or item.text("IsOrganizer") == "true":
            raise EwsError("ErrorInvalidOperation",
                           "Only an attendee can respond to a meeting request.")
    except EwsError as exc:
        return error("CreateItem", exc.code, exc.text)
    box.responses.append((kind, item.item_id))
    if kind == "DeclineItem":
        box.delete(item.item_id)
    else:
        answer = ET.Element(t("MyResponseType"))
        answer.text = _RESPONSES[kind]
        item.fields["MyResponseType"] = answer
        box.update(item)
    return ok("CreateItem", "<m:Items/>")


def _respond_to_occurrence(box: Mailbox, kind: str, occurrence_id: str) -> str:
    master, original = box.occurrence(occurrence_id)
    assert master.series is not None
    if master.fields.get("Organizer") is None or master.text("IsOrganizer") == "true":
        raise EwsError("ErrorInvalidOperation",
                       "Only an attendee can respond to a meeting request.")
    box.element(occurrence_id)  # ErrorCalendarOccurrenceIsDeletedFromRecurrence if gone
    box.responses.append((kind, occurrence_id))
    if kind == "DeclineItem":
        master.series.deleted.add(original)
    else:
        master.series.answers[original] = _RESPONSES[kind]
    box.update(master)  # the series gained an exception: SyncFolderItems reports the master
    return ok("CreateItem", "<m:Items/>")


def _apply(item: Item, updates: ET.Element) -> None:
    for update in updates:
        kind = local(update.tag)
        uri = update.find(t("ExtendedFieldURI"))
        if kind == "SetItemField":
            holder = next(c for c in update if local(c.tag) not in (
                "FieldURI", "ExtendedFieldURI", "IndexedFieldURI"))
            fields, extended = _split(holder)
            item.fields.update(fields)
            item.extended.update(extended)
        elif kind == "DeleteItemField" and uri is not None:
            item.extended.pop(extended_key(uri), None)
        elif kind == "DeleteItemField":
            field_uri = update.find(t("FieldURI"))
            name = "" if field_uri is None else field_uri.get("FieldURI", "")
            item.fields.pop(name.partition(":")[2], None)


def update_item(box: Mailbox, op: ET.Element, directory: Directory) -> bytes:
    overwrite = op.get("ConflictResolution") == "AlwaysOverwrite"
    messages = []
    for change in op.find(m("ItemChanges")) or []:
        ref = change.find(t("ItemId"))
        try:
            item = box.get("" if ref is None else ref.get("Id", ""))
            if not box.folders[item.folder_id].writable:
                raise EwsError("ErrorAccessDenied", "Access is denied.")
            if not overwrite and ref is not None and ref.get("ChangeKey") not in (
                    None, item.change_key):
                raise EwsError("ErrorIrresolvableConflict",
                               "The send or update operation could not be performed because "
                               "the change key passed in the request does not match the "
                               "current change key for the item.")
            _apply(item, change.find(t("Updates")) or ET.Element("none"))
            box.update(item)
            done = (f'<m:Items><t:CalendarItem><t:ItemId Id="{item.item_id}" '
                    f'ChangeKey="{item.change_key}"/></t:CalendarItem></m:Items>'
                    "<m:ConflictResults><t:Count>0</t:Count></m:ConflictResults>")
            messages.append(ok("UpdateItem", done))
        except EwsError as exc:
            messages.append(error("UpdateItem", exc.code, exc.text))
    return response("UpdateItem", messages)


def delete_item(box: Mailbox, op: ET.Element, directory: Directory) -> bytes:
    messages = []
    for ref in op.find(m("ItemIds")) or []:
        try:
            item = box.get(ref.get("Id", ""))
            if not box.folders[item.folder_id].writable:
                raise EwsError("ErrorAccessDenied", "Access is denied.")
            box.delete(item.item_id)
            messages.append(ok("DeleteItem"))
        except EwsError as exc:
            messages.append(error("DeleteItem", exc.code, exc.text))
    return response("DeleteItem", messages)


def sync_folder_items(box: Mailbox, op: ET.Element, directory: Directory) -> bytes:
    ref = op.find(f"{m('SyncFolderId')}/*")
    state = op.findtext(m("SyncState")) or None
    limit = int(op.findtext(m("MaxChangesReturned")) or "100")
    try:
        folder = box.folder(None, "calendar") if ref is None else _folder_ref(box, ref)
        page, new_state, last = box.sync_page(folder.folder_id, state, limit)
    except EwsError as exc:
        # As Exchange writes it: the error message still carries an empty state.
        tail = "<m:SyncState/><m:IncludesLastItemInRange>true</m:IncludesLastItemInRange>"
        return response("SyncFolderItems", [error("SyncFolderItems", exc.code, exc.text,
                                                  tail)])
    body = []
    for kind, item_id in page:
        item = box.items.get(item_id)
        if kind == "Delete":
            body.append(f'<t:Delete><t:ItemId Id="{item_id}" ChangeKey="AA=="/></t:Delete>')
        elif item is not None:  # deleted since: the next state reports that
            body.append(f"<t:{kind}>{xml(item.element())}</t:{kind}>")
    inner = (f"<m:SyncState>{new_state}</m:SyncState>"
             f"<m:IncludesLastItemInRange>{str(last).lower()}</m:IncludesLastItemInRange>"
             f"<m:Changes>{''.join(body)}</m:Changes>")
    return response("SyncFolderItems", [ok("SyncFolderItems", inner)])

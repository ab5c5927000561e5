"""The iCalendar parts of an email that an inbound-mail service posts: pure functions.

Inbound-mail services hand a received message over in one of a few shapes:

* the raw MIME message in a form field: SendGrid Inbound Parse with "POST the raw, full MIME
  message" (field ``email``), Mailgun routes whose URL ends in ``mime`` (``body-mime``);
* parsed, with each attachment a file of the form (SendGrid ``attachment1``…, Mailgun
  ``attachment-1``…);
* Postmark's inbound JSON: ``Attachments[]`` with base64 ``Content`` and ``ContentType``,
  and ``RawEmail`` when the server is set to include it.

Calendar answers travel as a ``text/calendar`` part (iMIP, RFC 6047 s2.4), sometimes also
as an ``.ics`` attachment (``application/ics``): both are looked at.
"""

from __future__ import annotations

import base64
import binascii
import email
import email.policy
from collections.abc import Iterable, Mapping
from email.message import Message
from typing import Any

MIME_FIELDS = ("email", "body-mime")  # SendGrid raw, Mailgun raw
CALENDAR_TYPES = {"text/calendar", "application/ics", "text/x-vcalendar"}
MAX_PARTS = 64  # a reply has three or four; a message with hundreds is not a reply
MAX_PART_BYTES = 256 * 1024


def is_calendar(content_type: str | None, filename: str | None) -> bool:
    kind = (content_type or "").split(";")[0].strip().lower()
    return kind in CALENDAR_TYPES or (filename or "").strip().lower().endswith(".ics")


def calendars_in_mime(raw: bytes | str) -> list[str]:
    """The text of every calendar part of a raw MIME message ([] if it is not one)."""
    data = raw.encode("utf-8", "surrogateescape") if isinstance(raw, str) else raw
    message = email.message_from_bytes(data, policy=email.policy.compat32)
    found = []
    for count, part in enumerate(message.walk()):
        if count >= MAX_PARTS:
            break
        if part.is_multipart() or not is_calendar(part.get_content_type(), part.get_filename()):
            continue
        text = _text_of(part)
        if text is not None:
            found.append(text)
    return found


def _text_of(part: Message) -> str | None:
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes) or len(payload) > MAX_PART_BYTES:
        return None
    return _decode(payload, part.get_content_charset())


def _decode(payload: bytes, charset: str | None) -> str | None:
    try:
        return payload.decode(charset or "utf-8")
    except (LookupError, UnicodeDecodeError):
        try:
            return payload.decode("utf-8")
        except UnicodeDecodeError:
            return None


def calendars_in_postmark(document: Mapping[str, Any]) -> list[str]:
    """Postmark's inbound JSON: its calendar attachments, else those of ``RawEmail``."""
    found = []
    attachments = document.get("Attachments")
    for attachment in (attachments if isinstance(attachments, list) else [])[:MAX_PARTS]:
        if not isinstance(attachment, dict):
            continue
        if not is_calendar(_str(attachment.get("ContentType")), _str(attachment.get("Name"))):
            continue
        text = _base64_text(_str(attachment.get("Content")))
        if text is not None:
            found.append(text)
    raw = document.get("RawEmail")
    if not found and isinstance(raw, str) and raw.strip():
        found = calendars_in_mime(raw)
    return found


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _base64_text(value: str | None) -> str | None:
    if not value:
        return None
    try:
        payload = base64.b64decode("".join(value.split()), validate=True)
    except (binascii.Error, ValueError):
        return None
    if not payload or len(payload) > MAX_PART_BYTES:
        return None
    return _decode(payload, None)


def calendars_in_form(fields: Mapping[str, str],
                      files: Iterable[tuple[str | None, str | None, bytes]]) -> list[str]:
    """A form post: the raw message (``email`` / ``body-mime``) if there is one, else the
    calendar files among ``(filename, content type, bytes)``."""
    for name in MIME_FIELDS:
        raw = fields.get(name)
        if raw and raw.strip():
            return calendars_in_mime(raw)
    found = []
    for filename, content_type, payload in list(files)[:MAX_PARTS]:
        if is_calendar(content_type, filename) and len(payload) <= MAX_PART_BYTES:
            text = _decode(payload, None)
            if text is not None:
                found.append(text)
    return found

"""A recipient's calendar answering a Smart Invite by email, and the shapes in which
inbound-mail services post that email to a webhook.

``reply_calendar`` does what a calendar client does with a ``METHOD:REQUEST`` it received:
a ``METHOD:REPLY`` with the same UID and SEQUENCE, the organizer, and one ATTENDEE (the
one answering) with its PARTSTAT. ``reply_mail`` wraps it as iMIP (RFC 6047) does: a
``text/calendar; method=REPLY`` alternative next to the text, plus an ``invite.ics`` copy.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import make_msgid

from icalendar import Calendar, Event, vCalAddress


def reply_calendar(request_ics: str, attendee: str, partstat: str,
                   comment: str | None = None, uid: str | None = None,
                   sequence: int | None = None) -> str:
    invitation = Calendar.from_ical(request_ics)
    original = next(iter(invitation.walk("VEVENT")))
    reply = Calendar()
    reply.add("prodid", "-//Recipient Calendar//Test//EN")
    reply.add("version", "2.0")
    reply.add("method", "REPLY")
    event = Event()
    event.add("uid", uid or str(original["uid"]))
    event.add("sequence", original.get("sequence", 0) if sequence is None else sequence)
    event.add("dtstamp", datetime.now(UTC).replace(microsecond=0))
    event.add("dtstart", original.decoded("dtstart"))
    event.add("dtend", original.decoded("dtend"))
    event.add("summary", str(original["summary"]))
    event.add("organizer", original["organizer"])
    answering = vCalAddress(f"mailto:{attendee}")
    answering.params["PARTSTAT"] = partstat
    event.add("attendee", answering)
    if comment:
        event.add("comment", comment)
    reply.add_component(event)
    return reply.to_ical().decode()


def reply_mail(calendar: str, sender: str, to: str, subject: str = "Accepted: Mentoring"
               ) -> bytes:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Message-ID"] = make_msgid()
    message.set_content("I will be there.")
    message.add_alternative(calendar, subtype="calendar", params={"method": "REPLY"})
    message.add_attachment(calendar.encode(), maintype="application", subtype="ics",
                           filename="invite.ics")
    return bytes(message)


def multipart(fields: dict[str, str]) -> tuple[bytes, str]:
    """A ``multipart/form-data`` body of text fields, as the services post them."""
    boundary = "----calgate-test-" + make_msgid().strip("<>").split("@")[0].replace(".", "")
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
             f"{value}\r\n" for name, value in fields.items()]
    body = ("".join(parts) + f"--{boundary}--\r\n").encode()
    return body, f"multipart/form-data; boundary={boundary}"


def sendgrid_raw(mime: bytes) -> tuple[bytes, str]:
    """SendGrid Inbound Parse with "POST the raw, full MIME message"."""
    return multipart({"email": mime.decode(), "to": "invites@calgate.test",
                      "from": "partner@example.org", "subject": "Accepted", "spam_score": "0"})


def mailgun_mime(mime: bytes) -> tuple[bytes, str]:
    """A Mailgun route forwarding to a URL that ends in ``mime``: ``body-mime``."""
    return multipart({"body-mime": mime.decode(), "recipient": "invites@calgate.test",
                      "sender": "partner@example.org", "timestamp": "1700000000",
                      "token": "x" * 50, "signature": "0" * 64})


def postmark_json(calendar: str, sender: str) -> bytes:
    """Postmark's inbound webhook JSON, the answer among ``Attachments`` (base64)."""
    content = base64.b64encode(calendar.encode()).decode()
    return json.dumps({
        "From": sender, "FromFull": {"Email": sender, "Name": ""},
        "To": "invites@calgate.test", "Subject": "Accepted: Mentoring",
        "MessageID": "22c74902-a0c1-4511-804f-341342852c90", "TextBody": "I will be there.",
        "Attachments": [{"Name": "invite.ics", "Content": content,
                         "ContentType": "text/calendar; method=REPLY",
                         "ContentLength": len(calendar)}]}).encode()

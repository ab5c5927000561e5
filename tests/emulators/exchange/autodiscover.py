"""Autodiscover: POX (MS-OXDSCLI; the client POSTs its address, the server answers the
EXCH/EXPR protocols with the EWS URL) and SOAP (MS-OXWSADISC GetUserSettings; the server
answers the requested InternalEwsUrl and ExternalEwsUrl settings)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from xml.sax.saxutils import escape

from .auth import User
from .server import Request

_REQUEST_NS = "http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006"
_RESPONSE = "http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006"
_OUTLOOK = "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a"


def pox_answer(user: User, request: Request, ews_url: str) -> bytes:
    try:
        asked = ET.fromstring(request.body).findtext(
            f"{{{_REQUEST_NS}}}Request/{{{_REQUEST_NS}}}EMailAddress") or ""
    except ET.ParseError:
        asked = ""
    if asked.lower() != user.email.lower():
        return (f'<?xml version="1.0" encoding="utf-8"?><Autodiscover xmlns="{_RESPONSE}">'
                '<Response><Error Id="1"><ErrorCode>500</ErrorCode><Message>The email '
                "address can't be found.</Message></Error></Response></Autodiscover>").encode()
    return (f'<?xml version="1.0" encoding="utf-8"?><Autodiscover xmlns="{_RESPONSE}">'
            f'<Response xmlns="{_OUTLOOK}"><User><DisplayName>{escape(user.login)}'
            f"</DisplayName><AutoDiscoverSMTPAddress>{escape(user.email)}"
            "</AutoDiscoverSMTPAddress></User><Account><AccountType>email</AccountType>"
            "<Action>settings</Action><Protocol><Type>EXCH</Type>"
            f"<ServerVersion>73C1880A</ServerVersion><EwsUrl>{escape(ews_url)}</EwsUrl>"
            "</Protocol><Protocol><Type>EXPR</Type>"
            f"<EwsUrl>{escape(ews_url)}</EwsUrl></Protocol></Account></Response>"
            "</Autodiscover>").encode()


_SOAP_NS = "http://schemas.microsoft.com/exchange/2010/Autodiscover"


def soap_answer(user: User, request: Request, ews_url: str) -> bytes:
    try:
        root = ET.fromstring(request.body)
        asked = next((e.text or "" for e in root.iter(f"{{{_SOAP_NS}}}Mailbox")), "")
        wanted = [e.text or "" for e in root.iter(f"{{{_SOAP_NS}}}Setting")]
    except ET.ParseError:
        asked, wanted = "", []
    if asked.lower() != user.email.lower():
        body = ("<UserResponse><ErrorCode>InvalidUser</ErrorCode><ErrorMessage>Invalid user: "
                f"{escape(asked)}</ErrorMessage><UserSettings/></UserResponse>")
    else:
        settings = "".join(
            f'<UserSetting i:type="StringSetting"><Name>{name}</Name>'
            f"<Value>{escape(ews_url)}</Value></UserSetting>"
            for name in wanted if name in ("InternalEwsUrl", "ExternalEwsUrl"))
        body = ("<UserResponse><ErrorCode>NoError</ErrorCode><ErrorMessage>No error."
                f"</ErrorMessage><UserSettings>{settings}</UserSettings></UserResponse>")
    return ('<?xml version="1.0" encoding="utf-8"?><s:Envelope xmlns:s="http://schemas.'
            'xmlsoap.org/soap/envelope/"><s:Body><GetUserSettingsResponseMessage xmlns="'
            f'{_SOAP_NS}"><Response xmlns:i="http://www.w3.org/2001/XMLSchema-instance">'
            "<ErrorCode>NoError</ErrorCode><ErrorMessage/><UserResponses>"
            f"{body}</UserResponses></Response></GetUserSettingsResponseMessage></s:Body>"
            "</s:Envelope>").encode()

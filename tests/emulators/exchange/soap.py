"""SOAP envelopes as Exchange 2016 writes them (the ServerVersionInfo header exchangelib
reads), response messages, and element helpers."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from xml.sax.saxutils import escape

S = "http://schemas.xmlsoap.org/soap/envelope/"
M = "http://schemas.microsoft.com/exchange/services/2006/messages"
T = "http://schemas.microsoft.com/exchange/services/2006/types"
ET.register_namespace("s", S)
ET.register_namespace("m", M)
ET.register_namespace("t", T)

_HEAD = ('<?xml version="1.0" encoding="utf-8"?>'
         f'<s:Envelope xmlns:s="{S}" xmlns:m="{M}" xmlns:t="{T}">'
         '<s:Header><t:ServerVersionInfo MajorVersion="15" MinorVersion="1" '
         'MajorBuildNumber="2507" MinorBuildNumber="6" Version="V2017_07_11"/></s:Header>'
         '<s:Body>')
_TAIL = "</s:Body></s:Envelope>"


def t(name: str) -> str:
    return f"{{{T}}}{name}"


def m(name: str) -> str:
    return f"{{{M}}}{name}"


def local(tag: str) -> str:
    return tag.rpartition("}")[2]


def xml(element: ET.Element) -> str:
    return ET.tostring(element, encoding="unicode")


def envelope(body: str) -> bytes:
    return (_HEAD + body + _TAIL).encode()


def response(op: str, messages: list[str]) -> bytes:
    return envelope(f"<m:{op}Response><m:ResponseMessages>{''.join(messages)}"
                    f"</m:ResponseMessages></m:{op}Response>")


def ok(op: str, inner: str = "") -> str:
    return (f'<m:{op}ResponseMessage ResponseClass="Success">'
            f"<m:ResponseCode>NoError</m:ResponseCode>{inner}</m:{op}ResponseMessage>")


def error(op: str, code: str, text: str, extra: str = "") -> str:
    return (f'<m:{op}ResponseMessage ResponseClass="Error">'
            f"<m:MessageText>{escape(text)}</m:MessageText><m:ResponseCode>{code}"
            f"</m:ResponseCode><m:DescriptiveLinkKey>0</m:DescriptiveLinkKey>{extra}"
            f"</m:{op}ResponseMessage>")


class EwsError(Exception):
    """One item's or folder's failure, answered as an error response message."""

    def __init__(self, code: str, text: str) -> None:
        super().__init__(text)
        self.code, self.text = code, text


def fault(text: str) -> bytes:
    return envelope(f"<s:Fault><faultcode>s:Client</faultcode>"
                    f"<faultstring>{escape(text)}</faultstring></s:Fault>")

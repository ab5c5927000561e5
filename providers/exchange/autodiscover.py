"""Autodiscover: find a mailbox's EWS URL from its address, through the outbound guard.
https://learn.microsoft.com/exchange/client-developer/exchange-web-services/autodiscover-for-exchange

Without an Active Directory SCP (a server outside the domain cannot read one), exchangelib
tries, in order: (1) https://<domain>/, (2) https://autodiscover.<domain>/, (3) an
unauthenticated GET of http://autodiscover.<domain>/ whose 302 names an https endpoint,
(4) the DNS SRV record _autodiscover._tcp.<domain>. exchangelib 5 asks the SOAP endpoint
(autodiscover.svc, MS-OXWSADISC GetUserSettings) at each; Outlook POSTs the POX request
(autodiscover.xml, MS-OXDSCLI). What this module covers: steps 1 and 2, in that order,
each host with POX first and then SOAP (a server that switched POX off is still found);
tests/integration/test_exchange_provider.py finds the server both ways and the e2e
Exchange journey links through POX. Not covered, on purpose: steps 3 and 4 let whoever
controls plain HTTP or DNS on the path name the server the password goes to (Outlook asks
the user before it follows either). A mailbox only they would find is linked by typing its
EWS URL under "Server address"."""

from __future__ import annotations

from typing import Any
from xml.sax.saxutils import escape

import requests
from defusedxml import ElementTree as SafeET

from ..errors import NotCalendarServer, ProviderError, Unauthorized, Unreachable
from ..outbound.requests_adapter import GuardedAdapter
from .errors import LOCKED_OUT_TEXT, AccountLocked

_POX = "autodiscover/autodiscover.xml"
_SOAP = "autodiscover/autodiscover.svc"
_POX_REQUEST = ('<?xml version="1.0" encoding="utf-8"?><Autodiscover xmlns="http://schemas.'
                'microsoft.com/exchange/autodiscover/outlook/requestschema/2006"><Request>'
                "<EMailAddress>{email}</EMailAddress><AcceptableResponseSchema>http://"
                "schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a"
                "</AcceptableResponseSchema></Request></Autodiscover>")
# MS-OXWSADISC GetUserSettings, asking for the two EWS URLs only.
_SOAP_REQUEST = (
    '<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="http://schemas.'
    'xmlsoap.org/soap/envelope/" xmlns:a="http://schemas.microsoft.com/exchange/2010/'
    'Autodiscover" xmlns:wsa="http://www.w3.org/2005/08/addressing"><soap:Header>'
    "<a:RequestedServerVersion>Exchange2013</a:RequestedServerVersion><wsa:Action>http://"
    "schemas.microsoft.com/exchange/2010/Autodiscover/Autodiscover/GetUserSettings"
    "</wsa:Action><wsa:To>{url}</wsa:To></soap:Header><soap:Body>"
    "<a:GetUserSettingsRequestMessage><a:Request><a:Users><a:User><a:Mailbox>{email}"
    "</a:Mailbox></a:User></a:Users><a:RequestedSettings><a:Setting>InternalEwsUrl"
    "</a:Setting><a:Setting>ExternalEwsUrl</a:Setting></a:RequestedSettings></a:Request>"
    "</a:GetUserSettingsRequestMessage></soap:Body></soap:Envelope>")
_XML = "text/xml; charset=utf-8"


def candidates(email: str) -> list[tuple[str, str]]:
    """(URL, kind) in the order they are asked: each host's POX endpoint, then its SOAP
    endpoint; the domain itself first, then autodiscover.<domain>."""
    domain = email.rpartition("@")[2].strip().lower()
    return [(f"https://{host}/{path}", kind) for host in (domain, f"autodiscover.{domain}")
            for path, kind in ((_POX, "pox"), (_SOAP, "soap"))]


def _root(answer: bytes) -> Any | None:
    try:  # the answer comes from a server the user named: no entities, no DTDs
        return SafeET.fromstring(answer)
    except Exception:  # not XML (a web page), or XML defusedxml refuses
        return None


def ews_url_in(answer: bytes) -> str | None:
    """The EWS URL of a POX answer (EXCH, the internal protocol, before EXPR)."""
    root = _root(answer)
    found: dict[str, str] = {}
    for protocol in root.iter() if root is not None else ():
        if protocol.tag.endswith("}Protocol"):
            kind = next((c.text for c in protocol if c.tag.endswith("}Type")), None)
            url = next((c.text for c in protocol if c.tag.endswith("}EwsUrl")), None)
            if kind and url:
                found.setdefault(kind, url)
    return found.get("EXCH") or found.get("EXPR")


def ews_url_in_soap(answer: bytes) -> str | None:
    """The EWS URL of a GetUserSettings answer (InternalEwsUrl before ExternalEwsUrl, as
    EXCH before EXPR in POX)."""
    root = _root(answer)
    found: dict[str, str] = {}
    for setting in root.iter() if root is not None else ():
        if setting.tag.endswith("}UserSetting"):
            name = next((c.text for c in setting if c.tag.endswith("}Name")), None)
            value = next((c.text for c in setting if c.tag.endswith("}Value")), None)
            if name and value:
                found.setdefault(name, value)
    return found.get("InternalEwsUrl") or found.get("ExternalEwsUrl")


def discover(email: str, auth: requests.auth.AuthBase, timeout: float) -> str:
    """The EWS URL for ``email``; raises Unauthorized when a server refused the
    credentials, NotCalendarServer or Unreachable when no candidate answered usefully.
    Call inside :func:`providers.outbound.requests_adapter.guarded`."""
    refused: ProviderError | None = None
    done: set[str] = set()  # hosts that refused or did not answer: their other endpoint too
    with requests.Session() as session:
        session.trust_env = False
        session.mount("https://", GuardedAdapter())
        session.mount("http://", GuardedAdapter())
        for url, kind in candidates(email):
            host = url.split("/")[2]
            if host in done:
                continue
            try:
                return _ask(session, url, kind, email, auth, timeout)
            except AccountLocked:
                raise
            except Unauthorized as exc:  # a refusal names the mailbox: it outranks the rest
                done.add(host)
                refused = exc
            except NotCalendarServer as exc:
                refused = refused or exc
            except Unreachable as exc:
                done.add(host)
                refused = refused or exc
            except ProviderError as exc:  # the guard refused the address: try the next
                done.add(host)
                refused = exc if refused is None or isinstance(refused, Unreachable) else refused
    raise refused or Unreachable("autodiscover found no server")


def _ask(session: requests.Session, url: str, kind: str, email: str,
         auth: requests.auth.AuthBase, timeout: float) -> str:
    template = _POX_REQUEST if kind == "pox" else _SOAP_REQUEST
    body = template.format(email=escape(email), url=escape(url)).encode()
    try:
        answer = session.post(url, data=body, auth=auth, timeout=timeout,
                              allow_redirects=False, headers={"Content-Type": _XML})
    except requests.RequestException as exc:
        raise Unreachable(f"autodiscover at {url}: {type(exc).__name__}") from None
    if answer.status_code == 401 and LOCKED_OUT_TEXT.encode() in answer.content:
        raise AccountLocked(f"autodiscover at {url}: the account is locked out")
    if answer.status_code == 401:
        raise Unauthorized(f"autodiscover at {url} refused the credentials")
    read = ews_url_in if kind == "pox" else ews_url_in_soap
    found = read(answer.content) if answer.status_code == 200 else None
    if not found:
        raise NotCalendarServer(f"no EWS URL from autodiscover at {url}")
    return found

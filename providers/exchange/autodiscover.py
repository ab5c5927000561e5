"""POX Autodiscover (MS-OXDSCLI s3.1.5): find a mailbox's EWS URL from its address, through
the outbound guard. The candidate URLs follow the order Outlook and exchangelib use without
an Active Directory SCP: https://<domain>/ then https://autodiscover.<domain>/. (The plain
http redirect method and SRV records are not tried: both let a network attacker name the
server.) https://learn.microsoft.com/exchange/client-developer/exchange-web-services/autodiscover-for-exchange"""

from __future__ import annotations

from xml.sax.saxutils import escape

import requests
from defusedxml import ElementTree as SafeET

from ..errors import NotCalendarServer, ProviderError, Unauthorized, Unreachable
from ..outbound.requests_adapter import GuardedAdapter

_PATH = "autodiscover/autodiscover.xml"
_REQUEST = ('<?xml version="1.0" encoding="utf-8"?><Autodiscover xmlns="http://schemas.'
            'microsoft.com/exchange/autodiscover/outlook/requestschema/2006"><Request>'
            "<EMailAddress>{email}</EMailAddress><AcceptableResponseSchema>http://schemas."
            "microsoft.com/exchange/autodiscover/outlook/responseschema/2006a"
            "</AcceptableResponseSchema></Request></Autodiscover>")


def candidates(email: str) -> list[str]:
    domain = email.rpartition("@")[2].strip().lower()
    return [f"https://{domain}/{_PATH}", f"https://autodiscover.{domain}/{_PATH}"]


def ews_url_in(answer: bytes) -> str | None:
    """The EWS URL of a POX answer (EXCH, the internal protocol, before EXPR)."""
    try:  # the answer comes from a server the user named: no entities, no DTDs
        root = SafeET.fromstring(answer)
    except Exception:  # not XML (a web page), or XML defusedxml refuses
        return None
    found: dict[str, str] = {}
    for protocol in root.iter():
        if protocol.tag.endswith("}Protocol"):
            kind = next((c.text for c in protocol if c.tag.endswith("}Type")), None)
            url = next((c.text for c in protocol if c.tag.endswith("}EwsUrl")), None)
            if kind and url:
                found.setdefault(kind, url)
    return found.get("EXCH") or found.get("EXPR")


def discover(email: str, auth: requests.auth.AuthBase, timeout: float) -> str:
    """The EWS URL for ``email``; raises Unauthorized when a server refused the
    credentials, NotCalendarServer or Unreachable when no candidate answered usefully.
    Call inside :func:`providers.outbound.requests_adapter.guarded`."""
    body = _REQUEST.format(email=escape(email)).encode()
    refused: ProviderError | None = None
    with requests.Session() as session:
        session.trust_env = False
        session.mount("https://", GuardedAdapter())
        session.mount("http://", GuardedAdapter())
        for url in candidates(email):
            try:
                answer = session.post(url, data=body, auth=auth, timeout=timeout,
                                      allow_redirects=False,
                                      headers={"Content-Type": "text/xml; charset=utf-8"})
            except requests.RequestException as exc:
                refused = refused or Unreachable(f"autodiscover at {url}: {type(exc).__name__}")
                continue
            except ProviderError as exc:  # the guard refused the address: try the next
                refused = exc if refused is None or isinstance(refused, Unreachable) else refused
                continue
            if answer.status_code == 401:
                refused = Unauthorized(f"autodiscover at {url} refused the credentials")
                continue
            found = ews_url_in(answer.content) if answer.status_code == 200 else None
            if found:
                return found
            refused = refused or NotCalendarServer(f"no EWS URL from autodiscover at {url}")
    raise refused or Unreachable("autodiscover found no server")

"""POX Autodiscover (MS-OXDSCLI s3.1.5): find a mailbox's EWS URL from its address, through
the outbound guard. https://learn.microsoft.com/exchange/client-developer/exchange-web-services/autodiscover-for-exchange

Without an Active Directory SCP (a server outside the domain cannot read one), exchangelib
tries, in order: (1) https://<domain>/, (2) https://autodiscover.<domain>/, (3) an
unauthenticated GET of http://autodiscover.<domain>/ whose 302 names an https endpoint,
(4) the DNS SRV record _autodiscover._tcp.<domain>. exchangelib 5 asks the SOAP
endpoint (autodiscover.svc, GetUserSettings) at each; Outlook and older exchangelib POST
the POX request to autodiscover.xml, which Exchange 2016, 2019 and Subscription Edition
answer as well. What this module covers: steps 1 and 2, in that order, with the POX
request (tests/integration/test_exchange_provider.py and the e2e Exchange journey find the
server this way). Not covered, on purpose: step 3 and step 4 let whoever controls plain
HTTP or DNS on the path name the server the password goes to (Outlook asks the user before
it follows either), and the SOAP endpoint finds nothing POX does not on these versions.
A mailbox they would find is linked by typing its EWS URL under "Server address"."""

from __future__ import annotations

from xml.sax.saxutils import escape

import requests
from defusedxml import ElementTree as SafeET

from ..errors import NotCalendarServer, ProviderError, Unauthorized, Unreachable
from ..outbound.requests_adapter import GuardedAdapter
from .errors import LOCKED_OUT_TEXT, AccountLocked

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
            if answer.status_code == 401 and LOCKED_OUT_TEXT.encode() in answer.content:
                raise AccountLocked(f"autodiscover at {url}: the account is locked out")
            if answer.status_code == 401:
                refused = Unauthorized(f"autodiscover at {url} refused the credentials")
                continue
            found = ews_url_in(answer.content) if answer.status_code == 200 else None
            if found:
                return found
            refused = refused or NotCalendarServer(f"no EWS URL from autodiscover at {url}")
    raise refused or Unreachable("autodiscover found no server")

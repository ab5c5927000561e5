"""The consent screen driven as a browser without JavaScript would: follow the authorize
link, pick the provider, connect it, Allow, and land on the client app's redirect URI."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def _submit(browser: httpx.Client, link: str, base_url: str, provider: str,
            fields: Mapping[str, str]) -> tuple[str, str, httpx.Response]:
    """Follow the authorize link, pick ``provider`` and submit ``fields`` to its connect
    form. Returns the flow's URL, its CSRF token and the connect form's answer."""
    r = browser.get(link)
    assert r.status_code == 303, r.text
    flow = f"{base_url}{r.headers['location']}"
    match = CSRF.search(browser.get(flow).text)
    assert match is not None, "no csrf_token on the page"
    token = match.group(1)
    r = browser.post(f"{flow}/provider", data={"csrf_token": token, "provider": provider})
    assert r.status_code == 303, r.text
    return flow, token, browser.post(f"{flow}/connect", data={"csrf_token": token, **fields})


def consent_over_http(link: str, base_url: str, callback: Any, provider: str,
                      fields: Mapping[str, str], expect: str | None = None,
                      timeout: float = 30) -> dict[str, str]:
    """Returns the query the client app received (``code``, ``state``…). ``expect``: text
    the review page must show (e.g. the account name)."""
    with httpx.Client(follow_redirects=False, timeout=timeout) as browser:
        flow, token, r = _submit(browser, link, base_url, provider, fields)
        assert r.status_code == 303, r.text
        page = browser.get(flow)
        assert 'id="allow"' in page.text, page.text
        if expect is not None:
            assert expect in page.text, page.text
        r = browser.post(f"{flow}/decision", data={"csrf_token": token, "decision": "allow"})
        assert r.status_code == 303, r.text
        location = r.headers["location"]
        assert location.startswith(callback.url + "?"), location
        landed = browser.get(location)  # the browser lands on the client app
        assert landed.status_code == 200 and "Connected" in landed.text
    assert len(callback.queries) >= 1
    assert dict(parse_qsl(urlsplit(location).query)) == callback.queries[-1]
    return dict(callback.queries[-1])


SWITCH = re.compile(r'name="provider" value="([^"]+)"[^>]*id="switch-provider"')


def connect_refused(link: str, base_url: str, provider: str, fields: Mapping[str, str],
                    timeout: float = 30) -> tuple[str, str | None]:
    """Follow the authorize link, pick ``provider`` and submit ``fields``, expecting the
    form back with an error (200, no review step). Returns that page's HTML and, when it
    offers another provider instead (``#switch-provider``), the page that button leads to."""
    with httpx.Client(follow_redirects=False, timeout=timeout) as browser:
        flow, token, r = _submit(browser, link, base_url, provider, fields)
        assert r.status_code == 200 and 'id="error"' in r.text, r.text
        assert 'id="allow"' not in browser.get(flow).text  # nothing parked for review
        other = SWITCH.search(r.text)
        if other is None:
            return r.text, None
        switched = browser.post(f"{flow}/provider", data={"csrf_token": token,
                                                          "provider": other.group(1)})
        assert switched.status_code == 303, switched.text
        return r.text, browser.get(flow).text

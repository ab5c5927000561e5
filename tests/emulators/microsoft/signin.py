"""Walk the emulator's consent page without a browser, as a user would: open the authorize
URL, fill in the email, untick some permissions, press Accept or Cancel, and return the
query of the redirect back to the app (``code``/``state`` or ``error``...)."""

from __future__ import annotations

from html.parser import HTMLParser
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx


class _Form(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.action = ""
        self.fields: list[tuple[str, str]] = []
        self.scopes: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.action = found.get("action", "")
        elif tag == "input" and found.get("type") == "hidden":
            self.fields.append((found["name"], found.get("value", "")))
        elif tag == "input" and found.get("name") == "grant":
            self.scopes.append(found.get("value", ""))


def sign_in(client: httpx.Client, auth_uri: str, email: str, *, accept: bool = True,
            untick: tuple[str, ...] = ()) -> dict[str, str]:
    """The redirect's query parameters; ``client`` must trust the emulator's CA."""
    page = client.get(auth_uri)
    page.raise_for_status()
    form = _Form()
    form.feed(page.text)
    data = [*form.fields, ("login", email), ("decision", "accept" if accept else "cancel")]
    data += [("grant", s) for s in form.scopes if s not in untick]
    base = urlsplit(auth_uri)
    answer = client.post(f"{base.scheme}://{base.netloc}{form.action}",
                         content=urlencode(data).encode(), follow_redirects=False,
                         headers={"Content-Type": "application/x-www-form-urlencoded"})
    if answer.status_code != 302:
        raise AssertionError(f"no redirect: {answer.status_code} {answer.text[:300]}")
    query = parse_qs(urlsplit(answer.headers["location"]).query)
    return {k: v[-1] for k, v in query.items()}

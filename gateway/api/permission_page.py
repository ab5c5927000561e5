"""The page where a calendar's owner answers an app's request for elevated permissions.

Server-rendered, no JavaScript, the consent screen's look (``/oauth/static/consent.css``
and the app's branding stylesheet) and its headers: no framing, no caching, no referrer.
Documented form fields: ``csrf_token``, ``decision`` (``approve`` | ``decline``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.responses import HTMLResponse, Response

TEMPLATES = Environment(loader=FileSystemLoader(Path(__file__).parent / "templates"),
                        autoescape=select_autoescape(["html"]))


def render(template: str, status: int = 200, form_target: str | None = None,
           **context: Any) -> Response:
    html = TEMPLATES.get_template(template).render(**context)
    return secure_headers(HTMLResponse(html, status_code=status), form_target)


def secure_headers(response: Response, form_target: str | None = None) -> Response:
    """As the consent screen's (OAUTH.md 30-32). ``form_target``: where the form's answer
    redirects to, which Chromium checks against ``form-action`` too."""
    form_action = "'self'"
    if form_target:
        parts = urlsplit(form_target)
        form_action += f" {parts.scheme}://{parts.netloc}"
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; style-src 'self'; img-src 'self' https:; "
        f"form-action {form_action}; frame-ancestors 'none'; base-uri 'none'")
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response

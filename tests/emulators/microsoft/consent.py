"""The authorize endpoint: a sign-in and consent page (the account's email, one checkbox per
requested permission, Accept and Cancel), then a redirect to the app with ``code`` and
``state``, or with an error: the user cancelled (``access_denied``, AADSTS65004), the
tenant wants an administrator to consent (AADSTS90094 or 65001, configured per user), or the
account type is refused by the authority or the app's audience (AADSTS500200, 50020)."""

from __future__ import annotations

from dataclasses import dataclass
from html import escape
from urllib.parse import urlencode

from .errors import AADSTS_TEXT
from .identity import OIDC_SCOPES, Code, Identity, graph_scopes
from .places import Places
from .state import PERSONAL_TENANT, App, User, World

CARRIED = ("client_id", "redirect_uri", "state", "nonce", "code_challenge",
           "code_challenge_method", "scope", "response_mode")


@dataclass(frozen=True)
class Page:
    status: int
    html: str


@dataclass(frozen=True)
class Redirect:
    location: str


def _page(title: str, body: str, status: int = 200) -> Page:
    return Page(status, f"<!doctype html><html><head><title>{escape(title)}</title></head>"
                        f"<body><h1>{escape(title)}</h1>{body}</body></html>")


def authorize(world: World, tenant: str, query: dict[str, str]) -> Page:
    app = world.apps.get(query.get("client_id", ""))
    if app is None:
        return _page("Sign in", "<p>AADSTS700016: Application with identifier "
                                f"'{escape(query.get('client_id', ''))}' was not found in "
                                "the directory.</p>", 400)
    if query.get("redirect_uri") not in app.redirect_uris:
        return _page("Sign in", "<p>AADSTS50011: The redirect URI specified in the request "
                                "does not match the redirect URIs configured for the "
                                "application.</p>", 400)
    if query.get("response_type") != "code":
        return _page("Sign in", "<p>AADSTS900144: response_type must be 'code'.</p>", 400)
    hidden = "".join(f'<input type="hidden" name="{k}" value="{escape(query[k])}">'
                     for k in CARRIED if k in query)
    boxes = "".join(f'<li><label><input type="checkbox" name="grant" value="{escape(s)}" '
                    f'checked> {escape(s)}</label></li>'
                    for s in sorted(graph_scopes(query.get("scope", "")) - OIDC_SCOPES))
    hint = escape(query.get("login_hint", ""))
    form = (f'<form method="post" action="/{escape(tenant)}/oauth2/v2.0/authorize/consent">'
            f'{hidden}<label>Email <input name="login" type="email" value="{hint}"></label>'
            f"<p><b>{escape(app.name)}</b> wants to:</p><ul id=\"scopes\">{boxes}</ul>"
            '<button type="submit" name="decision" value="accept">Accept</button> '
            '<button type="submit" name="decision" value="cancel">Cancel</button></form>')
    return _page("Permissions requested", form)


def decide(world: World, identity: Identity, tenant: str,
           form: dict[str, str], grants: list[str], places: Places) -> Page | Redirect:
    app = world.apps.get(form.get("client_id", ""))
    if app is None or form.get("redirect_uri") not in app.redirect_uris:
        return _page("Sign in", "<p>AADSTS50011: invalid request.</p>", 400)
    if form.get("decision") != "accept":
        return _back(form, error="access_denied", code=65004, subcode="cancel")
    user = world.users.get(form.get("login", "").strip().lower())
    if user is None:
        return _page("Sign in", "<p>AADSTS50034: The user account "
                                f"{escape(form.get('login', ''))} does not exist.</p>", 400)
    refused = _refused(tenant, app, user)
    if refused is not None:
        return _back(form, error="invalid_request", code=refused)
    asked = graph_scopes(form.get("scope", ""))
    if user.admin_consent_error is None and not user.personal and \
            places.needs_admin(user.tenant, set(asked)):
        return _back(form, error="access_denied", code=90094)
    if user.admin_consent_error is not None:
        error = "consent_required" if user.admin_consent_error == 65001 else "access_denied"
        return _back(form, error=error, code=user.admin_consent_error)
    scopes = (asked & OIDC_SCOPES) | (asked & set(grants))
    code = identity.issue_code(Code(
        user.email, app.client_id, form["redirect_uri"], frozenset(scopes),
        form.get("code_challenge"), form.get("code_challenge_method", "plain"),
        form.get("nonce"), user.tenant))
    return _back(form, code=code)


def _refused(tenant: str, app: App, user: User) -> int | None:
    """The AADSTS code refusing this account here, if any."""
    work_only = tenant == "organizations" or app.audience in ("AzureADMultipleOrgs",
                                                              "AzureADMyOrg")
    if user.personal and work_only:
        return 500200
    if not user.personal and (tenant == "consumers"
                              or app.audience == "PersonalMicrosoftAccount"):
        return 50020
    if tenant not in ("common", "organizations", "consumers") and tenant != user.tenant \
            and not (user.personal and tenant == PERSONAL_TENANT):
        return 50020
    if app.audience == "AzureADMyOrg" and user.tenant != app.home_tenant:
        return 50020
    return None


def _back(form: dict[str, str], *, code: str | int | None = None,
          error: str | None = None, subcode: str | None = None) -> Page | Redirect:
    params: dict[str, str] = {}
    if error is not None:
        params["error"] = error
        params["error_description"] = f"AADSTS{code}: {AADSTS_TEXT.get(int(code or 0), '')}"
        if subcode:
            params["error_subcode"] = subcode
    else:
        params["code"] = str(code)
    if "state" in form:
        params["state"] = form["state"]
    if form.get("response_mode") == "form_post":
        fields = "".join(f'<input type="hidden" name="{escape(k)}" value="{escape(v)}">'
                         for k, v in params.items())
        return Page(200, f'<!doctype html><html><body onload="document.forms[0].submit()">'
                         f'<form method="post" action="{escape(form["redirect_uri"])}">'
                         f"{fields}<noscript><button>Continue</button></noscript></form>"
                         "</body></html>")
    separator = "&" if "?" in form["redirect_uri"] else "?"
    return Redirect(form["redirect_uri"] + separator + urlencode(params))

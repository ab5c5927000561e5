"""The authorization server: consent pages, token, revocation, introspection, metadata
(API.md s2; RFC 6749, 7009, 7662, 8414)."""

from __future__ import annotations

from .schema import (
    FORM,
    HTML,
    JSON,
    Json,
    array,
    header,
    obj,
    path,
    query,
    ref,
    reply,
    response_ref,
    string,
)

_CLIENT = {"client_id": string(minLength=1), "client_secret": string()}
TOKEN_REQUEST = obj({
    "grant_type": string(enum=["authorization_code", "refresh_token"]),
    "code": string("authorization_code: the code from the redirect"),
    "redirect_uri": string("authorization_code: as sent to /oauth/authorize"),
    "code_verifier": string("authorization_code with PKCE", minLength=43, maxLength=128),
    "refresh_token": string("refresh_token: the latest refresh token"),
    "scope": string("refresh_token: narrow the scope"),
    **_CLIENT,
}, ("grant_type",))

TOKEN = obj({
    "token_type": string(enum=["bearer"]), "access_token": string(),
    "refresh_token": string(), "expires_in": {"type": "integer", "minimum": 0},
    "scope": string(), "account_id": string(pattern="^acc_"), "sub": string(pattern="^acc_"),
    "linking_profile": obj({"provider_name": string(), "provider_service": string(),
                            "profile_id": string(), "profile_name": string()},
                           ("provider_name", "profile_id", "profile_name")),
}, ("token_type", "access_token", "refresh_token", "expires_in", "scope"))

REVOKE_REQUEST = obj({
    "token": string("an access or refresh token"),
    "sub": string("instead of token: the account (acc_…) to end the authorization of"),
    "refresh_token": string("Cronofy SDKs' name for token"),
    "token_type_hint": string(enum=["access_token", "refresh_token"]), **_CLIENT,
})
INTROSPECT_REQUEST = obj({"token": string(minLength=1),
                          "token_type_hint": string(), **_CLIENT}, ("token",))
INTROSPECTION = obj({
    "active": {"type": "boolean"}, "scope": string(), "client_id": string(),
    "sub": string(), "exp": {"type": "integer"},
    "token_type": string(enum=["Bearer", "refresh_token"]),
}, ("active",))

# POST /v1/application_calendars (API.md s2.2, s11): a calendar the client app owns.
APPLICATION_CALENDAR_REQUEST = obj({
    "application_calendar_id": string("the app's own id for the calendar", minLength=1,
                                      maxLength=200), **_CLIENT,
}, ("application_calendar_id",))
APPLICATION_CALENDAR_TOKEN = obj({
    "token_type": string(enum=["bearer"]), "access_token": string(),
    "refresh_token": string(), "expires_in": {"type": "integer", "minimum": 0},
    "scope": string(enum=["read_write"]), "sub": string(pattern="^apc_"),
    "application_calendar_id": string(),
    "linking_profile": obj({"provider_name": string(enum=["cronofy"]),
                            "provider_service": string(enum=["cronofy"]),
                            "profile_id": string(), "profile_name": string()},
                           ("provider_name", "provider_service", "profile_id",
                            "profile_name")),
}, ("token_type", "access_token", "refresh_token", "expires_in", "scope", "sub",
    "application_calendar_id", "linking_profile"))

SCHEMAS: dict[str, Json] = {"TokenResponse": TOKEN}

_NO_STORE = {"Cache-Control": header("no-store")}
_PAGE = reply("A page of the consent flow.", string(), media=HTML)
_SEE_OTHER = {"description": "On to the next step (or back to the app).",
              "headers": {"Location": header("where the browser goes next", required=True)}}
_ERROR_PAGE = reply("An error page (expired or foreign flow, unknown client or redirect "
                    "URI), never a redirect.", string(), media=HTML)
_FORBIDDEN_PAGE = reply("The form's CSRF token did not match, or it expired.", string(),
                        media=HTML)
_FLOW = path("flow_id", "the consent flow")
_OAUTH_ERRORS = {"400": response_ref("OAuthError"), "401": response_ref("OAuthClientError"),
                 "429": response_ref("OAuthThrottled"), "500": response_ref("ServerError"),
                 "503": response_ref("Unavailable")}
_CLIENT_AUTH: list[Json] = [{"clientBasic": []}, {}]


def _form(schema: Json) -> Json:
    return {"required": True, "content": {FORM: {"schema": schema}, JSON: {"schema": schema}}}


def _page_op(op: str, summary: str, *params: Json, post: Json | None = None) -> Json:
    operation: Json = {"operationId": op, "tags": ["Consent pages"], "security": [],
                       "summary": summary, "parameters": list(params), "responses": {
                           "200": _PAGE, "303": _SEE_OTHER, "400": _ERROR_PAGE}}
    if post is not None:
        operation["requestBody"] = {"required": True, "content": {FORM: {"schema": post}}}
        operation["responses"]["403"] = _FORBIDDEN_PAGE
    return operation


_CSRF = {"csrf_token": string("from the page's form")}

PATHS: dict[str, Json] = {
    "/.well-known/oauth-authorization-server": {"get": {
        "operationId": "metadata", "tags": ["OAuth"], "security": [],
        "summary": "Authorization server metadata (RFC 8414).",
        "responses": {"200": reply("OK", obj({
            "issuer": string(format="uri"), "authorization_endpoint": string(format="uri"),
            "token_endpoint": string(format="uri"), "scopes_supported": array(string()),
        }, ("issuer", "authorization_endpoint", "token_endpoint")))}}},
    "/oauth/authorize": {"get": _page_op(
        "authorize", "Start the consent flow in the user's browser.",
        query("client_id", string(minLength=1), "the client app", required=True),
        query("redirect_uri", string(format="uri"), "exactly as registered", required=True),
        query("response_type", string(enum=["code"]), "code", required=True),
        query("scope", string(minLength=1), "space separated, e.g. read_write",
              required=True),
        query("state", string(), "returned to the app unchanged"),
        query("provider_name", string(), "preselect a provider"),
        query("avoid_linking", string(), "true: always link a new account"),
        query("code_challenge", string(minLength=43, maxLength=128), "PKCE (S256)"),
        query("code_challenge_method", string(enum=["S256"]), "PKCE method"),
        query("link_token", string(), "from POST /v1/link_tokens: link the new profile to "
              "that account (single use; an invalid one is error=invalid_request)"))},
    "/oauth/flow/{flow_id}": {"get": _page_op("consentStep", "The flow's current step.",
                                              _FLOW)},
    "/oauth/flow/{flow_id}/provider": {"post": _page_op(
        "chooseProvider", "Choose the calendar provider.", _FLOW,
        post=obj(_CSRF | {"provider": string()}, ("csrf_token",)))},
    "/oauth/flow/{flow_id}/connect": {"post": _page_op(
        "connect", "Send the provider's form (server, username, password or URL).", _FLOW,
        post=obj(dict(_CSRF), ("csrf_token",)))},
    "/oauth/flow/{flow_id}/upstream": {"get": _page_op(
        "upstream", "Go to the provider's own sign-in (redirect providers).", _FLOW)},
    "/oauth/callback/{provider}": {"get": _page_op(
        "upstreamCallback", "Where the provider sends the user back.",
        path("provider", "a redirect provider of the registry"),
        query("state", string(), "sealed by Calgate"),
        query("code", string(), "the provider's code"),
        query("error", string(), "the provider's refusal"))},
    "/oauth/flow/{flow_id}/decision": {"post": _page_op(
        "decide", "Allow or deny the app.", _FLOW,
        post=obj(_CSRF | {"decision": string(enum=["allow", "deny"])}, ("csrf_token",)))},
    "/oauth/relink/{token}": {"get": _page_op(
        "relink", "A disconnected profile's profile_relink_url: sign in to the same upstream "
        "account again to reconnect it (no code is issued).",
        path("token", "signed by Calgate; expires, and works until the profile is "
             "reconnected"),
        query("redirect_uri", string(format="uri"), "optional, one the app registered: "
              "where the browser goes once reconnected (else a page says it is done)"))
        | {"responses": {"200": _PAGE, "303": _SEE_OTHER, "400": _ERROR_PAGE,
                         "404": reply("An unknown, expired or used relink link.", string(),
                                      media=HTML)}}},
    "/oauth/token": {"post": {
        "operationId": "token", "tags": ["OAuth"], "security": _CLIENT_AUTH,
        "summary": "Exchange a code, or refresh (a confidential client keeps its refresh "
                   "token; a public or opted-in one gets a new one).",
        "description": "Form or JSON body; the Authorization header is read only for Basic "
                       "client credentials. A code exchange adds account_id, sub and "
                       "linking_profile.",
        "requestBody": _form(TOKEN_REQUEST),
        "responses": {"200": reply("Tokens.", ref("TokenResponse"), headers=_NO_STORE),
                      **_OAUTH_ERRORS}}},
    "/oauth/token/revoke": {"post": {
        "operationId": "revoke", "tags": ["OAuth"], "security": _CLIENT_AUTH,
        "summary": "End the authorization a token (or sub) belongs to; 200 even for an "
                   "unknown token (RFC 7009).",
        "requestBody": _form(REVOKE_REQUEST),
        "responses": {"200": reply("Revoked (or nothing to revoke)."), **_OAUTH_ERRORS}}},
    "/v1/application_calendars": {"post": {
        "operationId": "applicationCalendar", "tags": ["OAuth"], "security": _CLIENT_AUTH,
        "summary": "Tokens for the client app's own calendar, kept by Calgate; made on the "
                   "first call for an application_calendar_id, the same one afterwards.",
        "description": "Client authentication in the body (as the Cronofy SDKs send it) or "
                       "Basic; confidential clients only. The calendar cannot invite "
                       "attendees; revoke it with /oauth/token/revoke (token or sub).",
        "requestBody": _form(APPLICATION_CALENDAR_REQUEST),
        "responses": {"200": reply("Tokens.", APPLICATION_CALENDAR_TOKEN, headers=_NO_STORE),
                      "422": response_ref("Invalid"), **_OAUTH_ERRORS}}},
    "/oauth/introspect": {"post": {
        "operationId": "introspect", "tags": ["OAuth"], "security": [{"clientBasic": []}, {}],
        "summary": "Is this token live, and whose? (RFC 7662; own tokens only)",
        "requestBody": _form(INTROSPECT_REQUEST),
        "responses": {"200": reply("OK", INTROSPECTION, headers=_NO_STORE),
                      **_OAUTH_ERRORS}}},
    "/oauth/branding/{client_id}.css": {"get": {
        "operationId": "brandingCss", "tags": ["Consent pages"], "security": [],
        "summary": "The client's accent colour for the consent pages.",
        "parameters": [path("client_id", "the client app")],
        "responses": {"200": reply("CSS (empty without an accent colour).", string(),
                                   media="text/css")}}},
}

"""Elevated permissions: ``POST /v1/permissions`` and the page the user answers it on
(API.md s6.3)."""

from __future__ import annotations

from .schema import BEARER, FORM, HTML, Json, array, body, errors, header, obj, path, reply, string

REQUEST = obj({
    "permissions": array(obj({
        "calendar_id": string("a calendar of this account", pattern="^cal_"),
        "permission_level": string(enum=["unrestricted"]),
    }, ("calendar_id", "permission_level")), minItems=1, maxItems=50),
    "redirect_uri": string("one of the app's registered redirect URIs: where the user's "
                           "browser goes after answering", format="uri"),
}, ("permissions", "redirect_uri"))

_TOKEN = path("token", "from the permissions_request url: single use, valid for an hour")
_PAGE = reply("The request in plain words (\"<App> asks to change and delete any event in "
              "<calendar>, not only the ones it created\") with Approve and Decline, or why "
              "it cannot be approved.", string(), media=HTML)
_REFUSED = reply("The address or form holds characters no real request contains (a NUL): a "
                 "page saying the link cannot be used.", string(), media=HTML)
_GONE = {"404": reply("Not a permissions link (a forged or mistyped token).", string(),
                      media=HTML),
         "410": reply("The link expired or was already answered.", string(), media=HTML)}

PATHS: dict[str, Json] = {
    "/v1/permissions": {"post": {
        "operationId": "elevatedPermissions", "tags": ["Account"], "security": BEARER,
        "summary": "Ask the user to let the app change and delete events it did not create.",
        "description": "Answers a URL on Calgate's page; send the user there (any browser). "
                       "After approval the calendars' permission_level is unrestricted. A "
                       "calendar the linked account cannot write (read-only upstream, or "
                       "linked with read-only or free/busy access) is 422 "
                       "`errors.not_writable`; an unknown calendar is 404; a redirect_uri "
                       "not registered for the app is 422.",
        "requestBody": body(REQUEST, form=False),
        "responses": {"200": reply("The page to send the user to.", obj({
            "permissions_request": obj({"url": string(format="uri")}, ("url",))},
            ("permissions_request",))), **errors(404, 422)}}},
    "/permissions/{token}": {
        "get": {"operationId": "permissionsPage", "tags": ["Consent pages"], "security": [],
                "summary": "The page where the user answers a permissions request.",
                "parameters": [_TOKEN], "responses": {"200": _PAGE, "400": _REFUSED,
                                                      **_GONE}},
        "post": {"operationId": "answerPermissions", "tags": ["Consent pages"],
                 "security": [],
                 "summary": "Approve or decline (once); then back to the app's redirect_uri, "
                            "with error=access_denied after a decline.",
                 "parameters": [_TOKEN],
                 "requestBody": {"required": True, "content": {FORM: {"schema": obj({
                     "csrf_token": string("from the page's form"),
                     "decision": string(enum=["approve", "decline"])}, ("csrf_token",))}}},
                 "responses": {
                     "200": reply("The calendar can no longer be approved: why, in plain "
                                  "words.", string(), media=HTML),
                     "303": {"description": "Back to the app's redirect_uri.",
                             "headers": {"Location": header("the redirect_uri",
                                                            required=True)}},
                     "400": _REFUSED,
                     "403": reply("The form's CSRF cookie is missing or does not match.",
                                  string(), media=HTML), **_GONE}}},
}
SCHEMAS: dict[str, Json] = {}

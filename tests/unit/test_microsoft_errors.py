"""The Microsoft error table: Graph answers, identity-platform errors and transport
failures onto the provider error tree; nothing from httpx leaves the package."""

from __future__ import annotations

import ssl
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from providers.errors import (
    CertificateInvalid,
    Conflict,
    CursorExpired,
    Forbidden,
    InvalidInput,
    NotFound,
    ProviderError,
    RateLimited,
    Unauthorized,
    Unavailable,
    Unreachable,
)
from providers.microsoft import errors
from providers.microsoft.config import GraphSettings, settings_of
from providers.registry import ProviderOptions


def graph_answer(status, code="", headers=None):
    body = {"error": {"code": code, "message": "msg"}} if code else None
    return httpx.Response(status, json=body, headers=headers or {},
                          request=httpx.Request("GET", "https://graph.example/v1.0/me"))


@pytest.mark.parametrize(("status", "code", "kind"), [
    (400, "ErrorInvalidRequest", InvalidInput), (401, "InvalidAuthenticationToken",
                                                 Unauthorized),
    (403, "ErrorAccessDenied", Forbidden), (404, "ErrorItemNotFound", NotFound),
    (409, "ErrorIrresolvableConflict", Conflict), (412, "ErrorIrresolvableConflict",
                                                   errors.PreconditionFailed),
    (410, "syncStateNotFound", CursorExpired), (410, "syncStateInvalid", CursorExpired),
    (410, "", CursorExpired), (410, "ErrorItemGone", NotFound),
    (500, "generalException", errors.Transient), (503, "", errors.Transient),
    (429, "ApplicationThrottled", errors.Throttled)])
def test_graph_statuses(status, code, kind):
    error = errors.from_response(graph_answer(status, code), "sync")
    assert type(error) is kind
    assert str(status) in str(error) and str(error).startswith("sync:")


@pytest.mark.parametrize("status", [429, 503, 504])
def test_throttling_carries_retry_after(status):
    error = errors.from_response(graph_answer(status, headers={"Retry-After": "7"}), "x")
    assert isinstance(error, RateLimited) and error.retry_after == 7.0


def test_retry_after_as_an_http_date():
    when = datetime.now(UTC) + timedelta(seconds=120)
    wait = errors.retry_after({"retry-after": format_datetime(when, usegmt=True)})
    assert wait is not None and 100 < wait <= 120
    assert errors.retry_after({"retry-after": "soon"}) is None
    assert errors.retry_after({}) is None


def test_a_non_json_error_body_is_tolerated():
    response = httpx.Response(502, text="<html>bad gateway</html>",
                              request=httpx.Request("GET", "https://graph.example/"))
    assert isinstance(errors.from_response(response, "x"), Unavailable)


@pytest.mark.parametrize(("result", "kind"), [
    ({"error": "invalid_grant", "error_codes": [70000]}, Unauthorized),
    ({"error": "invalid_grant", "error_description": "AADSTS700082: The refresh token has "
      "expired due to inactivity."}, Unauthorized),
    ({"error": "invalid_client", "error_codes": [7000222]}, errors.AppCredentialsRejected),
    ({"error": "temporarily_unavailable"}, errors.Transient),
    ({"error": "consent_required", "error_codes": [65001]}, Unauthorized),
])
def test_refreshing_a_stored_grant(result, kind):
    assert type(errors.from_identity(result, "refresh")) is kind


@pytest.mark.parametrize(("result", "kind"), [
    ({"error": "consent_required", "error_description": "AADSTS65001: The user or "
      "administrator has not consented"}, errors.AdminConsentRequired),
    ({"error": "access_denied", "error_description": "AADSTS90094: The grant requires "
      "admin permission."}, errors.AdminConsentRequired),
    ({"error": "access_denied", "error_description": "AADSTS65004: User declined to "
      "consent"}, errors.ConsentDeclined),
    ({"error": "access_denied"}, errors.ConsentDeclined),
    ({"error": "invalid_request", "error_description": "AADSTS50020: User account from "
      "identity provider does not exist in tenant"}, errors.AccountTypeRefused),
    ({"error": "unauthorized_client", "error_description": "AADSTS9002331: Application "
      "is configured for use by Microsoft Account users only"},
     errors.AccountTypeRefused),
    ({"error": "invalid_grant", "error_codes": [70000]}, Unauthorized),
    ({"error": "invalid_request", "error_description": "AADSTS50011: redirect URI "
      "mismatch"}, errors.AppCredentialsRejected),
])
def test_linking_errors_say_what_to_do(result, kind):
    error = errors.from_identity(result, "link", linking=True)
    assert type(error) is kind
    if kind is errors.AdminConsentRequired:
        assert "administrator" in str(error) and isinstance(error, Forbidden)


def test_account_refusal_wins_over_unauthorized_client():
    # AADSTS9002331 arrives as unauthorized_client: still an account-type problem, so the
    # account check runs before the app-credentials one while linking.
    result = {"error": "unauthorized_client", "error_codes": [9002331]}
    assert type(errors.from_identity(result, "link", linking=True)) is \
        errors.AccountTypeRefused


@pytest.mark.parametrize(("exc", "kind"), [
    (httpx.ConnectTimeout("timed out"), Unreachable),
    (httpx.ConnectError("refused"), Unreachable),
    (httpx.ReadError("reset"), errors.Transient),
    (httpx.InvalidURL("bad"), InvalidInput),
    (ValueError("odd"), Unavailable)])
def test_transport_failures(exc, kind):
    assert type(errors.translate(exc, "x")) is kind


def test_a_certificate_failure_is_named():
    cause = ssl.SSLCertVerificationError("certificate verify failed")
    wrapped = httpx.ConnectError("tls")
    wrapped.__cause__ = cause
    assert isinstance(errors.translate(wrapped, "x"), CertificateInvalid)


def test_nothing_from_httpx_leaves_translated():
    with pytest.raises(ProviderError) as caught, errors.translated("list calendars"):
        raise httpx.ReadTimeout("slow")
    assert not isinstance(caught.value, httpx.HTTPError)
    response = graph_answer(404, "ErrorItemNotFound")
    with pytest.raises(NotFound), errors.translated("get"):
        raise httpx.HTTPStatusError("404", request=response.request, response=response)


# -- config -------------------------------------------------------------------------------

def test_settings_default_to_microsofts_endpoints_and_common():
    for settings in (GraphSettings.from_values({}), settings_of(ProviderOptions())):
        assert settings.authority == "https://login.microsoftonline.com/common"
        assert settings.graph_root == "https://graph.microsoft.com/v1.0"
        assert settings.page_size > 10


def test_settings_from_values_for_the_emulator_and_a_pinned_tenant():
    settings = settings_of(ProviderOptions(settings={"office365": GraphSettings.from_values({
        "authority_base": "https://127.0.0.1:8443/", "tenant": "contoso.com",
        "graph_base": "https://127.0.0.1:8444", "page_size": "50"})}))
    assert settings.authority == "https://127.0.0.1:8443/contoso.com"
    assert settings.graph_root == "https://127.0.0.1:8444/v1.0" and settings.page_size == 50


@pytest.mark.parametrize("values", [
    {"authority_base": "http://login.example"},  # msal needs https
    {"graph_base": "https://graph.example/v1.0"},  # an origin, no path
    {"tenant": "a/b"}, {"page_size": "0"},
    {"page_size": "many"}, {"retry_attempts": "0"}])
def test_bad_settings_are_refused(values):
    with pytest.raises(InvalidInput):
        GraphSettings.from_values(values)

"""The Microsoft emulator's identity platform, driven by msal unmodified: the auth code flow
with PKCE through the consent page (confidential and public clients), refresh, the errors
users meet (cancel, admin consent, refused account type, expired refresh token)."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator

import httpx
import msal
import pytest
import requests

from tests.emulators.microsoft import MicrosoftEmulator
from tests.emulators.microsoft.identity import b64url
from tests.emulators.microsoft.signin import sign_in
from tests.emulators.microsoft.state import PERSONAL_TENANT

REDIRECT = "http://127.0.0.1:9/cb"
SCOPES = ["Calendars.ReadWrite", "User.Read"]
_sessions: list[requests.Session] = []  # msal never closes its http_client


@pytest.fixture(scope="module")
def emu() -> Iterator[MicrosoftEmulator]:
    with MicrosoftEmulator.running() as emulator:
        emulator.register_app("conf-app", "s3cret", "Portal", [REDIRECT])
        emulator.register_app("public-app", None, "Desktop", [REDIRECT])
        emulator.register_app("work-app", "s3cret", "Work only", [REDIRECT],
                              audience="AzureADMultipleOrgs")
        yield emulator
        for http in _sessions:
            http.close()


@pytest.fixture
def browser(emu: MicrosoftEmulator) -> Iterator[httpx.Client]:
    with httpx.Client(verify=emu.ca.client_context(), trust_env=False) as client:
        yield client


def session(emu: MicrosoftEmulator) -> requests.Session:
    """msal's HTTP client trusting only the emulator's CA (REQUESTS_CA_BUNDLE would win
    over ``verify=`` on the app)."""
    http = requests.Session()
    http.trust_env = False
    http.verify = emu.ca_path
    _sessions.append(http)
    return http


def confidential(emu: MicrosoftEmulator, client_id: str = "conf-app",
                 tenant: str = "common") -> msal.ConfidentialClientApplication:
    return msal.ConfidentialClientApplication(
        client_id, client_credential="s3cret", authority=emu.authority(tenant),
        instance_discovery=False, http_client=session(emu))


def claims(jwt: str) -> dict[str, object]:
    payload = jwt.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


@pytest.mark.filterwarnings("ignore:response_mode:UserWarning")
@pytest.mark.parametrize("personal", [False, True], ids=["work", "personal"])
def test_auth_code_with_pkce_then_refresh(emu: MicrosoftEmulator, browser: httpx.Client,
                                          personal: bool) -> None:
    email = f"{'bob' if personal else 'ada'}-{id(browser)}@example.com"
    emu.add_user(email, "Ada Lovelace", personal=personal)
    app = confidential(emu)
    flow = app.initiate_auth_code_flow(SCOPES, redirect_uri=REDIRECT)
    assert "code_challenge_method=S256" in flow["auth_uri"]
    back = sign_in(browser, flow["auth_uri"], email)
    assert back["state"] == flow["state"]
    result = app.acquire_token_by_auth_code_flow(flow, back)
    assert "access_token" in result, result
    assert set(result["scope"].split()) >= {"Calendars.ReadWrite", "User.Read"}
    tid = result["id_token_claims"]["tid"]
    assert (tid == PERSONAL_TENANT) == personal
    # msal sends the nonce's SHA-256 and checks the id_token echoes what it sent
    assert result["id_token_claims"]["nonce"] == hashlib.sha256(
        flow["nonce"].encode()).hexdigest()
    assert result["id_token_claims"]["preferred_username"] == email
    first_refresh = result["refresh_token"]
    accounts = app.get_accounts()
    refreshed = app.acquire_token_silent(SCOPES, account=accounts[0], force_refresh=True)
    assert refreshed is not None and refreshed["access_token"] != result["access_token"]
    assert refreshed["refresh_token"] != first_refresh  # rotated
    graph = httpx.get(f"{emu.graph_url}/me", verify=emu.ca.client_context(), trust_env=False,
                      headers={"Authorization": f"Bearer {refreshed['access_token']}"})
    assert graph.json()["userPrincipalName"] == email


def test_id_token_is_signed_by_the_served_jwks(emu: MicrosoftEmulator) -> None:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    email = "jwks@contoso.example"
    emu.add_user(email)
    refresh = emu.issue_refresh_token(email, "conf-app", ["openid", "Calendars.Read"])
    answer = confidential(emu).acquire_token_by_refresh_token(refresh, ["Calendars.Read"])
    header, payload, signature = answer["id_token"].split(".")
    config = httpx.get(f"{emu.authority()}/v2.0/.well-known/openid-configuration",
                       verify=emu.ca.client_context(), trust_env=False).json()
    key = httpx.get(config["jwks_uri"], verify=emu.ca.client_context(),
                    trust_env=False).json()["keys"][0]
    number = int.from_bytes(base64.urlsafe_b64decode(key["n"] + "=="))
    public = rsa.RSAPublicNumbers(65537, number).public_key()
    raw = base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4))
    public.verify(raw, f"{header}.{payload}".encode(), padding.PKCS1v15(), hashes.SHA256())
    assert claims(answer["id_token"])["aud"] == "conf-app"


@pytest.mark.filterwarnings("ignore:response_mode:UserWarning")
def test_public_client_and_unticked_scope(emu: MicrosoftEmulator,
                                          browser: httpx.Client) -> None:
    emu.add_user("pub@contoso.example")
    app = msal.PublicClientApplication("public-app", authority=emu.authority("organizations"),
                                       instance_discovery=False, http_client=session(emu))
    flow = app.initiate_auth_code_flow(SCOPES, redirect_uri=REDIRECT)
    back = sign_in(browser, flow["auth_uri"], "pub@contoso.example", untick=("User.Read",))
    result = app.acquire_token_by_auth_code_flow(flow, back)
    assert result["scope"].split() == ["Calendars.ReadWrite", "openid", "profile"]
    me = httpx.get(f"{emu.graph_url}/me", verify=emu.ca.client_context(), trust_env=False,
                   headers={"Authorization": f"Bearer {result['access_token']}"})
    assert me.status_code == 403  # /me needs User.Read, which the user refused


@pytest.mark.filterwarnings("ignore:response_mode:UserWarning")
def test_a_wrong_code_verifier_is_refused(emu: MicrosoftEmulator,
                                          browser: httpx.Client) -> None:
    emu.add_user("pkce@contoso.example")
    app = confidential(emu)
    flow = app.initiate_auth_code_flow(SCOPES, redirect_uri=REDIRECT)
    back = sign_in(browser, flow["auth_uri"], "pkce@contoso.example")
    flow["code_verifier"] = b64url(b"x" * 40)
    result = app.acquire_token_by_auth_code_flow(flow, back)
    assert result["error"] == "invalid_grant" and 501481 in result["error_codes"]


@pytest.mark.filterwarnings("ignore:response_mode:UserWarning")
@pytest.mark.parametrize(("case", "error", "code"), [
    ("cancel", "access_denied", "AADSTS65004"),
    ("admin90094", "access_denied", "AADSTS90094"),
    ("admin65001", "consent_required", "AADSTS65001"),
    ("personal-on-work-app", "invalid_request", "AADSTS500200"),
    ("work-on-consumers", "invalid_request", "AADSTS50020")])
def test_consent_errors_redirect_back(emu: MicrosoftEmulator, browser: httpx.Client,
                                      case: str, error: str, code: str) -> None:
    email = f"{case}@example.com"
    emu.add_user(email, personal=case.startswith("personal"))
    client_id, tenant = "conf-app", "common"
    if case.startswith("admin"):
        emu.require_admin_consent(email, int(case[5:]))
    elif case == "personal-on-work-app":
        client_id = "work-app"
    elif case == "work-on-consumers":
        tenant = "consumers"
    flow = confidential(emu, client_id, tenant).initiate_auth_code_flow(
        SCOPES, redirect_uri=REDIRECT)
    back = sign_in(browser, flow["auth_uri"], email, accept=case != "cancel")
    assert back["error"] == error
    assert back["error_description"].startswith(code)
    assert back["state"] == flow["state"]


@pytest.mark.parametrize("code", [70000, 700082])
def test_refresh_failure_is_invalid_grant_with_its_code(emu: MicrosoftEmulator,
                                                        code: int) -> None:
    email = f"stale{code}@contoso.example"
    emu.add_user(email)
    refresh = emu.issue_refresh_token(email, "conf-app", ["Calendars.Read"])
    emu.fail_refresh(email, code)
    result = confidential(emu).acquire_token_by_refresh_token(refresh, ["Calendars.Read"])
    assert result["error"] == "invalid_grant"
    assert result["error_codes"] == [code]


def test_wrong_secret_and_tenant_guid_authority(emu: MicrosoftEmulator) -> None:
    email = "guid@contoso.example"
    emu.add_user(email, tenant="11111111-2222-3333-4444-555555555555")
    refresh = emu.issue_refresh_token(email, "conf-app", ["Calendars.Read"])
    bad = msal.ConfidentialClientApplication(
        "conf-app", client_credential="nope", instance_discovery=False,
        authority=emu.authority("11111111-2222-3333-4444-555555555555"),
        http_client=session(emu))
    assert bad.acquire_token_by_refresh_token(refresh, ["Calendars.Read"])["error"] == \
        "invalid_client"
    good = confidential(emu, tenant="11111111-2222-3333-4444-555555555555")
    assert "access_token" in good.acquire_token_by_refresh_token(refresh, ["Calendars.Read"])
    asked_more = confidential(emu).acquire_token_by_refresh_token(
        refresh, ["Calendars.ReadWrite"])
    assert asked_more["error_codes"] == [65001]

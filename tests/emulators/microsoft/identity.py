"""The identity platform's state and token endpoint: authorization codes (PKCE S256 or
plain), access tokens, refresh tokens (rotated on every use, the old ones staying valid as
Microsoft's do), client authentication (client_secret_post, client_secret_basic, or none
for a public client) and id_tokens signed RS256 with the key the JWKS endpoint serves."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from .errors import AADSTS_TEXT, OAuthError
from .state import App, User, World

OIDC_SCOPES = frozenset({"openid", "profile", "email", "offline_access"})
GRAPH = "https://graph.microsoft.com/"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def graph_scopes(text: str) -> frozenset[str]:
    """Requested scopes with Graph's resource prefix removed (``.default``: none named)."""
    out = set()
    for scope in text.split():
        short = scope[len(GRAPH):] if scope.lower().startswith(GRAPH) else scope
        if short != ".default":
            out.add(short)
    return frozenset(out)


@dataclass
class Code:
    user: str
    client_id: str
    redirect_uri: str
    scopes: frozenset[str]
    challenge: str | None
    method: str
    nonce: str | None
    tenant: str


@dataclass
class Token:
    user: str
    client_id: str
    scopes: frozenset[str]
    expires: float


class Identity:
    def __init__(self, world: World, access_ttl: float) -> None:
        self.world, self.access_ttl = world, access_ttl
        self.codes: dict[str, Code] = {}
        self.access: dict[str, Token] = {}
        self.refresh: dict[str, Token] = {}
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = b64url(secrets.token_bytes(12))

    def jwks(self) -> dict[str, Any]:
        numbers = self.key.public_key().public_numbers()
        return {"keys": [{"kty": "RSA", "use": "sig", "alg": "RS256", "kid": self.kid,
                          "n": b64url(numbers.n.to_bytes((numbers.n.bit_length() + 7) // 8)),
                          "e": b64url(numbers.e.to_bytes(3))}]}

    def sign(self, claims: dict[str, Any]) -> str:
        header = b64url(json.dumps({"typ": "JWT", "alg": "RS256", "kid": self.kid}).encode())
        payload = b64url(json.dumps(claims).encode())
        signature = self.key.sign(f"{header}.{payload}".encode(), padding.PKCS1v15(),
                                  hashes.SHA256())
        return f"{header}.{payload}.{b64url(signature)}"

    def bearer(self, token: str) -> Token | None:
        found = self.access.get(token)
        return found if found is not None and found.expires > time.time() else None

    def issue_code(self, code: Code) -> str:
        value = "M.C5" + b64url(secrets.token_bytes(48))
        self.codes[value] = code
        return value

    def issue_refresh(self, user: str, client_id: str, scopes: frozenset[str]) -> str:
        value = "M.C5_RT" + b64url(secrets.token_bytes(64))
        self.refresh[value] = Token(user, client_id, scopes, float("inf"))
        return value

    # -- the token endpoint -------------------------------------------------------------

    def token(self, form: dict[str, str], basic: tuple[str, str] | None,
              issuer_base: str) -> dict[str, Any]:
        app = self._client(form, basic)
        grant = form.get("grant_type")
        if grant == "authorization_code":
            return self._code_grant(app, form, issuer_base)
        if grant == "refresh_token":
            return self._refresh_grant(app, form, issuer_base)
        raise OAuthError("unsupported_grant_type", 70003,
                         "The app requested an unsupported grant type.")

    def _client(self, form: dict[str, str], basic: tuple[str, str] | None) -> App:
        client_id = basic[0] if basic else form.get("client_id", "")
        secret = basic[1] if basic else form.get("client_secret")
        app = self.world.apps.get(client_id)
        if app is None:
            raise OAuthError("unauthorized_client", 700016,
                             f"Application with identifier '{client_id}' was not found in "
                             "the directory.")
        if app.secret is not None and secret != app.secret:
            raise OAuthError("invalid_client", 7000215, "Invalid client secret provided. "
                             "Ensure the secret being sent in the request is the client "
                             "secret value, not the client secret ID.", status=401)
        if app.secret is None and secret:
            raise OAuthError("invalid_client", 700025, "Client is public so neither "
                             "'client_assertion' nor 'client_secret' should be presented.")
        return app

    def _code_grant(self, app: App, form: dict[str, str], issuer_base: str) -> dict[str, Any]:
        code = self.codes.pop(form.get("code", ""), None)
        if code is None or code.client_id != app.client_id:
            raise OAuthError("invalid_grant", 70008, "The provided authorization code or "
                             "refresh token has expired due to inactivity. Send a new "
                             "interactive authorization request for this user and resource.")
        if form.get("redirect_uri") != code.redirect_uri:
            raise OAuthError("invalid_grant", 500112,
                             "The reply address does not match the reply address provided "
                             "when requesting Authorization code.")
        if code.challenge is not None and not _pkce_ok(code, form.get("code_verifier", "")):
            raise OAuthError("invalid_grant", 501481, "The Code_Verifier does not match the "
                             "code_challenge supplied in the authorization request.")
        return self._answer(code.user, app, code.scopes, issuer_base, code.nonce)

    def _refresh_grant(self, app: App, form: dict[str, str],
                       issuer_base: str) -> dict[str, Any]:
        held = self.refresh.get(form.get("refresh_token", ""))
        if held is None or held.client_id != app.client_id:
            raise OAuthError("invalid_grant", 9002313, "Invalid request. Request is "
                             "malformed or invalid.", suberror="bad_token")
        user = self.world.users[held.user]
        if user.refresh_error is not None:
            raise OAuthError("invalid_grant", user.refresh_error,
                             AADSTS_TEXT[user.refresh_error], suberror="bad_token")
        asked = graph_scopes(form.get("scope", "")) - OIDC_SCOPES
        if not asked <= held.scopes:
            raise OAuthError("invalid_grant", 65001, AADSTS_TEXT[65001],
                             suberror="consent_required")
        scopes = (asked or held.scopes - OIDC_SCOPES) | (held.scopes & OIDC_SCOPES)
        return self._answer(held.user, app, scopes, issuer_base, None, keep=held.scopes)

    def _answer(self, email: str, app: App, scopes: frozenset[str], issuer_base: str,
                nonce: str | None, keep: frozenset[str] | None = None) -> dict[str, Any]:
        user = self.world.users[email]
        access = "EwB" + b64url(secrets.token_bytes(96))
        self.access[access] = Token(email, app.client_id, scopes,
                                    time.time() + self.access_ttl)
        shown = sorted(scopes - {"offline_access"})
        out: dict[str, Any] = {"token_type": "Bearer", "scope": " ".join(shown),
                               "expires_in": int(self.access_ttl),
                               "ext_expires_in": int(self.access_ttl), "access_token": access}
        if "offline_access" in scopes:
            out["refresh_token"] = self.issue_refresh(email, app.client_id, keep or scopes)
        if "openid" in scopes:
            out["id_token"] = self.sign(self._claims(user, app, issuer_base, nonce))
            out["client_info"] = b64url(json.dumps({"uid": user.oid,
                                                    "utid": user.tenant}).encode())
        return out

    def _claims(self, user: User, app: App, issuer_base: str,
                nonce: str | None) -> dict[str, Any]:
        now = int(time.time())
        claims: dict[str, Any] = {
            "ver": "2.0", "iss": f"{issuer_base}/{user.tenant}/v2.0", "aud": app.client_id,
            "iat": now, "nbf": now, "exp": now + 3600, "sub": b64url(hashlib.sha256(
                f"{user.oid}{app.client_id}".encode()).digest()),
            "oid": user.oid, "tid": user.tenant, "name": user.name,
            "preferred_username": user.email, "email": user.email}
        if nonce:
            claims["nonce"] = nonce
        return claims

    def expire_access(self, email: str | None) -> None:
        for token in self.access.values():
            if email is None or token.user == email:
                token.expires = 0

    def revoke_user(self, email: str) -> None:
        """The user removes the app from their account: every token stops working."""
        for table in (self.access, self.refresh):
            for key in [k for k, t in table.items() if t.user == email]:
                del table[key]


def _pkce_ok(code: Code, verifier: str) -> bool:
    if code.method == "S256":
        return b64url(hashlib.sha256(verifier.encode()).digest()) == code.challenge
    return verifier == code.challenge

"""Random values and keyed digests (oauth_server/crypto.py): OAUTH.md 29, 48, 67, 71, 93."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

from oauth_server import crypto
from oauth_server.crypto import ServerKeys, new_id, new_token, seal_with_token, unseal_with_token

KEYS = ServerKeys(b"k" * 32)


def test_tokens_are_256_bit_url_safe_and_unique():
    """OAUTH.md 29, 67: >= 128 bits from a CSPRNG, never repeated."""
    found = {new_token() for _ in range(2000)}
    assert len(found) == 2000
    for token in found:
        assert re.fullmatch(r"[A-Za-z0-9_-]{43}", token)
        assert len(base64.urlsafe_b64decode(token + "=")) == 32


def test_tokens_come_from_the_secrets_module(monkeypatch):
    """OAUTH.md 29, 67 (white-box): the CSPRNG, not ``random``."""
    calls: list[int] = []

    def fake(nbytes: int) -> str:
        calls.append(nbytes)
        return "x" * 43

    monkeypatch.setattr(crypto.secrets, "token_urlsafe", fake)
    assert new_token() == "x" * 43
    assert calls == [32]


def test_public_ids_carry_120_random_bits():
    ids = {new_id("acc_") for _ in range(500)}
    assert len(ids) == 500
    assert all(re.fullmatch(r"acc_[a-z2-7]{24}", i) for i in ids)


def test_digests_are_keyed_hmac_sha256_and_separated_by_purpose():
    """OAUTH.md 48, 93: HMAC under derived keys; a token, a secret and a browser value with the
    same text get different digests; another server key gives other digests."""
    value = "same-text"
    digests = {KEYS.token_digest(value), KEYS.secret_digest(value), KEYS.browser_digest(value)}
    assert len(digests) == 3
    assert all(re.fullmatch(r"[0-9a-f]{64}", d) for d in digests)
    assert KEYS.token_digest(value) != hashlib.sha256(value.encode()).hexdigest()
    assert KEYS.token_digest(value) != ServerKeys(b"o" * 32).token_digest(value)
    derived = hmac.new(b"k" * 32, b"token", hashlib.sha256).digest()
    assert KEYS.token_digest(value) == hmac.new(derived, value.encode(),
                                                hashlib.sha256).hexdigest()


def test_equal_is_hmac_compare_digest(monkeypatch):
    """OAUTH.md 48: constant-time comparison."""
    calls: list[tuple[bytes, bytes]] = []

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return a == b

    monkeypatch.setattr(crypto.hmac, "compare_digest", spy)
    assert crypto.equal("abc", "abc") and not crypto.equal("abc", "abd")
    assert calls == [(b"abc", b"abc"), (b"abc", b"abd")]


def test_csrf_token_is_bound_to_session_and_flow():
    """OAUTH.md 33."""
    token = KEYS.csrf_token("session-a", "flow-1")
    assert token == KEYS.csrf_token("session-a", "flow-1")
    assert token != KEYS.csrf_token("session-b", "flow-1")
    assert token != KEYS.csrf_token("session-a", "flow-2")
    assert token != ServerKeys(b"o" * 32).csrf_token("session-a", "flow-1")


def test_seal_round_trips_and_rejects_tampering_and_other_purposes():
    sealed = KEYS.seal("cursor", {"page": 2})
    assert KEYS.unseal("cursor", sealed) == {"page": 2}
    assert KEYS.unseal("other", sealed) is None
    assert ServerKeys(b"o" * 32).unseal("cursor", sealed) is None
    flipped = sealed[:-2] + ("A" if sealed[-2] != "A" else "B") + sealed[-1]
    assert KEYS.unseal("cursor", flipped) is None
    assert KEYS.unseal("cursor", "garbage!") is None


def test_successor_pair_is_readable_only_with_the_rotated_token():
    """OAUTH.md 71, 93: the grace-window successor in the database is sealed under a key
    derived from the old refresh token, which the database does not hold."""
    pair = {"access_token": "access-token-value", "refresh_token": "refresh-token-value",
            "expires_in": 3600, "scope": "s"}
    blob = seal_with_token("old-refresh-token", pair)
    assert b"token-value" not in blob
    assert unseal_with_token("old-refresh-token", blob) == pair
    assert unseal_with_token("another-token", blob) is None
    digest = KEYS.token_digest("old-refresh-token")
    assert unseal_with_token(digest, blob) is None
    assert unseal_with_token("old-refresh-token", blob[:-1] + bytes([blob[-1] ^ 1])) is None
    assert seal_with_token("old-refresh-token", pair) != blob  # fresh nonce each time

"""Webhook signatures (API.md s9.2): the Cronofy test vectors, pycronofy's own verifier on a
rotation header, Calgate-Signature checking, and the secrets kept in the secret store."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pycronofy
import pytest

from gateway.secrets.local import LocalSecretStore
from gateway.services.signing import (
    CALGATE_HEADER,
    CRONOFY_HEADER,
    ClientSecrets,
    calgate_signature,
    cronofy_hmac,
    secrets_path,
    verify_calgate_signature,
)

BODY = b'{"example":"well-known"}'
THUMBS = "opposable thumbs"
OTHER = "aPPwd-ASDFAsdfasdfasdfsadfasdfASDFSADF_asdfasdfasdf"
THUMBS_HMAC = "38ArsN7+J/O8joGsgirVEdV16a/+eb+5QgHGIiuv4hk="
OTHER_HMAC = "0g6bhIumRlRffctPXuASSl3u6AXOxnYRw+hiTp7IvTg="
NOW = datetime(2024, 11, 16, 9, 24, 16, tzinfo=UTC)


@pytest.fixture
def kept(tmp_path: Path) -> ClientSecrets:
    return ClientSecrets(LocalSecretStore(tmp_path / "secrets"))


@pytest.mark.parametrize(("secret", "expected"), [(THUMBS, THUMBS_HMAC), (OTHER, OTHER_HMAC)])
def test_cronofy_hmac_matches_the_documented_vectors(secret, expected):
    assert cronofy_hmac([secret], BODY) == expected


def test_rotation_header_lists_both_without_spaces():
    assert cronofy_hmac([OTHER, THUMBS], BODY) == f"{OTHER_HMAC},{THUMBS_HMAC}"


@pytest.mark.parametrize("secret", [THUMBS, OTHER])
def test_pycronofy_accepts_the_rotation_header_with_either_secret(secret):
    header = cronofy_hmac([OTHER, THUMBS], BODY)
    client = pycronofy.Client(client_id="cli_test", client_secret=secret)
    assert client.hmac_valid(header, BODY.decode())
    assert not client.hmac_valid(header, BODY.decode().replace("known", "known!"))


def test_pycronofy_refuses_a_header_without_its_secret():
    client = pycronofy.Client(client_id="cli_test", client_secret="another secret")
    assert not client.hmac_valid(cronofy_hmac([OTHER, THUMBS], BODY), BODY.decode())


def test_calgate_signature_shape():
    header = calgate_signature([OTHER, THUMBS], BODY, 1731749056)
    t, first, second = header.split(",")
    assert t == "t=1731749056"
    assert first.startswith("v1=") and second.startswith("v1=") and first != second
    assert len(first) == len("v1=") + 64 and " " not in header


@pytest.mark.parametrize("secret", [THUMBS, OTHER])
def test_calgate_signature_verifies_with_either_secret(secret):
    header = calgate_signature([OTHER, THUMBS], BODY, int(NOW.timestamp()))
    assert verify_calgate_signature(header, BODY, [secret], now=NOW)
    assert verify_calgate_signature(header, BODY, [secret], now=NOW + timedelta(seconds=299))


def test_calgate_signature_refuses_an_expired_timestamp():
    header = calgate_signature([THUMBS], BODY, int(NOW.timestamp()))
    assert not verify_calgate_signature(header, BODY, [THUMBS], now=NOW + timedelta(seconds=301))
    assert verify_calgate_signature(header, BODY, [THUMBS], tolerance=600,
                                    now=NOW + timedelta(seconds=301))
    assert not verify_calgate_signature(header, BODY, [THUMBS], now=NOW - timedelta(seconds=301))


def test_calgate_signature_refuses_a_tampered_body_or_timestamp():
    t = int(NOW.timestamp())
    header = calgate_signature([THUMBS], BODY, t)
    assert not verify_calgate_signature(header, BODY + b" ", [THUMBS], now=NOW)
    moved = header.replace(f"t={t}", f"t={t + 1}")
    assert not verify_calgate_signature(moved, BODY, [THUMBS], now=NOW)
    assert not verify_calgate_signature(header, BODY, ["wrong secret"], now=NOW)


@pytest.mark.parametrize("header", ["", "t=1731749056", "v1=00", "t=x,v1=00",
                                    "t=1731749056,t=1731749056,v1=00", "t=\u0661\u0667,v1=00",
                                    "t=1731749056,v1=é"])
def test_calgate_signature_refuses_malformed_headers(header):
    assert not verify_calgate_signature(header, BODY, [THUMBS], now=NOW)


def test_nothing_kept_means_no_signature(kept):
    assert kept.active("cli_unknown") == []
    assert kept.sign("cli_unknown", BODY) is None


def test_keep_sign_and_forget(kept):
    kept.keep("cli_a", THUMBS, None)
    assert kept.active("cli_a") == [THUMBS]
    headers = kept.sign("cli_a", BODY, now=NOW)
    assert headers == {CRONOFY_HEADER: THUMBS_HMAC,
                       CALGATE_HEADER: calgate_signature([THUMBS], BODY, int(NOW.timestamp()))}
    kept.forget("cli_a")
    assert kept.active("cli_a") == []
    kept.forget("cli_a")  # no error when nothing is kept


def test_rotation_with_overlap_keeps_both_until_then(kept):
    kept.keep("cli_a", THUMBS, None)
    until = datetime.now(UTC) + timedelta(hours=1)
    kept.keep("cli_a", OTHER, until)
    assert kept.active("cli_a") == [OTHER, THUMBS]
    assert kept.sign("cli_a", BODY)[CRONOFY_HEADER] == f"{OTHER_HMAC},{THUMBS_HMAC}"
    assert kept.active("cli_a", now=until + timedelta(seconds=1)) == [OTHER]
    assert kept.sign("cli_a", BODY, now=until)[CRONOFY_HEADER] == OTHER_HMAC


def test_rotation_stored_shape(kept, tmp_path):
    kept.keep("cli_a", THUMBS, None)
    until = datetime.now(UTC) + timedelta(hours=1)
    kept.keep("cli_a", OTHER, until)
    stored = LocalSecretStore(tmp_path / "secrets").get(secrets_path("cli_a"))
    assert json.loads(stored["secrets"]) == [
        {"secret": OTHER, "until": None},
        {"secret": THUMBS, "until": until.isoformat()}]


def test_rotation_without_overlap_drops_the_old_secret(kept):
    kept.keep("cli_a", THUMBS, None)
    kept.keep("cli_a", OTHER, None)
    assert kept.active("cli_a") == [OTHER]


def test_a_second_rotation_ends_the_first_overlap(kept):
    until = datetime.now(UTC) + timedelta(hours=1)
    kept.keep("cli_a", "first", None)
    kept.keep("cli_a", "second", until)
    kept.keep("cli_a", "third", until)
    assert kept.active("cli_a") == ["third", "second"]


def test_an_overlap_already_over_is_not_kept(kept):
    kept.keep("cli_a", THUMBS, None)
    kept.keep("cli_a", OTHER, datetime.now(UTC) - timedelta(seconds=1))
    assert kept.active("cli_a") == [OTHER]

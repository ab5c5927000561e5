"""Housekeeping (gateway.app.housekeep, run every minute by the API process) deletes the
rows that can no longer be used: link tokens used or expired, and permissions requests
expired (answered or not) more than a day ago. Rows still in use stay. Both databases."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert, select, update

from gateway.app import housekeep
from gateway.persistence.tables import accounts, link_tokens, permission_requests
from gateway.services.permissions import RequestUnusable, token_hash
from tests.support.oauth import REDIRECT

CLIENT = "cli_housekeeping"


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _account(gateway, subject: str) -> str:
    with gateway.engine.begin() as conn:
        conn.execute(insert(accounts).values(id=subject, client_id=CLIENT, scope="",
                                             created_at=datetime.now(UTC)))
    return subject


def _expire(gateway, table, digest: str, ago: timedelta) -> None:
    with gateway.engine.begin() as conn:
        conn.execute(update(table).where(table.c.token_hash == digest)
                     .values(expires_at=datetime.now(UTC) - ago))


def _left(gateway, table) -> set[str]:
    with gateway.engine.connect() as conn:
        return set(conn.execute(select(table.c.token_hash)).scalars())


def test_used_and_expired_link_tokens_go(gateway):
    subject = _account(gateway, "acc_linktokens")
    live, used, expired = (gateway.accounts.mint_link_token(subject, CLIENT)
                           for _ in range(3))
    with gateway.engine.begin() as conn:
        conn.execute(update(link_tokens).where(link_tokens.c.token_hash == _digest(used))
                     .values(used_at=datetime.now(UTC)))
    _expire(gateway, link_tokens, _digest(expired), timedelta(seconds=1))

    housekeep(gateway)

    assert _left(gateway, link_tokens) == {_digest(live)}
    assert gateway.accounts.find_link_token(CLIENT, live) == _digest(live)
    assert gateway.accounts.find_link_token(CLIENT, used) is None


def test_permission_requests_go_a_day_after_they_expire(gateway):
    permissions = gateway.permissions
    subject = _account(gateway, "acc_permissions")
    tokens = {name: permissions.request(subject, CLIENT, [], REDIRECT)
              for name in ("open", "answered", "just_expired", "expired", "answered_long_ago")}
    permissions.answer(tokens["answered"], approve=False)
    permissions.answer(tokens["answered_long_ago"], approve=True)
    _expire(gateway, permission_requests, token_hash(tokens["just_expired"]),
            timedelta(hours=1))
    for name in ("expired", "answered_long_ago"):
        _expire(gateway, permission_requests, token_hash(tokens[name]),
                timedelta(days=1, hours=1))

    housekeep(gateway)

    assert _left(gateway, permission_requests) == {
        token_hash(tokens[name]) for name in ("open", "answered", "just_expired")}
    assert permissions.find(tokens["open"]).redirect_uri == REDIRECT
    for name, reason in (("answered", "already answered"), ("just_expired", "expired"),
                         ("expired", "unknown")):
        with pytest.raises(RequestUnusable, match=f"^{reason}$"):
            permissions.find(tokens[name])

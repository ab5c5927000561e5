"""Relink URLs (gateway/services/relink.py): signed, bound to one disconnection, expiring."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from gateway.services.relink import RelinkClaim, RelinkLinks

NOW = datetime(2027, 1, 10, 12, 0, tzinfo=UTC)
GONE = datetime(2027, 1, 9, 8, 30, tzinfo=UTC)
LINKS = RelinkLinks(b"k" * 32, "https://cal.example/")


def token_of(url: str) -> str:
    assert url.startswith("https://cal.example/oauth/relink/")
    return url.rsplit("/", 1)[1]


def test_a_connected_profile_has_no_relink_url():
    assert LINKS.url({"id": "pro_a", "connected": True, "disconnected_at": None}) is None


def test_the_token_names_the_profile_and_its_disconnection():
    url = LINKS.url({"id": "pro_a", "connected": False, "disconnected_at": GONE}, NOW)
    assert LINKS.read(token_of(url), NOW) == RelinkClaim("pro_a", int(GONE.timestamp()))
    # SQLite hands back naive datetimes: the same disconnection, the same claim.
    naive = LINKS.url({"id": "pro_a", "connected": False,
                       "disconnected_at": GONE.replace(tzinfo=None)}, NOW)
    assert naive == url


def test_the_url_is_stable_through_the_day_and_expires():
    row = {"id": "pro_a", "connected": False, "disconnected_at": GONE}
    url = LINKS.url(row, NOW)
    assert LINKS.url(row, NOW + timedelta(hours=1)) == url
    assert LINKS.read(token_of(url), NOW + timedelta(days=14)) is not None
    assert LINKS.read(token_of(url), NOW + timedelta(days=16)) is None


def test_forged_and_foreign_tokens_are_refused():
    token = token_of(LINKS.url({"id": "pro_a", "connected": False,
                                "disconnected_at": GONE}, NOW))
    payload, mac = token.split(".")
    other = RelinkLinks(b"x" * 32, "https://cal.example")
    assert other.read(token, NOW) is None
    assert LINKS.read(payload + "." + mac[:-2] + "AA", NOW) is None
    assert LINKS.read(payload, NOW) is None
    assert LINKS.read("%%%." + mac, NOW) is None
    assert LINKS.read("", NOW) is None

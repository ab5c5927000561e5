"""Accounts and profiles: one account per user per app, browser linking, relinking,
provider pre-selection, and the consent screen's plain words."""

from __future__ import annotations

from tests.support.oauth import Pkce, authorize, connect, exchange, make_client, start


def tokens_for(http, client, username="jane@example.com", **extra):
    pkce = Pkce()
    code = authorize(http, client, pkce=pkce, username=username, extra=extra or None)
    body = exchange(http, client, code, pkce)
    assert body["_status"] == 200, body
    return body


def test_second_calendar_from_the_same_browser_joins_the_same_account(http, gateway):
    client = make_client(gateway)
    first = tokens_for(http, client)
    second = tokens_for(http, client, username="work@example.com")
    assert second["sub"] == first["sub"]
    assert second["linking_profile"]["profile_id"] != first["linking_profile"]["profile_id"]
    r = http.get("/v1/profiles", headers={"Authorization": f"Bearer {second['access_token']}"})
    names = [p["profile_name"] for p in r.json()["profiles"]]
    assert names == ["jane@example.com", "work@example.com"]


def test_avoid_linking_gives_a_new_account(http, gateway):
    client = make_client(gateway)
    first = tokens_for(http, client)
    # pycronofy sends the capitalised Python booleans.
    separate = tokens_for(http, client, username="work@example.com", avoid_linking="True")
    assert separate["sub"] != first["sub"]
    linked = tokens_for(http, client, username="home@example.com", avoid_linking="False")
    assert linked["sub"] == first["sub"]


def test_another_browser_gets_another_account(http, gateway):
    client = make_client(gateway)
    first = tokens_for(http, client)
    http.cookies.clear()
    assert tokens_for(http, client)["sub"] != first["sub"]


def test_relinking_the_same_upstream_account_keeps_the_profile(http, gateway):
    client = make_client(gateway)
    first = tokens_for(http, client)
    again = tokens_for(http, client, username="Jane@Example.com")
    assert again["linking_profile"]["profile_id"] == first["linking_profile"]["profile_id"]


def test_accounts_of_different_apps_are_separate(http, gateway):
    one, two = make_client(gateway, name="One"), make_client(gateway, name="Two")
    assert tokens_for(http, one)["sub"] != tokens_for(http, two)["sub"]


def test_provider_name_preselects_the_provider(http, gateway):
    client = make_client(gateway)
    flow = start(http, client, pkce=Pkce(), extra={"provider_name": "memory"})
    page = http.get(flow).text
    assert 'name="password"' in page and "Connect Test Calendar" in page
    # Unknown or unavailable providers fall back to the chooser; empty counts as absent.
    for value in ("", "google", "nonsense"):
        page = http.get(start(http, client, pkce=Pkce(), extra={"provider_name": value})).text
        assert "Choose where your calendar is" in page


def test_real_providers_are_listed_as_not_yet_available(http, gateway):
    client = make_client(gateway)
    page = http.get(start(http, client, pkce=Pkce())).text
    for label in ("Google Calendar", "Microsoft 365", "Outlook.com", "iCloud",
                  "CalDAV server", "Calendar feed (ICS)", "Exchange (on-premises)",
                  "Exchange (Microsoft sign-in)"):
        assert label in page
    assert page.count("Not yet available") == 8
    assert 'id="provider-memory"' in page


def test_consent_screen_says_what_the_app_may_do_in_plain_words(http, gateway):
    client = make_client(gateway, name="Mentor Hub")
    flow = start(http, client, pkce=Pkce(), scope="read_free_busy create_event delete_event")
    page = connect(http, flow)
    assert "Allow Mentor Hub to use your calendar?" in page
    assert "jane@example.com" in page
    assert "See when you are busy or free" in page
    assert "It sees only when you are busy, never what you are doing." in page
    assert "It can only see and change events it creates" in page
    assert "See the events in your calendars" not in page
    assert "unverified app" in page


def test_wrong_upstream_password_is_explained_and_nothing_is_linked(http, gateway, connector):
    client = make_client(gateway)
    flow = start(http, client, pkce=Pkce())
    page = http.get(flow).text
    from tests.support.oauth import csrf

    token = csrf(page)
    http.post(f"{flow}/provider", data={"csrf_token": token, "provider": "memory"})
    r = http.post(f"{flow}/connect", data={"csrf_token": token, "username": "a@b.c",
                                           "password": "nope"})
    assert r.status_code == 200
    assert 'role="alert"' in r.text and "did not accept that password" in r.text
    assert 'value="a@b.c"' in r.text and 'value="nope"' not in r.text  # retype only the secret
    assert connector.verified == []
    # Allow without a verified calendar is refused: no code, the form comes back.
    r = http.post(f"{flow}/decision", data={"csrf_token": token, "decision": "allow"})
    assert r.status_code == 200 and "location" not in r.headers
    assert "Connect Test Calendar" in r.text

from tests.support.oauth import Pkce, authorize, exchange, make_client


def test_code_flow_issues_cronofy_shaped_tokens(http, gateway):
    client = make_client(gateway)
    pkce = Pkce()
    code = authorize(http, client, pkce=pkce)
    body = exchange(http, client, code, pkce)
    assert body["_status"] == 200, body
    assert body["token_type"] == "bearer"
    assert body["sub"] == body["account_id"]
    assert body["linking_profile"]["profile_name"] == "jane@example.com"
    r = http.get("/v1/userinfo", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert r.status_code == 200, r.text
    assert r.json()["sub"] == body["sub"]

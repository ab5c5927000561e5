"""Cronofy-style request parsing (API.md s1.3, s1.4, s13): pure parsing, then the merge."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient

from gateway.api.errors import ApiError, handle_api_error
from gateway.api.params import InvalidParam, Params, parse_bool, parse_time, read_params

T = datetime(2014, 8, 5, 14, 30, tzinfo=UTC)


@pytest.mark.parametrize("raw, expected", [
    ("true", True), ("True", True), ("TRUE", True), ("1", True), (True, True), (1, True),
    ("false", False), ("False", False), ("0", False), (False, False), (0, False),
    ("yes", None), ("", None), (2, None), ([], None),
])
def test_booleans(raw, expected):
    assert parse_bool(raw) is expected


@pytest.mark.parametrize("raw", [
    "2014-08-05T14:30:00Z", "2014-08-05T14:30:00z", "2014-08-05T14:30:00+00:00",
    "2014-08-05T14:30:00UTC", "2014-08-05T14:30:00 UTC", "2014-08-05 14:30:00Z",
    "2014-08-05T14:30:00.000Z", "2014-08-05T16:30:00+02:00", "2014-08-05T09:30:00-0500",
    "2014-08-05T14:30Z",
])
def test_time_forms(raw):
    assert parse_time(raw) == T


@pytest.mark.parametrize("raw", [
    "2014-08-05T14:30:00.123Z", "2014-08-05T14:30:00", "2014-08-05", "2014-13-05T14:30:00Z",
    "2014-08-05T25:30:00Z", "yesterday", "2014-08-05T14:30:00+24:00", "",
])
def test_bad_times(raw):
    with pytest.raises(ValueError):
        parse_time(raw)


def test_milliseconds_are_refused_with_a_422_body():
    with pytest.raises(InvalidParam) as caught:
        Params({"from": "2014-08-05T14:30:00.500Z"}).time("from")
    assert caught.value.status == 422
    (error,) = caught.value.body["errors"]["from"]
    assert error["key"] == "errors.invalid_time" and "milliseconds" in error["description"]


def test_from_and_to_take_a_date_in_the_zone_or_a_time():
    params = Params({"from": "2025-03-30", "to": "2025-03-31T06:00:00Z"})
    berlin = ZoneInfo("Europe/Berlin")
    assert params.moment("from", berlin) == datetime(2025, 3, 29, 23, tzinfo=UTC)
    assert params.moment("to", berlin) == datetime(2025, 3, 31, 6, tzinfo=UTC)
    assert params.moment("missing", berlin) is None
    with pytest.raises(InvalidParam) as caught:
        Params({"from": "2025-02-30"}).moment("from", berlin)
    assert caught.value.code == "invalid_date"


def test_tzid_is_required_and_must_be_iana():
    assert Params({"tzid": "Europe/Berlin"}).tzid() == "Europe/Berlin"
    for values, code in [({}, "required"), ({"tzid": ""}, "required"),
                         ({"tzid": "Mars/Olympus"}, "invalid_tzid"),
                         ({"tzid": "../../etc/passwd"}, "invalid_tzid"),
                         ({"tzid": "zone.tab"}, "invalid_tzid")]:
        with pytest.raises(InvalidParam) as caught:
            Params(values).tzid()
        assert caught.value.body == {"errors": {"tzid": [
            {"key": f"errors.{code}", "description": caught.value.body["errors"]["tzid"][0][
                "description"]}]}}
        assert caught.value.code == code


def test_body_wins_and_the_query_fills_in():
    params = Params.merge([("tzid", "Etc/UTC"), ("include_managed", "True"),
                           ("calendar_ids[]", "a"), ("calendar_ids[]", "b")],
                          {"tzid": "Europe/London", "only_managed": None})
    assert params.tzid() == "Europe/London"
    assert params.flag("include_managed") is True
    assert params.strings("calendar_ids") == ("a", "b")
    assert params.flag("only_managed") is False and params.flag("x", default=True) is True


def test_arrays_from_json_and_single_values():
    assert Params({"calendar_ids": ["a", "a", "b"]}).strings("calendar_ids") == ("a", "b")
    assert Params({"calendar_ids": "a"}).strings("calendar_ids") == ("a",)
    assert Params.merge([], {"calendar_ids[]": ["c"]}).strings("calendar_ids") == ("c",)
    with pytest.raises(InvalidParam):
        Params({"calendar_ids": [1]}).strings("calendar_ids")


def test_bad_boolean_and_required_text():
    with pytest.raises(InvalidParam) as caught:
        Params({"include_deleted": "maybe"}).flag("include_deleted")
    assert caught.value.code == "invalid_boolean"
    with pytest.raises(InvalidParam) as caught:
        Params({"name": "  "}).text("name", required=True)
    assert caught.value.body["errors"]["name"][0]["key"] == "errors.required"
    with pytest.raises(InvalidParam):
        Params({"name": 3}).text("name")


@pytest.fixture
def echo() -> TestClient:
    async def handler(request: Request) -> Response:
        params = await read_params(request)
        return JSONResponse(params.values)

    app = Starlette(routes=[Route("/echo", handler, methods=["GET", "POST", "DELETE"])],
                    exception_handlers={ApiError: handle_api_error})
    return TestClient(app)


def test_pycronofy_get_with_a_json_body_of_braces(echo):
    r = echo.request("GET", "/echo?tzid=Etc%2FUTC&include_managed=True"
                     "&calendar_ids%5B%5D=a&calendar_ids%5B%5D=b",
                     content=b"{}", headers={"Content-Type": "application/json"})
    assert r.json() == {"tzid": "Etc/UTC", "include_managed": "True",
                        "calendar_ids": ["a", "b"]}


def test_json_form_and_unknown_bodies(echo):
    r = echo.post("/echo?name=query&extra=1", content=json.dumps({"name": "body"}),
                  headers={"Content-Type": "application/json; charset=utf-8"})
    assert r.json() == {"name": "body", "extra": "1"}
    r = echo.post("/echo", data={"name": "form", "calendar_ids[]": ["x", "y"]})
    assert r.json() == {"name": "form", "calendar_ids": ["x", "y"]}
    r = echo.post("/echo", content=b"<xml/>", headers={"Content-Type": "text/xml"})
    assert r.json() == {}
    r = echo.request("DELETE", "/echo?delete_all=True", content=b"")
    assert r.json() == {"delete_all": "True"}


def test_malformed_json_is_a_422(echo):
    for body in (b"{nope", b"[1, 2]"):
        r = echo.post("/echo", content=body, headers={"Content-Type": "application/json"})
        assert r.status_code == 422
        assert r.json()["errors"]["request"][0]["key"] == "errors.invalid_json"

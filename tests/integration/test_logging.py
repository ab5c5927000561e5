"""Structured logs (issue 6): JSON lines whose request_id is the response's X-Request-Id,
on SQLite and PostgreSQL, and the redaction filter as defence in depth.

Logging is configured for real (``configure_logging``, the function `calgate worker` and
the test server call; `calgate serve` hands the same schema to uvicorn), with stderr
captured, and the previous configuration restored after each test.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from anyio import to_thread
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from gateway.app import create_app
from gateway.observe import logs as logs_module
from gateway.observe.logs import RedactFilter, configure_logging, redact
from gateway.settings import Settings, SettingsError

HEX32 = re.compile(r"^[0-9a-f]{32}$")
SECRETS = ("eyJhbGciOiJSUzI1NiJ9.c2VjcmV0.sig", "r3fresh-T0ken-Value", "AuthC0de-xyz",
           "s3cret-Of-The-Client", "hunter2-Passw0rd")


@pytest.fixture
def json_logs(capsys: pytest.CaptureFixture[str], settings: Settings
              ) -> Iterator[Callable[..., Callable[[], list[dict[str, Any]]]]]:
    """``start(**settings changes)`` configures logging; it returns ``read()``, which parses
    every line written to stderr since."""
    root = logging.getLogger()
    names = ["uvicorn", "uvicorn.error", "uvicorn.access", *logs_module._LIBRARIES]
    saved_root = root.level, root.handlers[:]
    saved = {name: (lg.level, lg.handlers[:], lg.propagate, lg.disabled)
             for name in names for lg in [logging.getLogger(name)]}

    def start(**changes: Any) -> Callable[[], list[dict[str, Any]]]:
        configure_logging(settings.replace(**changes))
        capsys.readouterr()

        def read() -> list[dict[str, Any]]:
            text = capsys.readouterr().err
            if changes.get("log_format") == "text":
                return [{"line": line} for line in text.splitlines()]
            return [json.loads(line) for line in text.splitlines() if line.strip()]
        return read

    yield start
    logging.captureWarnings(False)
    root.handlers[:] = saved_root[1]
    root.setLevel(saved_root[0])
    for name, (level, handlers, propagate, disabled) in saved.items():
        lg = logging.getLogger(name)
        lg.setLevel(level)
        lg.handlers[:] = handlers
        lg.propagate, lg.disabled = propagate, disabled


@pytest.fixture
def app_client(gateway) -> Iterator[TestClient]:
    """The real app, plus one test route that logs from a worker thread, as handlers do."""
    app = create_app(gateway)
    helper = logging.getLogger("calgate.test")

    async def noisy(request: Any) -> PlainTextResponse:
        await to_thread.run_sync(helper.info, "working on it")
        return PlainTextResponse("ok")

    app.router.routes.append(Route("/test/noisy/{thing_id}", noisy))
    with TestClient(app, base_url="http://127.0.0.1:8080") as client:
        yield client


def test_each_line_is_json_with_the_request_id_the_response_echoes(json_logs, app_client):
    read = json_logs(log_level="debug")
    r = app_client.get("/test/noisy/thing_123", headers={"X-Request-Id": "client-req.42:a"})
    assert r.status_code == 200
    assert r.headers["X-Request-Id"] == "client-req.42:a"
    lines = read()
    assert lines, "nothing was logged"
    for line in lines:
        assert {"time", "level", "logger", "message", "request_id"} <= line.keys()
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", line["time"])
    mine = [line for line in lines if line["request_id"] == "client-req.42:a"]
    assert [line["logger"] for line in mine] == ["calgate.test", "calgate.access"]
    assert mine[0]["message"] == "working on it"  # logged from a worker thread
    access = mine[1]
    assert access["level"] == "info"
    assert access["message"] == "GET /test/noisy/{thing_id} 200"
    assert (access["method"], access["route"], access["status"]) == (
        "GET", "/test/noisy/{thing_id}", 200)
    assert isinstance(access["duration_ms"], float) and access["duration_ms"] >= 0
    # The raw path is never logged (the test client's own httpx lines aside).
    assert "thing_123" not in json.dumps([x for x in lines if "httpx" not in x["logger"]])


@pytest.mark.parametrize("sent", [None, "", "has space", "x" * 129, "-leading-dash",
                                  "quote\"d", "a/b"])
def test_a_missing_or_odd_request_id_is_replaced_by_a_new_one(json_logs, app_client, sent):
    read = json_logs()
    headers = {} if sent is None else {"X-Request-Id": sent}
    r = app_client.get("/v1/calendars", headers=headers)
    assert r.status_code == 401
    rid = r.headers["X-Request-Id"]
    assert HEX32.match(rid)
    [access] = [line for line in read() if line["logger"] == "calgate.access"]
    assert access["request_id"] == rid and access["status"] == 401
    assert access["route"] == "/v1/calendars"


def test_every_request_gets_its_own_id(json_logs, app_client):
    read = json_logs()
    ids = {app_client.get("/healthz").headers["X-Request-Id"] for _ in range(3)}
    assert len(ids) == 3
    assert not [line for line in read() if line["logger"] == "calgate.access"]  # debug only


def test_text_format_carries_the_request_id(json_logs, app_client):
    read = json_logs(log_format="text")
    r = app_client.get("/v1/calendars", headers={"X-Request-Id": "abc-1"})
    [line] = [x["line"] for x in read() if "calgate.access" in x["line"]]
    assert "INFO calgate.access [abc-1] GET /v1/calendars 401" in line
    assert r.headers["X-Request-Id"] == "abc-1"


def test_the_filter_scrubs_secrets_planted_in_message_args_and_tracebacks(json_logs):
    read = json_logs(log_level="debug")
    log = logging.getLogger("calgate.test")
    access, refresh, code, secret, password = SECRETS
    log.info("Authorization: Bearer %s", access)
    log.info("headers %s", {"authorization": f"Basic {secret}", "accept": "*/*"})
    log.warning("POST body grant_type=refresh_token&refresh_token=%s&client_secret=%s",
                refresh, secret)
    log.info("callback /oauth/callback/google?state=s1&code=%s&scope=x", code)
    log.info("json %s", json.dumps({"access_token": access, "password": password}))
    log.info("config password: %s", password)
    log.info(f"bearer {access} in the message itself, no args")
    try:
        raise ValueError(f"upstream said: access_token={access}")
    except ValueError:
        log.exception("it failed")
    log.info("progress", extra={"note": f"password={password}", "count": 3})
    lines = read()
    assert len(lines) == 9
    text = json.dumps(lines)
    for planted in SECRETS:
        assert planted not in text
    assert text.count("[redacted]") >= 11
    assert "grant_type=refresh_token" in text and "state=s1" in text  # the rest stays
    assert lines[-1]["count"] == 3
    assert "ValueError" in lines[-2]["exception"]


def test_the_filter_on_its_own_drops_the_args_after_scrubbing():
    record = logging.LogRecord("calgate.x", logging.INFO, __file__, 1,
                               "token=%s for %s", ("abc.def", "pro_1"), None)
    assert RedactFilter().filter(record)
    assert (record.msg, record.args) == ("token=[redacted] for pro_1", None)


@pytest.mark.parametrize(("text", "expected"), [
    ("Authorization: Bearer abc.def-ghi", "Authorization: [redacted]"),
    ("(b'authorization', b'Basic dXNlcjpwdw==')", "(b'authorization', b'[redacted]')"),
    ("sent Bearer abc123== upstream", "sent Bearer [redacted] upstream"),
    ("/cb?code=xyz&state=1", "/cb?code=[redacted]&state=1"),
    ("error_code=42 and opcode=7", "error_code=42 and opcode=7"),
    ('{"refresh_token": "r1", "expires_in": 3600}',
     '{"refresh_token": "[redacted]", "expires_in": 3600}'),
    ("client_secret: s3", "client_secret: [redacted]"),
    ("sync of pro_123 failed: HTTP 503", "sync of pro_123 failed: HTTP 503"),
])
def test_redaction_rules(text, expected):
    assert redact(text) == expected


@pytest.mark.parametrize(("env", "message"), [
    ({"CALGATE_LOG_FORMAT": "xml"}, "CALGATE_LOG_FORMAT"),
    ({"CALGATE_LOG_LEVEL": "chatty"}, "CALGATE_LOG_LEVEL"),
    ({"CALGATE_WORKER_METRICS_PORT": "70000"}, "CALGATE_WORKER_METRICS_PORT"),
])
def test_bad_logging_and_metrics_settings_are_refused(env, message):
    with pytest.raises(SettingsError, match=message):
        Settings.from_env(env)

"""Schemathesis over GET /openapi.json, against the app with a real token of a linked
account, on SQLite and PostgreSQL: no answer is a 5xx and every answer is what the document
says (status, media type, headers, body schema).

Bounded for CI: ``MAX_EXAMPLES`` cases per operation and generation mode, derandomized (the
same cases every run), no shrinking. Every failure is collected, not just the first, and the
figures are printed (run pytest with ``-s`` to see them).
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import Failure, FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from starlette.testclient import TestClient

from gateway.app import create_app
from tests.conftest import ISSUER
from tests.support.linked import hour, link  # noqa: F401 (fixture)

MAX_EXAMPLES = int(os.environ.get("CALGATE_FUZZ_EXAMPLES", "25"))
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_headers_conformance, response_schema_conformance]
PUBLIC_ADDRESS = "93.184.215.14"  # what every callback host "resolves" to: nothing is sent


@dataclass
class Tally:
    operations: int = 0
    requests: int = 0
    unsatisfiable: int = 0
    failures: dict[tuple[str, str, str], str] = field(default_factory=dict)
    statuses: dict[str, Counter[int]] = field(default_factory=dict)

    def report(self) -> str:
        lines = [f"schemathesis: {self.operations} operations, {self.requests} requests, "
                 f"{len(self.failures)} distinct failures ({self.unsatisfiable} "
                 "operation/mode pairs had nothing to generate)"]
        lines += [f"  {op}: " + ", ".join(f"{n}x{s}" for s, n in sorted(seen.items()))
                  for op, seen in sorted(self.statuses.items())]
        lines += [f"  FAILED {op} -> {status}: {title}\n      {example}"
                  for (op, status, title), example in sorted(self.failures.items())]
        return "\n".join(lines)


def send(client: TestClient, kwargs: dict[str, Any]):
    """Schemathesis's requests-style arguments, sent through the in-process client."""
    data = kwargs.get("data")
    headers = dict(kwargs.get("headers") or {})
    if kwargs.get("cookies"):
        headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in kwargs["cookies"].items())
    client.cookies.clear()  # each case stands alone, like a fresh browser
    return client.request(
        kwargs["method"], kwargs["url"], headers=headers,
        params=kwargs.get("params"), json=kwargs.get("json"),
        content=data if isinstance(data, str | bytes) else None,
        data=data if isinstance(data, dict) else None, files=_files(kwargs.get("files")))


def _files(files: Any) -> Any:
    """Multipart parts as the test client can encode them: a negative case may put a number
    or null where a part's content goes (a client on the wire would send its text)."""
    if not files:
        return files

    def part(value: Any) -> Any:
        if isinstance(value, tuple):
            return tuple(part(v) if i == 1 else v for i, v in enumerate(value))
        return value if isinstance(value, str | bytes) or hasattr(value, "read") \
            else json.dumps(value)

    items = files.items() if isinstance(files, dict) else files
    return [(name, part(value)) for name, value in items]


def fuzz(strategy: Any, client: TestClient, auth: dict[str, str], tally: Tally) -> None:
    @settings(max_examples=MAX_EXAMPLES, derandomize=True, database=None, deadline=None,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    @given(case=strategy)
    def run(case: Any) -> None:
        kwargs = case.as_transport_kwargs(base_url=ISSUER, headers=auth)
        response = send(client, kwargs)
        tally.requests += 1
        tally.statuses.setdefault(f"{case.method} {case.path}", Counter())[
            response.status_code] += 1
        try:
            case.validate_response(response, checks=CHECKS, headers=auth)
        except (FailureGroup, Failure) as exc:  # a check failed: record it and go on fuzzing
            label = f"{case.method} {case.path}"
            for failure in getattr(exc, "exceptions", [exc]):
                title = getattr(failure, "title", type(failure).__name__)
                detail = str(getattr(failure, "message", ""))[:200]
                tally.failures.setdefault((label, str(response.status_code), title),
                                          f"{_example(case, response)}\n      {detail}")

    try:
        run()
    except Unsatisfiable:  # negative mode on an operation that takes no input: nothing to send
        tally.unsatisfiable += 1


def _example(case: Any, response: Any) -> str:
    sent = {k: v for k, v in (("path", case.path_parameters), ("query", case.query),
                              ("body", case.body)) if v and not _unset(v)}
    return f"{str(sent)[:300]} => {response.text[:200]!r}"


def _unset(value: Any) -> bool:
    return type(value).__name__ == "NotSet"


def strategies(operation: Any, calendar_id: str) -> list[Callable[[], Any]]:
    made = [lambda: operation.as_strategy(generation_mode=GenerationMode.POSITIVE),
            lambda: operation.as_strategy(generation_mode=GenerationMode.NEGATIVE)]
    if "{calendar_id}" in operation.path:  # also write to the account's real calendar
        made.append(lambda: operation.as_strategy(path_parameters={"calendar_id": calendar_id}))
    if operation.path in ("/v1/events", "/v1/free_busy") and operation.method == "get":
        made.append(lambda: operation.as_strategy(query={"tzid": "Etc/UTC"}))  # real reads
    return made


def test_schemathesis_finds_no_server_error_and_no_schema_violation(gateway, link):  # noqa: F811
    linked = link()
    linked.put("standup", hour(3), location="Room 1")
    linked.put("offsite", hour(48).date(), hour(72).date())
    linked.sync()
    auth = linked.token("read_write")
    gateway.channels.resolver = lambda host: [PUBLIC_ADDRESS]
    with TestClient(create_app(gateway), base_url=ISSUER, raise_server_exceptions=False,
                    follow_redirects=False) as client:
        document = client.get("/openapi.json").json()
        schema = schemathesis.openapi.from_dict(document)
        tally = Tally()
        for result in schema.get_all_operations():
            operation = result.ok()
            if "sequenced" not in operation.path:
                continue
            tally.operations += 1
            for strategy in strategies(operation, linked.calendar_id):
                try:
                    made = strategy()
                except Exception as exc:  # e.g. nothing negative to generate here
                    print(f"schemathesis: {operation.label}: no strategy: {exc}")
                    continue
                fuzz(made, client, auth, tally)
    print(tally.report())
    assert tally.requests >= tally.operations * MAX_EXAMPLES
    assert not tally.failures, tally.report()

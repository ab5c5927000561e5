"""The outbound guard end to end, in a network namespace of its own: Calgate's real CalDAV
link path, ICS feed verification and callback delivery are pointed at names that resolve
to, or redirect towards, 169.254.169.254, 127.0.0.1 and 10.0.0.1 (every redirect status,
and a DNS answer that changes after the check), and a listener on each forbidden address
must see no connection. The scenario (tests/support/outbound_scenario.py) runs as a child
under ``unshare -n``, so no traffic leaves the machine; a test resolver names the hosts."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

SCENARIO = Path(__file__).parents[1] / "support" / "outbound_scenario.py"
STATUSES = (301, 302, 303, 307, 308)
REFUSALS = {"BlockedAddress", "RedirectRefused"}


def _namespaces_work() -> bool:
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return False
    return subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode == 0


pytestmark = pytest.mark.skipif(not _namespaces_work(),
                                reason="`unshare -n` is not possible here (needs root or "
                                       "user namespaces, and iproute2)")


@pytest.fixture(scope="module")
def scenario() -> dict[str, Any]:
    done = subprocess.run(["unshare", "-n", sys.executable, str(SCENARIO)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def test_no_forbidden_address_sees_a_connection(scenario: dict[str, Any]) -> None:
    assert scenario["connections"] == {
        "169.254.169.254:80": 0, "169.254.169.254:443": 0, "10.0.0.1:80": 0,
        "10.0.0.1:443": 0, "10.0.0.1:8443": 0, "127.0.0.1:80": 0, "127.0.0.1:443": 0}


@pytest.mark.parametrize("server_url", ["10.0.0.1", "169.254.169.254", "localhost",
                                        "alice@10.0.0.1", "10.0.0.1:8443"])
def test_a_bare_host_server_url_is_refused_before_connecting(scenario: dict[str, Any],
                                                             server_url: str) -> None:
    outcome = scenario["results"][f"caldav bare {server_url}"]
    assert (outcome["raised"], outcome["cause"]) == ("VerificationFailed", "BlockedAddress")


@pytest.mark.parametrize("name", ["meta.example", "loop.example", "ten.example",
                                  "mixed.example"])
def test_a_name_resolving_to_a_forbidden_address_is_refused(scenario: dict[str, Any],
                                                            name: str) -> None:
    outcome = scenario["results"][f"caldav name {name}"]
    assert outcome["cause"] == "BlockedAddress", outcome


@pytest.mark.parametrize("status", STATUSES)
@pytest.mark.parametrize("target", ["169.254.169.254", "127.0.0.1", "10.0.0.1",
                                    "meta.example"])
def test_caldav_redirects_towards_forbidden_addresses_are_refused(
        scenario: dict[str, Any], status: int, target: str) -> None:
    outcome = scenario["results"][f"caldav redirect {status} {target}"]
    assert outcome["cause"] in REFUSALS, outcome
    if status != 303:  # a PROPFIND is never replayed to another origin
        assert outcome["cause"] == "RedirectRefused"


def test_a_changing_dns_answer_is_not_asked_twice(scenario: dict[str, Any]) -> None:
    # The one request was made to the checked (public) address; the library never looked
    # the name up again, so the rebinding answer never came into play.
    assert scenario["queries"].count("rebind.example") == 1
    assert scenario["results"]["caldav rebinding"]["cause"] == "NotCalendarServer"


@pytest.mark.parametrize("status", STATUSES)
def test_ics_and_callbacks_refuse_redirects_towards_metadata(scenario: dict[str, Any],
                                                             status: int) -> None:
    assert scenario["results"][f"ics redirect {status}"]["cause"] == "BlockedAddress"
    # A callback's redirect is its answer: not followed, the delivery failed.
    assert scenario["results"][f"callback redirect {status}"] == {"ok": False,
                                                                 "status": status}


def test_callbacks_to_a_forbidden_name_are_refused(scenario: dict[str, Any]) -> None:
    assert "169.254.169.254 is a link-local" in scenario["results"][
        "callback name meta.example"]["error"]
    assert scenario["results"]["channel create meta.example"]["code"] == "forbidden_address"


@pytest.mark.parametrize("host", ["169.254.169.254", "10.0.0.1", "127.0.0.1"])
def test_requests_adapter_refuses_a_forbidden_literal(scenario: dict[str, Any],
                                                      host: str) -> None:
    assert scenario["results"][f"requests literal {host}"]["raised"] == "BlockedAddress"


@pytest.mark.parametrize("name", ["meta.example", "loop.example", "ten.example",
                                  "mixed.example"])
def test_requests_adapter_refuses_a_name_resolving_to_a_forbidden_address(
        scenario: dict[str, Any], name: str) -> None:
    assert scenario["results"][f"requests name {name}"]["raised"] == "BlockedAddress"


@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize("status", STATUSES)
@pytest.mark.parametrize("target", ["169.254.169.254", "10.0.0.1", "meta.example"])
def test_requests_adapter_refuses_redirects_towards_forbidden_addresses(
        scenario: dict[str, Any], method: str, status: int, target: str) -> None:
    # The redirect itself is refused (its target checked) before requests could follow
    # it; a POST is never replayed to another origin, whatever the target.
    outcome = scenario["results"][f"requests redirect {method} {status} {target}"]
    assert outcome["raised"] in REFUSALS, outcome
    if method == "POST" and status not in (301, 302, 303):
        assert outcome["raised"] == "RedirectRefused"
    if method == "GET":
        assert outcome["raised"] == "BlockedAddress"

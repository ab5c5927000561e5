"""The SSRF guard of the ICS provider: the address rules, and pinning the checked address."""

from __future__ import annotations

import httpx
import pytest

from providers.ics.guard import BlockedAddress, PinnedTransport, refused_rule
from tests.support import aio


@pytest.mark.parametrize(("address", "rule"), [
    ("127.0.0.1", "loopback"),
    ("127.8.9.10", "loopback"),
    ("::1", "loopback"),
    ("::ffff:127.0.0.1", "loopback"),
    ("0.0.0.0", "unspecified"),
    ("::", "unspecified"),
    ("169.254.169.254", "link-local"),
    ("fe80::1", "link-local"),
    ("224.0.0.251", "multicast"),
    ("ff02::1", "multicast"),
    ("10.0.0.1", "private"),
    ("172.16.5.4", "private"),
    ("192.168.1.1", "private"),
    ("fd12:3456::1", "private"),
    ("::ffff:10.0.0.1", "private"),
    ("100.64.0.1", "not globally routable"),  # carrier-grade NAT
    ("8.8.8.8", None),
    ("93.184.216.34", None),
    ("2606:4700:4700::1111", None),
])
def test_address_rules(address: str, rule: str | None) -> None:
    assert refused_rule(address) == rule


def test_reserved_space_is_refused() -> None:
    assert refused_rule("240.0.0.1") is not None
    assert refused_rule("255.255.255.255") is not None


class Recorder:
    """An inner transport that records what it was asked to connect to."""

    def __init__(self, fail_on: frozenset[str] = frozenset()) -> None:
        self.seen: list[httpx.Request] = []
        self.fail_on = fail_on

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        if request.url.host in self.fail_on:
            raise httpx.ConnectError("refused", request=request)
        return httpx.Response(200, text="ok")


def fetch(transport: PinnedTransport, url: str) -> httpx.Response:
    async def go() -> httpx.Response:
        async with httpx.AsyncClient(transport=transport) as client:
            return await client.get(url)
    return aio.run(go())


class FakeDns:
    """A fake DNS giving fixed answers and recording the names asked for."""

    def __init__(self, *answers: str) -> None:
        self.answers = list(answers)
        self.calls: list[str] = []

    async def __call__(self, host: str, port: int) -> list[str]:
        self.calls.append(host)
        return list(self.answers)


def test_a_name_is_pinned_to_its_checked_address_with_host_and_sni_kept() -> None:
    recorder = Recorder()
    resolve = FakeDns("93.184.216.34")
    transport = PinnedTransport(httpx.MockTransport(recorder), allow_private_networks=False,
                                resolver=resolve)
    assert fetch(transport, "https://calendar.example.com/feed.ics").status_code == 200
    (sent,) = recorder.seen
    assert str(sent.url) == "https://93.184.216.34/feed.ics"
    assert sent.headers["Host"] == "calendar.example.com"
    assert sent.extensions["sni_hostname"] == "calendar.example.com"
    assert resolve.calls == ["calendar.example.com"]


def test_an_address_literal_is_checked_without_dns_and_without_sni() -> None:
    recorder = Recorder()
    resolve = FakeDns()
    transport = PinnedTransport(httpx.MockTransport(recorder), allow_private_networks=False,
                                resolver=resolve)
    fetch(transport, "http://[2606:4700:4700::1111]:8080/x")
    (sent,) = recorder.seen
    assert sent.url.host == "2606:4700:4700::1111" and "sni_hostname" not in sent.extensions
    assert resolve.calls == []


def test_the_next_checked_address_is_tried_when_one_does_not_connect() -> None:
    recorder = Recorder(fail_on=frozenset({"2001:db8::1"}))
    transport = PinnedTransport(httpx.MockTransport(recorder), allow_private_networks=True,
                                resolver=FakeDns("2001:db8::1", "198.51.100.7"))
    assert fetch(transport, "http://feed.example/x").status_code == 200
    assert [r.url.host for r in recorder.seen] == ["2001:db8::1", "198.51.100.7"]


def test_a_private_answer_is_refused_before_any_connection() -> None:
    recorder = Recorder()
    transport = PinnedTransport(httpx.MockTransport(recorder), allow_private_networks=False,
                                resolver=FakeDns("93.184.216.34", "192.168.0.10"))
    with pytest.raises(BlockedAddress) as caught:
        fetch(transport, "http://feed.example/x")
    assert caught.value.rule == "private" and caught.value.address == "192.168.0.10"
    assert recorder.seen == []


def test_no_answer_is_a_connect_error() -> None:
    transport = PinnedTransport(httpx.MockTransport(Recorder()), allow_private_networks=False,
                                resolver=FakeDns())
    with pytest.raises(httpx.ConnectError):
        fetch(transport, "http://feed.example/x")

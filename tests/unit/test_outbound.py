"""The outbound guard: the deny list, allowed networks, the redirect rule, and pinning the
checked address in the httpx transport (the niquests one is covered by the namespace test,
tests/integration/test_outbound_namespace.py)."""

from __future__ import annotations

import httpx
import pytest

from providers.errors import InvalidInput
from providers.outbound import (
    BlockedAddress,
    OutboundPolicy,
    RedirectRefused,
    UnresolvableHost,
    next_hop,
    refused_rule,
)
from providers.outbound.httpx_transport import GuardedTransport
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
    ("100.64.0.1", "carrier-grade NAT (100.64.0.0/10)"),
    ("100.127.255.254", "carrier-grade NAT (100.64.0.0/10)"),
    ("0.1.2.3", "this-network (0.0.0.0/8)"),
    ("::ffff:169.254.169.254", "link-local"),
    ("::ffff:100.64.0.1", "carrier-grade NAT (100.64.0.0/10)"),
    ("64:ff9b::7f00:1", "loopback"),  # NAT64 of 127.0.0.1
    ("64:ff9b::a9fe:a9fe", "link-local"),  # NAT64 of 169.254.169.254
    ("64:ff9b::a00:1", "private"),  # NAT64 of 10.0.0.1
    ("64:ff9b:1::1", "local NAT64 (64:ff9b:1::/48)"),
    ("2002:7f00:1::1", "loopback"),  # 6to4 of 127.0.0.1
    ("192.0.2.1", "private"),  # documentation (TEST-NET-1)
    ("64:ff9b::808:808", None),  # NAT64 of 8.8.8.8: a public address
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


def guarded(recorder: Recorder, resolver: FakeDns, *allowed: str,
            max_redirects: int = 5) -> GuardedTransport:
    return GuardedTransport(httpx.MockTransport(recorder),
                            OutboundPolicy.allowing(allowed, resolver),
                            max_redirects=max_redirects)


def fetch(transport: GuardedTransport, url: str) -> httpx.Response:
    async def go() -> httpx.Response:
        async with httpx.AsyncClient(transport=transport) as client:
            return await client.get(url)
    return aio.run(go())


class FakeDns:
    """A fake DNS giving fixed answers and recording the names asked for."""

    def __init__(self, *answers: str) -> None:
        self.answers = list(answers)
        self.calls: list[str] = []

    def __call__(self, host: str, port: int) -> list[str]:
        self.calls.append(host)
        return list(self.answers)


def test_a_name_is_pinned_to_its_checked_address_with_host_and_sni_kept() -> None:
    recorder = Recorder()
    resolve = FakeDns("93.184.216.34")
    transport = guarded(recorder, resolve)
    assert fetch(transport, "https://calendar.example.com/feed.ics").status_code == 200
    (sent,) = recorder.seen
    assert str(sent.url) == "https://93.184.216.34/feed.ics"
    assert sent.headers["Host"] == "calendar.example.com"
    assert sent.extensions["sni_hostname"] == "calendar.example.com"
    assert resolve.calls == ["calendar.example.com"]


def test_an_address_literal_is_checked_without_dns_and_without_sni() -> None:
    recorder = Recorder()
    resolve = FakeDns()
    transport = guarded(recorder, resolve)
    fetch(transport, "http://[2606:4700:4700::1111]:8080/x")
    (sent,) = recorder.seen
    assert sent.url.host == "2606:4700:4700::1111" and "sni_hostname" not in sent.extensions
    assert resolve.calls == []


def test_the_next_checked_address_is_tried_when_one_does_not_connect() -> None:
    recorder = Recorder(fail_on=frozenset({"2001:db8::1"}))
    transport = guarded(recorder, FakeDns("2001:db8::1", "198.51.100.7"), "2001:db8::/32",
                        "198.51.100.0/24")
    assert fetch(transport, "http://feed.example/x").status_code == 200
    assert [r.url.host for r in recorder.seen] == ["2001:db8::1", "198.51.100.7"]


def test_a_private_answer_is_refused_before_any_connection() -> None:
    recorder = Recorder()
    transport = guarded(recorder, FakeDns("93.184.216.34", "192.168.0.10"))
    with pytest.raises(BlockedAddress) as caught:
        fetch(transport, "http://feed.example/x")
    assert caught.value.rule == "private" and caught.value.address == "192.168.0.10"
    assert recorder.seen == []


def test_no_answer_is_unresolvable() -> None:
    with pytest.raises(UnresolvableHost):
        fetch(guarded(Recorder(), FakeDns()), "http://feed.example/x")


def test_allowed_networks_allow_only_themselves() -> None:
    policy = OutboundPolicy.allowing(["127.0.0.1/32", "10.20.0.0/16"])
    assert policy.refused("127.0.0.1") is None and policy.refused("10.20.3.4") is None
    assert policy.refused("::ffff:127.0.0.1") is None  # the same address, mapped
    assert policy.refused("127.0.0.2") == "loopback"
    assert policy.refused("10.21.0.1") == "private"
    assert policy.refused("169.254.169.254") == "link-local"
    with pytest.raises(ValueError, match="not a network"):
        OutboundPolicy.allowing(["10.0.0.0/33"])


def test_blocked_address_is_a_provider_input_error() -> None:
    assert issubclass(BlockedAddress, InvalidInput)
    assert issubclass(RedirectRefused, InvalidInput)


@pytest.mark.parametrize(("method", "status", "location", "expected"), [
    ("GET", 301, "/b", ("GET", "https://a.example/b", False)),
    ("PROPFIND", 301, "/b", ("PROPFIND", "https://a.example/b", True)),
    ("PROPFIND", 308, "/b", ("PROPFIND", "https://a.example/b", True)),
    ("POST", 302, "/b", ("GET", "https://a.example/b", False)),
    ("POST", 303, "https://b.example/", ("GET", "https://b.example/", False)),
    ("GET", 307, "https://b.example/x", ("GET", "https://b.example/x", False)),
    ("HEAD", 303, "/b", ("HEAD", "https://a.example/b", False)),
])
def test_redirects_that_are_followed(method: str, status: int, location: str,
                                     expected: tuple[str, str, bool]) -> None:
    hop = next_hop(method, "https://a.example/a", status, location)
    assert (hop.method, hop.url, hop.keep_body) == expected


@pytest.mark.parametrize(("method", "status", "location"), [
    ("PROPFIND", 307, "https://b.example/"),  # a method and body to another origin
    ("PUT", 308, "https://a.example:8443/"),  # another port is another origin
    ("PROPFIND", 301, "https://b.example/"),
    ("REPORT", 302, "https://b.example/"),
    ("GET", 302, "http://a.example/"),  # https to plain http
    ("GET", 301, "file:///etc/passwd"),
    ("GET", 301, "gopher://a.example/"),
    ("GET", 302, ""),
])
def test_redirects_that_are_refused(method: str, status: int, location: str) -> None:
    with pytest.raises(RedirectRefused):
        next_hop(method, "https://a.example/a", status, location)


class Redirecting(Recorder):
    """Answers the first request with a redirect to ``target``."""

    def __init__(self, target: str, status: int) -> None:
        super().__init__()
        self.target, self.status = target, status

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        if len(self.seen) == 1:
            return httpx.Response(self.status, headers={"Location": self.target})
        return httpx.Response(200, text="ok")


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_each_redirect_hop_is_checked_before_it_is_sent(status: int) -> None:
    recorder = Redirecting("http://metadata.example/latest", status)
    dns = {"feed.example": ["93.184.216.34"], "metadata.example": ["169.254.169.254"]}
    transport = GuardedTransport(httpx.MockTransport(recorder),
                                 OutboundPolicy(resolver=lambda host, port: dns[host]))
    with pytest.raises(BlockedAddress, match=r"169\.254\.169\.254 is a link-local"):
        fetch(transport, "http://feed.example/x")
    assert [r.url.host for r in recorder.seen] == ["93.184.216.34"]


def test_a_redirect_is_the_answer_when_redirects_are_off() -> None:
    recorder = Redirecting("http://169.254.169.254/", 307)
    transport = guarded(recorder, FakeDns("93.184.216.34"), max_redirects=0)
    assert fetch(transport, "http://hooks.example/x").status_code == 307
    assert len(recorder.seen) == 1


def test_credentials_are_not_sent_to_another_origin() -> None:
    recorder = Redirecting("http://other.example/y", 302)
    transport = guarded(recorder, FakeDns("93.184.216.34"))

    async def go() -> None:
        async with httpx.AsyncClient(transport=transport) as client:
            await client.get("http://feed.example/x", headers={"Authorization": "Basic eA=="})
    aio.run(go())
    first, second = recorder.seen
    assert "Authorization" in first.headers and "Authorization" not in second.headers
    assert second.headers["Host"] == "other.example"

"""Push channels: events.watch makes the emulator POST Google's notifications to a local
receiver (a sync message, then one per change), channels.stop ends them."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from providers.model import PushChannel
from providers.protocol import PushCapable, Revocable
from tests.contract.harness_google import open_for, timed
from tests.emulators.google.shared import new_email, shared_emulator
from tests.support import aio
from tests.support.waiting import Deadline


class Receiver:
    """A webhook endpoint on loopback recording each notification's headers."""

    def __init__(self) -> None:
        self.received: list[dict[str, str]] = []
        self.arrived = threading.Condition()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with outer.arrived:
                    outer.received.append({k.lower(): v for k, v in self.headers.items()})
                    outer.arrived.notify_all()
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/webhooks/google"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, count: int, timeout: float = 5.0) -> list[dict[str, str]]:
        deadline = Deadline(timeout)
        with self.arrived:
            while len(self.received) < count:
                left = deadline.left()
                assert left > 0, f"only {self.received}"
                self.arrived.wait(left)
            return list(self.received)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    yield found
    found.close()


def test_watch_delivers_google_notifications_until_stopped(receiver):
    emu = shared_emulator()
    email = emu.add_user(new_email())
    provider = open_for(emu, email)
    assert isinstance(provider, PushCapable) and isinstance(provider, Revocable)
    before = datetime.now(UTC)
    channel = aio.run(provider.watch(email, receiver.url, "tok-123", "ch_abc", 3600))
    assert isinstance(channel, PushChannel)
    assert (channel.channel_id, channel.calendar_id) == ("ch_abc", email)
    assert before + timedelta(seconds=3590) < channel.expires_at < before + timedelta(
        seconds=3610)
    (sync,) = receiver.wait_for(1)
    assert sync["x-goog-resource-state"] == "sync"
    assert sync["x-goog-message-number"] == "1"
    assert sync["x-goog-channel-id"] == "ch_abc"
    assert sync["x-goog-channel-token"] == "tok-123"
    assert sync["x-goog-resource-id"] == channel.resource_id
    assert "/calendar/v3/calendars/" in sync["x-goog-resource-uri"]
    assert sync["x-goog-channel-expiration"].endswith("GMT")

    emu.add_event(email, email, {"id": "pushed1", **timed(datetime(2027, 3, 3, 9, tzinfo=UTC),
                                                          timedelta(hours=1))})
    change = receiver.wait_for(2)[1]
    assert (change["x-goog-resource-state"], change["x-goog-message-number"]) == ("exists",
                                                                                  "2")
    aio.run(provider.stop_watch(channel))
    aio.run(provider.stop_watch(channel))  # already stopped: fine
    assert "ch_abc" not in emu.channels
    emu.update_event(email, email, "pushed1", {"summary": "After stop"})
    time.sleep(0.2)
    assert len(receiver.received) == 2
    aio.run(provider.close())


def test_an_expired_channel_sends_nothing_more(receiver):
    emu = shared_emulator()
    email = emu.add_user(new_email())
    provider = open_for(emu, email)
    aio.run(provider.watch(email, receiver.url, "t", "ch_short", 1))
    receiver.wait_for(1)
    time.sleep(1.1)
    emu.add_event(email, email, {"id": "late01", **timed(datetime(2027, 3, 3, 9, tzinfo=UTC),
                                                         timedelta(hours=1))})
    time.sleep(0.2)
    assert len(receiver.received) == 1 and "ch_short" not in emu.channels
    aio.run(provider.close())

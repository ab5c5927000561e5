"""One emulator per test process (like the Google one): started on first use, stopped at
exit; each test makes its own users, so tests never see each other's state."""

from __future__ import annotations

import atexit
import threading
import uuid

from .emulator import MicrosoftEmulator

CLIENT_ID = "5f0e3c1a-calg-4a7e-9d1b-calgatetests"
CLIENT_SECRET = "calgate~tests.secret"
REDIRECT_URI = "http://127.0.0.1:8080/oauth/upstream/microsoft"

_lock = threading.Lock()
_shared: MicrosoftEmulator | None = None


def shared_emulator() -> MicrosoftEmulator:
    global _shared
    with _lock:
        if _shared is None:
            _shared = MicrosoftEmulator().start()
            _shared.register_app(CLIENT_ID, CLIENT_SECRET, "Calgate Tests", [REDIRECT_URI])
            atexit.register(_shared.stop)
        return _shared


def new_email(prefix: str = "user", domain: str = "contoso.example") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}@{domain}"

"""One emulator per test process (like the shared Radicale): started on first use, stopped
at exit; each test makes its own user, so tests never see each other's state."""

from __future__ import annotations

import atexit
import threading
import uuid

from .emulator import GoogleEmulator

CLIENT_ID = "calgate-tests.apps.googleusercontent.com"
CLIENT_SECRET = "GOCSPX-calgate-tests"
REDIRECT_URI = "http://127.0.0.1:8080/oauth/upstream/google"

_lock = threading.Lock()
_shared: GoogleEmulator | None = None


def shared_emulator() -> GoogleEmulator:
    global _shared
    with _lock:
        if _shared is None:
            _shared = GoogleEmulator().start()
            _shared.register_app(CLIENT_ID, CLIENT_SECRET, "Calgate Tests", [REDIRECT_URI])
            atexit.register(_shared.stop)
        return _shared


def new_email(prefix: str = "user") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}@example.com"

"""A stateful HTTP emulator of Google's OAuth 2.0 endpoints and Calendar API v3, for the
real google-api-python-client and google-auth (see :mod:`.emulator`)."""

from .emulator import GoogleEmulator
from .faults import LoggedRequest
from .push import Delivery

__all__ = ["Delivery", "GoogleEmulator", "LoggedRequest"]

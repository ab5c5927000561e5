"""A stateful HTTPS emulator of the Microsoft identity platform and a Microsoft Graph v1.0
calendar subset, for msal, httpx and msgraph-sdk unmodified (see :mod:`.emulator`)."""

from .emulator import MicrosoftEmulator
from .faults import LoggedRequest
from .push import Delivery

__all__ = ["Delivery", "LoggedRequest", "MicrosoftEmulator"]

"""A stateful Exchange Web Services emulator (HTTPS, NTLM and Basic, POX Autodiscover),
driven by exchangelib unmodified. ``ExchangeEmulator`` is the entry point."""

from .emulator import ExchangeEmulator

__all__ = ["ExchangeEmulator"]

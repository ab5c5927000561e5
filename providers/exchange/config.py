"""The Exchange provider's settings (``CALGATE_EXCHANGE_*``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ..errors import InvalidInput
from ..registry import ProviderOptions

DEFAULT_TIMEOUT = 30.0


@dataclass(frozen=True, slots=True)
class ExchangeSettings:
    """``ca_bundle``: a PEM file of certificate authorities trusted instead of the system's
    (servers with a private CA); None trusts the system store. ``timeout``: seconds per
    EWS request."""

    ca_bundle: str | None = None  # exchange.ca_bundle
    timeout: float = 30.0  # exchange.timeout_seconds (DEFAULT_TIMEOUT)

    @classmethod
    def from_values(cls, values: Mapping[str, str]) -> ExchangeSettings:
        try:
            timeout = float(values.get("timeout_seconds") or DEFAULT_TIMEOUT)
        except ValueError:
            raise InvalidInput("exchange timeout_seconds is not a number") from None
        if timeout <= 0:
            raise InvalidInput("exchange timeout_seconds must be positive")
        return cls(ca_bundle=values.get("ca_bundle") or None, timeout=timeout)


def settings_of(options: ProviderOptions) -> ExchangeSettings:
    return options.settings_for("exchange", ExchangeSettings)

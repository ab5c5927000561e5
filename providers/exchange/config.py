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
    EWS request. ``oauth_ews_url``: the EWS URL of a hybrid-configured server whose
    mailboxes sign in at Microsoft (the ``exchange_hybrid`` entry); empty: not offered."""

    ca_bundle: str | None = None  # exchange.ca_bundle
    timeout: float = 30.0  # exchange.timeout_seconds (DEFAULT_TIMEOUT)
    oauth_ews_url: str = ""  # exchange.oauth_ews_url

    @classmethod
    def from_values(cls, values: Mapping[str, str]) -> ExchangeSettings:
        try:
            timeout = float(values.get("timeout_seconds") or DEFAULT_TIMEOUT)
        except ValueError:
            raise InvalidInput("exchange timeout_seconds is not a number") from None
        if timeout <= 0:
            raise InvalidInput("exchange timeout_seconds must be positive")
        oauth_ews_url = (values.get("oauth_ews_url") or "").strip()
        if oauth_ews_url and not oauth_ews_url.startswith("https://"):
            raise InvalidInput("exchange oauth_ews_url must be an https URL")
        return cls(ca_bundle=values.get("ca_bundle") or None, timeout=timeout,
                   oauth_ews_url=oauth_ews_url)


def settings_of(options: ProviderOptions) -> ExchangeSettings:
    return options.settings_for("exchange", ExchangeSettings)

"""Where Google is (four endpoints, overridable for the emulator) and how hard to retry.

Both are read once from :class:`ProviderOptions.extra`, keys prefixed ``google.``.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import InvalidInput
from ..registry import ProviderOptions

API_ENDPOINT = "https://www.googleapis.com/calendar/v3/"
TOKEN_URI = "https://oauth2.googleapis.com/token"  # noqa: S105 (a URL, not a secret)
REVOKE_URI = "https://oauth2.googleapis.com/revoke"
AUTH_URI = "https://accounts.google.com/o/oauth2/v2/auth"


@dataclass(frozen=True, slots=True)
class GoogleEndpoints:
    """Google's endpoints. ``api_endpoint`` replaces the discovery document's whole base
    URL, so it includes the service path ``calendar/v3/`` (HARNESS.md s4)."""

    api_endpoint: str = API_ENDPOINT
    token_uri: str = TOKEN_URI
    revoke_uri: str = REVOKE_URI
    auth_uri: str = AUTH_URI

    @classmethod
    def from_options(cls, options: ProviderOptions) -> GoogleEndpoints:
        """From ``google.api_endpoint``, ``google.token_uri``, ``google.revoke_uri`` and
        ``google.auth_uri`` in ``options.extra``; Google's real URLs where absent."""
        extra = options.extra
        api = extra.get("google.api_endpoint") or API_ENDPOINT
        return cls(api_endpoint=api if api.endswith("/") else api + "/",
                   token_uri=extra.get("google.token_uri") or TOKEN_URI,
                   revoke_uri=extra.get("google.revoke_uri") or REVOKE_URI,
                   auth_uri=extra.get("google.auth_uri") or AUTH_URI)


def endpoints_from(options: ProviderOptions) -> GoogleEndpoints:
    """:meth:`GoogleEndpoints.from_options`, as a function."""
    return GoogleEndpoints.from_options(options)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Retries of throttled (403 rate limits, 429) and failed (5xx, timeouts, connection
    errors) calls inside the provider: exponential backoff with full jitter, at least the
    Retry-After Google asks for, at most ``attempts`` tries and ``max_wait`` seconds of
    sleeping per call; past that the call raises RateLimited / Unavailable."""

    attempts: int = 5  # google.retry_attempts
    base_delay: float = 0.5  # google.retry_base_seconds: the first backoff's ceiling
    max_delay: float = 32.0  # google.retry_max_delay_seconds: one backoff's ceiling
    max_wait: float = 60.0  # google.retry_max_wait_seconds: total sleep per call

    @classmethod
    def from_options(cls, options: ProviderOptions) -> RetryPolicy:
        extra, default = options.extra, cls()

        def number(key: str, fallback: float) -> float:
            try:
                return float(extra.get(f"google.{key}", fallback))
            except ValueError:
                raise InvalidInput(f"google.{key} is not a number") from None

        return cls(attempts=int(number("retry_attempts", default.attempts)),
                   base_delay=number("retry_base_seconds", default.base_delay),
                   max_delay=number("retry_max_delay_seconds", default.max_delay),
                   max_wait=number("retry_max_wait_seconds", default.max_wait))

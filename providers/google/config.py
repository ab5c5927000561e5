"""Where Google is (five endpoints, overridable for the emulator) and how hard to retry:
:class:`GoogleSettings`, the provider's typed settings (``CALGATE_GOOGLE_*``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Self

from ..errors import InvalidInput

if TYPE_CHECKING:
    from ..registry import ProviderOptions

API_ENDPOINT = "https://www.googleapis.com/calendar/v3/"
TOKEN_URI = "https://oauth2.googleapis.com/token"  # noqa: S105 (a URL, not a secret)
REVOKE_URI = "https://oauth2.googleapis.com/revoke"
AUTH_URI = "https://accounts.google.com/o/oauth2/v2/auth"
# The Admin SDK (Directory API: the organisation's calendar resources, i.e. rooms). Its
# discovery document's paths start with admin/directory/v1/, so this is the bare origin.
DIRECTORY_ENDPOINT = "https://admin.googleapis.com/"


@dataclass(frozen=True, slots=True)
class GoogleEndpoints:
    """Google's endpoints. ``api_endpoint`` replaces the discovery document's whole base
    URL, so it includes the service path ``calendar/v3/`` (HARNESS.md s4)."""

    api_endpoint: str = API_ENDPOINT
    token_uri: str = TOKEN_URI
    revoke_uri: str = REVOKE_URI
    auth_uri: str = AUTH_URI
    directory_endpoint: str = DIRECTORY_ENDPOINT

    @classmethod
    def from_values(cls, values: Mapping[str, str]) -> GoogleEndpoints:
        """From ``url`` (CALGATE_GOOGLE_URL: one base serving all four, as the emulator does),
        then ``api_endpoint``, ``token_uri``, ``revoke_uri``, ``auth_uri`` one by one;
        Google's real URLs where absent."""
        base = values.get("url", "").rstrip("/")
        derived = ({} if not base else {
            "auth_uri": f"{base}/o/oauth2/v2/auth", "token_uri": f"{base}/token",
            "revoke_uri": f"{base}/revoke", "api_endpoint": f"{base}/calendar/v3/",
            "directory_endpoint": f"{base}/"})
        merged = derived | {k: v for k, v in values.items() if v}
        api = merged.get("api_endpoint") or API_ENDPOINT
        directory = merged.get("directory_endpoint") or DIRECTORY_ENDPOINT
        return cls(api_endpoint=api if api.endswith("/") else api + "/",
                   token_uri=merged.get("token_uri") or TOKEN_URI,
                   revoke_uri=merged.get("revoke_uri") or REVOKE_URI,
                   auth_uri=merged.get("auth_uri") or AUTH_URI,
                   directory_endpoint=directory if directory.endswith("/")
                   else directory + "/")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Retries of throttled (403 rate limits, 429) and failed (5xx, timeouts, connection
    errors) calls inside the provider: exponential backoff with full jitter, at least the
    Retry-After Google asks for, at most ``attempts`` tries and ``max_wait`` seconds of
    sleeping per call; past that the call raises RateLimited / Unavailable."""

    attempts: int = 5  # retry_attempts
    base_delay: float = 0.5  # retry_base_seconds: the first backoff's ceiling
    max_delay: float = 32.0  # retry_max_delay_seconds: one backoff's ceiling
    max_wait: float = 60.0  # retry_max_wait_seconds: total sleep per call

    @classmethod
    def from_values(cls, values: Mapping[str, str]) -> RetryPolicy:
        default = cls()

        def number(key: str, fallback: float) -> float:
            try:
                return float(values.get(key, fallback))
            except ValueError:
                raise InvalidInput(f"google {key} is not a number") from None

        return cls(attempts=int(number("retry_attempts", default.attempts)),
                   base_delay=number("retry_base_seconds", default.base_delay),
                   max_delay=number("retry_max_delay_seconds", default.max_delay),
                   max_wait=number("retry_max_wait_seconds", default.max_wait))


@dataclass(frozen=True, slots=True)
class GoogleSettings:
    """The Google provider's settings (the registry entry's settings class)."""

    endpoints: GoogleEndpoints = field(default_factory=GoogleEndpoints)
    retry: RetryPolicy = field(default_factory=RetryPolicy)

    @classmethod
    def from_values(cls, values: Mapping[str, str]) -> Self:
        """From the ``CALGATE_GOOGLE_*`` values without their prefix (``url``), plus the
        individual endpoint and ``retry_*`` keys tests and benchmarks set."""
        return cls(GoogleEndpoints.from_values(values), RetryPolicy.from_values(values))


def settings_of(options: ProviderOptions) -> GoogleSettings:
    """This deployment's Google settings (Google itself when none were set)."""
    return options.settings_for("google", GoogleSettings)

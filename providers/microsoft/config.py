"""Where Microsoft is (the identity platform and Graph, overridable for the emulator) and how
Calgate talks to Graph: page size, timeouts, retries.

The registry entries ``office365`` and ``live_connect`` share this settings class; the
deployment's values reach it through :meth:`GraphSettings.from_values` (the registry builds it
once), and the provider reads it with :func:`settings_of`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from ..errors import InvalidInput
from ..registry import ProviderOptions

AUTHORITY_BASE = "https://login.microsoftonline.com"
GRAPH_BASE = "https://graph.microsoft.com"
# "common" accepts both work or school accounts (Microsoft 365) and personal Microsoft
# accounts (Outlook.com); an operator may pin a tenant id or domain instead, or
# "organizations" / "consumers".
# https://learn.microsoft.com/entra/identity-platform/msal-client-application-configuration#authority
COMMON_TENANT = "common"
# calendarView/delta honours Prefer: odata.maxpagesize; Graph's documented default page is
# small (10), so a larger page cuts the requests of an initial sync.
# https://learn.microsoft.com/graph/delta-query-events
DEFAULT_PAGE_SIZE = 200
MAX_PAGE_SIZE = 1000


@dataclass(frozen=True, slots=True)
class GraphSettings:
    """The Microsoft provider's settings. ``authority_base`` and ``graph_base`` are origins
    (no path); msal requires an https authority, so the emulator serves TLS too."""

    authority_base: str = AUTHORITY_BASE  # microsoft.authority_base
    tenant: str = COMMON_TENANT  # microsoft.tenant
    graph_base: str = GRAPH_BASE  # microsoft.graph_base
    page_size: int = DEFAULT_PAGE_SIZE  # microsoft.page_size
    timeout: float = 20.0  # microsoft.timeout_seconds: one request, read and write
    connect_timeout: float = 10.0  # microsoft.connect_timeout_seconds
    retry_attempts: int = 5  # microsoft.retry_attempts: tries per throttled/failed call
    retry_max_wait: float = 60.0  # microsoft.retry_max_wait_seconds: total sleep per call
    # microsoft.ca_bundle: a PEM file of CAs to trust instead of the system's, for both
    # msal and Graph (a test CA, a TLS-inspecting proxy); None trusts the system store.
    ca_bundle: str | None = None

    def __post_init__(self) -> None:
        for name in ("authority_base", "graph_base"):
            _check_origin(name, getattr(self, name))
        if not self.tenant or "/" in self.tenant:
            raise InvalidInput("microsoft.tenant must be a tenant id, domain or 'common'")
        if not 1 <= self.page_size <= MAX_PAGE_SIZE:
            raise InvalidInput(f"microsoft.page_size must be 1..{MAX_PAGE_SIZE}")
        if self.timeout <= 0 or self.connect_timeout <= 0 or self.retry_max_wait < 0:
            raise InvalidInput("microsoft timeouts must be positive")
        if self.retry_attempts < 1:
            raise InvalidInput("microsoft.retry_attempts must be at least 1")

    @property
    def authority(self) -> str:
        """The msal authority: the base plus the tenant."""
        return f"{self.authority_base}/{self.tenant}"

    @property
    def is_microsoft(self) -> bool:
        """Whether the authority is Microsoft's own (msal's instance discovery then works;
        anywhere else it would ask login.microsoftonline.com about a host it cannot know)."""
        return self.authority_base == AUTHORITY_BASE

    @property
    def graph_root(self) -> str:
        """The root every Graph v1.0 call is relative to."""
        return f"{self.graph_base}/v1.0"

    @classmethod
    def from_values(cls, values: Mapping[str, str]) -> GraphSettings:
        """From the provider's declared values (``authority_base``, ``tenant``,
        ``graph_base``, ``page_size``, ``timeout_seconds``, ``connect_timeout_seconds``,
        ``retry_attempts``, ``retry_max_wait_seconds``, ``ca_bundle``); defaults where absent."""
        default = cls()

        def number(key: str, fallback: float) -> float:
            try:
                return float(values.get(key) or fallback)
            except ValueError:
                raise InvalidInput(f"microsoft {key} is not a number") from None

        return cls(
            authority_base=(values.get("authority_base") or AUTHORITY_BASE).rstrip("/"),
            tenant=values.get("tenant") or COMMON_TENANT,
            graph_base=(values.get("graph_base") or GRAPH_BASE).rstrip("/"),
            page_size=int(number("page_size", default.page_size)),
            timeout=number("timeout_seconds", default.timeout),
            connect_timeout=number("connect_timeout_seconds", default.connect_timeout),
            retry_attempts=int(number("retry_attempts", default.retry_attempts)),
            retry_max_wait=number("retry_max_wait_seconds", default.retry_max_wait),
            ca_bundle=values.get("ca_bundle") or None)


def settings_of(options: ProviderOptions) -> GraphSettings:
    """This deployment's Microsoft settings (Microsoft itself when none were set)."""
    return options.settings_for("office365", GraphSettings)


def _check_origin(name: str, value: str) -> None:
    parts = urlsplit(value)
    if parts.scheme != "https" or not parts.netloc or parts.path not in ("", "/"):
        raise InvalidInput(f"microsoft.{name} must be an https origin such as "
                           f"https://host[:port], not {value!r}")

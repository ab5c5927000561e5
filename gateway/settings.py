"""Calgate's settings: one immutable object, read once from ``CALGATE_*`` variables.

Every field names its environment variable and carries help text; ``calgate settings``
prints them all. Secrets are never settings: they live in the secret store. The only
secret-store inputs here are *paths* to bootstrap credentials (a Vault token file, an
AppRole secret-id file, a Kubernetes service-account token file).
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any


class SettingsError(ValueError):
    """A ``CALGATE_*`` variable holds a value Calgate cannot use."""


def _setting(env: str, default: Any, help: str) -> Any:
    return field(default=default, metadata={"env": env, "help": help})


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything Calgate reads from its environment, validated once at start-up."""

    data_dir: Path = _setting(
        "CALGATE_DATA_DIR", Path(".calgate"),
        "Folder for the embedded defaults: the SQLite file and the local secret store's key.")
    database_url: str = _setting(
        "CALGATE_DATABASE_URL", "",
        "SQLAlchemy URL. Empty means sqlite:///<data_dir>/calgate.db. "
        "Production: postgresql+psycopg://user@host/db.")
    public_url: str = _setting(
        "CALGATE_PUBLIC_URL", "",
        "Public origin of this gateway; also the OAuth issuer identifier (no path, query "
        "or fragment). Must be https outside loopback. Default: http://<host>:<port>.")
    host: str = _setting("CALGATE_HOST", "127.0.0.1", "Address `calgate serve` listens on.")
    port: int = _setting("CALGATE_PORT", 8080, "Port `calgate serve` listens on.")
    secret_backend: str = _setting(
        "CALGATE_SECRET_BACKEND", "local",
        "Where upstream credentials and keys live: `local` (AES-GCM files under data_dir) "
        "or `vault` (HashiCorp Vault / OpenBao via hvac).")
    local_secret_dir: Path | None = _setting(
        "CALGATE_LOCAL_SECRET_DIR", None,
        "Folder of the local secret store. Default: <data_dir>/secrets.")
    vault_addr: str = _setting("CALGATE_VAULT_ADDR", "http://127.0.0.1:8200", "Vault address.")
    vault_auth: str = _setting(
        "CALGATE_VAULT_AUTH", "token", "Vault auth method: `token`, `approle` or `kubernetes`.")
    vault_token_file: Path | None = _setting(
        "CALGATE_VAULT_TOKEN_FILE", None, "File holding a Vault token (auth=token).")
    vault_role_id: str = _setting("CALGATE_VAULT_ROLE_ID", "", "AppRole role id (auth=approle).")
    vault_secret_id_file: Path | None = _setting(
        "CALGATE_VAULT_SECRET_ID_FILE", None, "File holding the AppRole secret id.")
    vault_k8s_role: str = _setting(
        "CALGATE_VAULT_K8S_ROLE", "calgate", "Vault Kubernetes auth role (auth=kubernetes).")
    vault_k8s_token_file: Path = _setting(
        "CALGATE_VAULT_K8S_TOKEN_FILE",
        Path("/var/run/secrets/kubernetes.io/serviceaccount/token"),
        "Service-account token presented to Vault's Kubernetes auth.")
    vault_k8s_mount: str = _setting(
        "CALGATE_VAULT_K8S_MOUNT", "kubernetes", "Mount path of Vault's Kubernetes auth.")
    vault_kv_mount: str = _setting("CALGATE_VAULT_KV_MOUNT", "secret", "KV v2 mount path.")
    vault_kv_prefix: str = _setting(
        "CALGATE_VAULT_KV_PREFIX", "calgate", "Path prefix for Calgate's KV entries.")
    vault_transit_mount: str = _setting(
        "CALGATE_VAULT_TRANSIT_MOUNT", "transit", "Transit mount path.")
    vault_transit_key: str = _setting(
        "CALGATE_VAULT_TRANSIT_KEY", "calgate-data-keys",
        "Transit key that wraps per-account data keys.")
    vault_ca_file: Path | None = _setting(
        "CALGATE_VAULT_CA_FILE", None, "CA bundle for Vault's TLS certificate.")
    access_token_ttl: int = _setting(
        "CALGATE_ACCESS_TOKEN_TTL", 3600, "Access token lifetime in seconds.")
    refresh_token_ttl: int = _setting(
        "CALGATE_REFRESH_TOKEN_TTL", 365 * 86400,
        "Absolute lifetime of a refresh-token family, in seconds.")
    refresh_token_idle_ttl: int = _setting(
        "CALGATE_REFRESH_TOKEN_IDLE_TTL", 90 * 86400,
        "A refresh token unused this many seconds expires.")
    refresh_grace_seconds: int = _setting(
        "CALGATE_REFRESH_GRACE_SECONDS", 5,
        "Window in which a retried refresh with a just-rotated token gets the same new pair "
        "(0 disables; at most 30).")
    code_ttl: int = _setting(
        "CALGATE_CODE_TTL", 60, "Authorization code lifetime in seconds (at most 600).")
    consent_ttl: int = _setting(
        "CALGATE_CONSENT_TTL", 1800, "How long a started consent flow stays valid, in seconds.")
    client_auth_failures_per_minute: int = _setting(
        "CALGATE_CLIENT_AUTH_FAILURES_PER_MINUTE", 20,
        "Wrong client secrets allowed per client id and source address per minute before 429.")
    auth_cache_seconds: float = _setting(
        "CALGATE_AUTH_CACHE_SECONDS", 1.0,
        "How long an API process trusts a validated access token or a client record without "
        "asking the database (0 turns it off). A revocation or secret rotation made through "
        "another process takes effect there after at most this long; in the same process, "
        "at once.")
    sync_interval: int = _setting(
        "CALGATE_SYNC_INTERVAL", 300, "Seconds between incremental syncs of a profile.")
    calendar_list_interval: int = _setting(
        "CALGATE_CALENDAR_LIST_INTERVAL", 3600,
        "Seconds between reads of a profile's upstream calendar list (calendars added, "
        "renamed or removed); syncs in between only fetch the known calendars' changes. "
        "Also read on a profile's first sync, after a failed sync, and when a calendar is "
        "gone upstream. 0: on every sync.")
    sync_lease: int = _setting(
        "CALGATE_SYNC_LEASE", 120,
        "Seconds a worker holds a profile while it syncs it (renewed every third of it); "
        "if the worker dies, another one takes the profile over after this long.")
    sync_days_back: int = _setting(
        "CALGATE_SYNC_DAYS_BACK", 42, "The mirror keeps events from this many days ago…")
    sync_days_ahead: int = _setting(
        "CALGATE_SYNC_DAYS_AHEAD", 201, "…to this many days ahead (managed events: all).")
    worker_tick: float = _setting(
        "CALGATE_WORKER_TICK", 2.0,
        "Seconds between the worker's sweeps for due syncs and writes (writes also wake it).")
    worker_concurrency: int = _setting(
        "CALGATE_WORKER_CONCURRENCY", 16,
        "Tasks (syncs, upstream writes, deliveries) one worker process runs at once.")
    outbound_allow_networks: str = _setting(
        "CALGATE_OUTBOUND_ALLOW_NETWORKS", "",
        "Comma-separated networks (CIDR) that user-chosen addresses (CalDAV servers, ICS "
        "feeds, notification callbacks) may reach although they are loopback, private, "
        "link-local or otherwise not public (refused by default against SSRF), e.g. "
        "10.20.0.0/16 for services inside the cluster; anything outside them stays refused.")
    google_url: str = _setting(
        "CALGATE_GOOGLE_URL", "",
        "Base URL of a Google emulator that stands in for Google's OAuth and Calendar "
        "endpoints (tests and development); empty: Google itself.")
    office365_authority_base: str = _setting(
        "CALGATE_OFFICE365_AUTHORITY_BASE", "",
        "Origin of the Microsoft identity platform that Microsoft 365 and Outlook.com "
        "accounts sign in at (https only; tests and development point it at an emulator); "
        "empty: https://login.microsoftonline.com.")
    office365_tenant: str = _setting(
        "CALGATE_OFFICE365_TENANT", "",
        "The Entra tenant Microsoft accounts sign in through: a tenant id or domain pins "
        "Microsoft 365 linking to one organisation; empty: `common` (any organisation for "
        "Microsoft 365, personal accounts for Outlook.com).")
    office365_graph_base: str = _setting(
        "CALGATE_OFFICE365_GRAPH_BASE", "",
        "Origin of Microsoft Graph (https only); empty: https://graph.microsoft.com.")
    office365_ca_bundle: str = _setting(
        "CALGATE_OFFICE365_CA_BUNDLE", "",
        "A PEM file of certificate authorities to trust for Microsoft sign-in and Graph "
        "instead of the system's (a TLS-inspecting proxy, a test CA); empty: the system's.")
    office365_page_size: int = _setting(
        "CALGATE_OFFICE365_PAGE_SIZE", 200,
        "Events per page Calgate asks Microsoft Graph for when it syncs (1 to 1000); "
        "larger pages mean fewer requests.")
    exchange_ca_bundle: str = _setting(
        "CALGATE_EXCHANGE_CA_BUNDLE", "",
        "A PEM file of certificate authorities to trust for Exchange servers instead of the "
        "system's (servers with an organisation's own CA); empty: the system's.")
    exchange_timeout_seconds: float = _setting(
        "CALGATE_EXCHANGE_TIMEOUT_SECONDS", 30.0,
        "Seconds Calgate waits for one Exchange (EWS) request.")
    exchange_oauth_ews_url: str = _setting(
        "CALGATE_EXCHANGE_OAUTH_EWS_URL", "",
        "The EWS URL of a hybrid-configured Exchange Server whose mailboxes sign in with "
        "Microsoft (Entra modern authentication), such as "
        "https://mail.example.org/EWS/Exchange.asmx; offers \"Exchange (Microsoft sign-in)\" "
        "once an Entra app is configured for it. Empty: not offered.")
    provider_push: str = _setting(
        "CALGATE_PROVIDER_PUSH", "auto",
        "Ask providers to push changes (Google watch channels, Microsoft Graph "
        "subscriptions) to this server's "
        "/webhooks/… endpoints: `on`, `off`, or `auto` (on when CALGATE_PUBLIC_URL is https, "
        "which providers require; otherwise polling alone).")
    push_pull_seconds: float = _setting(
        "CALGATE_PUSH_PULL_SECONDS", 10.0,
        "Seconds between reads of the change queues Calgate keeps at providers that do not "
        "post to a webhook (Exchange pull subscriptions); they need no public URL and are "
        "read unless CALGATE_PROVIDER_PUSH is `off`.")
    push_channel_ttl: int = _setting(
        "CALGATE_PUSH_CHANNEL_TTL", 7 * 86400,
        "Seconds a provider push channel is asked to live; it is renewed a day before it "
        "ends (or at half its life when shorter) and stopped when its profile goes.")
    callback_http_hosts: str = _setting(
        "CALGATE_CALLBACK_HTTP_HOSTS", "",
        "Comma-separated host names whose notification callback URLs may use plain http "
        "(all others must be https).")
    channels_per_account: int = _setting(
        "CALGATE_CHANNELS_PER_ACCOUNT", 128, "Notification channels one account may have.")
    notify_timeout: float = _setting(
        "CALGATE_NOTIFY_TIMEOUT", 10.0,
        "Seconds a callback has to answer a notification before the attempt counts as "
        "failed.")
    notify_retry_base: float = _setting(
        "CALGATE_NOTIFY_RETRY_BASE", 2.0,
        "Seconds before the first retry of a failed notification; each retry waits twice "
        "as long (with jitter) up to CALGATE_NOTIFY_MAX_BACKOFF.")
    notify_max_backoff: float = _setting(
        "CALGATE_NOTIFY_MAX_BACKOFF", 3600.0, "The longest wait between two retries.")
    notify_retry_hours: float = _setting(
        "CALGATE_NOTIFY_RETRY_HOURS", 24.0,
        "A channel whose oldest notification has failed this long is marked failing (it "
        "is still tried every 6 hours, and nothing is dropped).")
    delivery_log_days: float = _setting(
        "CALGATE_DELIVERY_LOG_DAYS", 7.0,
        "Days the delivery log and delivered notifications are kept (for "
        "/v1/channels/{id}/deliveries and replay).")
    smart_invite_mailbox: str = _setting(
        "CALGATE_SMART_INVITE_MAILBOX", "",
        "Email address that organizes Smart Invites (ORGANIZER of each invitation): the "
        "recipients' replies go there, and your inbound-mail service posts them to "
        "/inbound/smart_invites/<token> (`calgate smart-invites inbound-url`). Empty: "
        "POST /v1/smart_invites is turned off.")
    read_cache_mb: int = _setting(
        "CALGATE_READ_CACHE_MB", 64,
        "Memory an API process may use to keep rendered GET /v1/events and /v1/free_busy "
        "pages, so a repeated read costs no query, and as much again for the busy times "
        "POST /v1/availability reads (0 turns both off). A page or busy set is served only "
        "while the account's mirror is unchanged since it was read; a page holds decrypted "
        "event text, in this process's memory only.")
    read_cache_seconds: float = _setting(
        "CALGATE_READ_CACHE_SECONDS", 60.0,
        "The longest a rendered read page or busy set is kept, even while the mirror is "
        "unchanged.")
    api_threads: int = _setting(
        "CALGATE_API_THREADS", 4,
        "Worker threads an API process uses for blocking work (database, secret store).")
    api_workers: int = _setting(
        "CALGATE_API_WORKERS", 1,
        "uvicorn worker processes `calgate serve` runs (each one a full API process).")
    forwarded_allow_ips: str = _setting(
        "CALGATE_FORWARDED_ALLOW_IPS", "127.0.0.1",
        "Comma-separated addresses or networks (CIDR) of the reverse proxies whose "
        "X-Forwarded-For and X-Forwarded-Proto headers are trusted (uvicorn's "
        "--forwarded-allow-ips). A client's address is the right-most X-Forwarded-For entry "
        "outside them; it keys the client-secret throttle. `*` is refused: it would make the "
        "left-most entry, which any caller writes, the client's address.")
    shutdown_grace: float = _setting(
        "CALGATE_SHUTDOWN_GRACE", 20.0,
        "Seconds a stopping process gives running work to finish: the API its in-flight "
        "requests, a worker its syncs, writes and deliveries (what is left is handed back "
        "to the other workers at once).")
    log_level: str = _setting(
        "CALGATE_LOG_LEVEL", "info", "Log level: debug, info, warning or error.")
    log_format: str = _setting(
        "CALGATE_LOG_FORMAT", "json",
        "`json`: one JSON object per log line (time, level, logger, message, request_id "
        "and the line's own fields); `text`: plain lines for a terminal.")
    worker_mode: str = _setting(
        "CALGATE_WORKER_MODE", "inprocess",
        "`inprocess`: `calgate serve` also runs the worker; `external`: run `calgate worker`.")
    worker_metrics_port: int = _setting(
        "CALGATE_WORKER_METRICS_PORT", 9464,
        "Port on which `calgate worker` serves its Prometheus metrics at /metrics (on "
        "CALGATE_HOST); 0 turns it off. The API serves /metrics on CALGATE_PORT.")

    @property
    def effective_database_url(self) -> str:
        """The database URL, with the embedded SQLite default filled in."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'calgate.db').resolve()}"

    @property
    def outbound_networks(self) -> tuple[str, ...]:
        return tuple(n.strip() for n in self.outbound_allow_networks.split(",") if n.strip())

    @property
    def callback_hosts(self) -> tuple[str, ...]:
        return tuple(h.strip() for h in self.callback_http_hosts.split(",") if h.strip())

    @property
    def push_enabled(self) -> bool:
        """Should providers be asked to push changes to this server?"""
        if self.provider_push == "auto":
            return self.issuer.startswith("https://")
        return self.provider_push == "on"

    def provider_values(self, provider: str) -> dict[str, str]:
        """The settings provider ``provider`` declares: every field named ``<provider>_<key>``
        (CALGATE_<PROVIDER>_<KEY>) that is set, keyed ``<key>``. The provider's typed settings
        class (its registry entry's) parses them."""
        prefix = f"{provider}_"
        return {f.name.removeprefix(prefix): str(getattr(self, f.name))
                for f in fields(self) if f.name.startswith(prefix)
                and getattr(self, f.name) not in ("", None)}

    @property
    def issuer(self) -> str:
        """The OAuth issuer identifier (RFC 8414 section 2): the public URL, no trailing slash."""
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")

    @property
    def effective_local_secret_dir(self) -> Path:
        return self.local_secret_dir or (self.data_dir / "secrets")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build the settings from ``environ`` (default: ``os.environ``), validating each value."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            name = f.metadata["env"]
            if name in env:
                values[f.name] = _convert(name, env[name], f.default)
        settings = cls(**values)
        settings.validate()
        return settings

    def replace(self, **changes: Any) -> Settings:
        """A copy with some fields changed (for tests and the CLI), validated again."""
        settings = dataclasses.replace(self, **changes)
        settings.validate()
        return settings

    def validate(self) -> None:
        """Refuse combinations Calgate cannot run with, naming the variable at fault."""
        if self.secret_backend not in {"local", "vault"}:
            raise SettingsError("CALGATE_SECRET_BACKEND must be `local` or `vault`")
        if self.vault_auth not in {"token", "approle", "kubernetes"}:
            raise SettingsError("CALGATE_VAULT_AUTH must be `token`, `approle` or `kubernetes`")
        if self.log_level.lower() not in {"debug", "info", "warning", "error"}:
            raise SettingsError("CALGATE_LOG_LEVEL must be debug, info, warning or error")
        if self.log_format not in {"json", "text"}:
            raise SettingsError("CALGATE_LOG_FORMAT must be `json` or `text`")
        if not 0 <= self.worker_metrics_port <= 65535:
            raise SettingsError("CALGATE_WORKER_METRICS_PORT must be between 0 and 65535")
        if self.worker_mode not in {"inprocess", "external"}:
            raise SettingsError("CALGATE_WORKER_MODE must be `inprocess` or `external`")
        if not 0 <= self.refresh_grace_seconds <= 30:
            raise SettingsError("CALGATE_REFRESH_GRACE_SECONDS must be between 0 and 30")
        if not 1 <= self.api_threads <= 256:
            raise SettingsError("CALGATE_API_THREADS must be between 1 and 256")
        if self.provider_push not in {"auto", "on", "off"}:
            raise SettingsError("CALGATE_PROVIDER_PUSH must be auto, on or off")
        if not 1 <= self.push_pull_seconds <= 3600:
            raise SettingsError("CALGATE_PUSH_PULL_SECONDS must be between 1 and 3600")
        if not 60 <= self.push_channel_ttl <= 30 * 86400:
            raise SettingsError("CALGATE_PUSH_CHANNEL_TTL must be between 60 s and 30 days")
        if self.google_url and not self.google_url.startswith(("http://", "https://")):
            raise SettingsError("CALGATE_GOOGLE_URL must be an http(s) URL")
        for name in ("office365_authority_base", "office365_graph_base"):
            if getattr(self, name) and not getattr(self, name).startswith("https://"):
                raise SettingsError(f"CALGATE_{name.upper()} must be an https origin")
        if not 1 <= self.office365_page_size <= 1000:
            raise SettingsError("CALGATE_OFFICE365_PAGE_SIZE must be between 1 and 1000")
        if not 0 <= self.read_cache_mb <= 65536:
            raise SettingsError("CALGATE_READ_CACHE_MB must be between 0 and 65536")
        if not 0 < self.read_cache_seconds <= 3000:
            raise SettingsError("CALGATE_READ_CACHE_SECONDS must be between 0 and 3000")
        if not 0 <= self.auth_cache_seconds <= 30:
            raise SettingsError("CALGATE_AUTH_CACHE_SECONDS must be between 0 and 30")
        if not 1 <= self.worker_concurrency <= 256:
            raise SettingsError("CALGATE_WORKER_CONCURRENCY must be between 1 and 256")
        if not 1 <= self.api_workers <= 64:
            raise SettingsError("CALGATE_API_WORKERS must be between 1 and 64")
        if not 0 <= self.shutdown_grace <= 600:
            raise SettingsError("CALGATE_SHUTDOWN_GRACE must be between 0 and 600 seconds")
        if not 5 <= self.sync_lease <= 3600:
            raise SettingsError("CALGATE_SYNC_LEASE must be between 5 and 3600 seconds")
        if self.calendar_list_interval < 0:
            raise SettingsError("CALGATE_CALENDAR_LIST_INTERVAL must not be negative")
        if not 1 <= self.code_ttl <= 600:
            raise SettingsError("CALGATE_CODE_TTL must be between 1 and 600 seconds")
        for network in self.outbound_networks:
            try:
                ipaddress.ip_network(network, strict=False)
            except ValueError:
                raise SettingsError(f"CALGATE_OUTBOUND_ALLOW_NETWORKS: {network!r} is not a "
                                    "network such as 10.0.0.0/8") from None
        if not 1 <= self.channels_per_account <= 10000:
            raise SettingsError("CALGATE_CHANNELS_PER_ACCOUNT must be between 1 and 10000")
        if not 0 < self.notify_timeout <= 60:
            raise SettingsError("CALGATE_NOTIFY_TIMEOUT must be between 0 and 60 seconds")
        if not 0 < self.notify_retry_base <= self.notify_max_backoff:
            raise SettingsError("CALGATE_NOTIFY_RETRY_BASE must be positive and at most "
                                "CALGATE_NOTIFY_MAX_BACKOFF")
        if not 0 < self.notify_retry_hours <= 24 * 30:
            raise SettingsError("CALGATE_NOTIFY_RETRY_HOURS must be between 0 and 720")
        if not 0 < self.delivery_log_days <= 365:
            raise SettingsError("CALGATE_DELIVERY_LOG_DAYS must be between 0 and 365")
        _check_mailbox(self.smart_invite_mailbox)
        _check_proxies(self.forwarded_allow_ips)
        _check_public_url(self.issuer)


def _check_mailbox(value: str) -> None:
    """An address an iCalendar ORGANIZER (``mailto:``) carries as it is."""
    local, at, domain = value.partition("@")
    if value and (not at or not local or "." not in domain or "@" in domain
                  or any(c.isspace() or c in '<>,;:"()[]\\' for c in value)):
        raise SettingsError("CALGATE_SMART_INVITE_MAILBOX must be a plain email address "
                            "such as invites@calgate.example")


def _check_proxies(value: str) -> None:
    """uvicorn trusts every hop for ``*`` and then takes the left-most X-Forwarded-For
    entry, which the caller chose; an entry it cannot parse it silently treats as a name."""
    for entry in filter(None, (e.strip() for e in value.split(","))):
        try:
            everyone = ipaddress.ip_network(entry, strict=False).prefixlen == 0
        except ValueError:
            everyone = True
        if everyone:  # 0.0.0.0/0 is `*` by another name
            raise SettingsError(f"CALGATE_FORWARDED_ALLOW_IPS: {entry!r} is not an address or "
                                "a network such as 10.0.0.0/8 (list the proxies; `*` would "
                                "let any caller choose its own address)")


def _check_public_url(url: str) -> None:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise SettingsError("CALGATE_PUBLIC_URL must be an absolute http(s) URL")
    if parts.query or parts.fragment or parts.path not in {"", "/"}:
        raise SettingsError("CALGATE_PUBLIC_URL must have no path, query or fragment")
    loopback = parts.hostname in {"localhost", "127.0.0.1", "::1"}
    if parts.scheme == "http" and not loopback:
        raise SettingsError("CALGATE_PUBLIC_URL must be https unless it is a loopback address")


def _convert(name: str, raw: str, default: Any) -> Any:
    try:
        if isinstance(default, bool):
            return raw.strip().lower() in {"1", "true", "yes", "on"}
        if isinstance(default, int):
            return int(raw)
        if isinstance(default, float):
            return float(raw)
        if isinstance(default, Path) or name.endswith(("_FILE", "_DIR")):
            return Path(raw) if raw else None
    except ValueError as exc:
        raise SettingsError(f"{name}: {exc}") from exc
    return raw


def describe() -> list[tuple[str, str, str]]:
    """(variable, default, help) for every setting: the README table and `calgate settings`."""
    rows = []
    for f in fields(Settings):
        default = "" if f.default is None else str(f.default)
        rows.append((f.metadata["env"], default, f.metadata["help"]))
    return rows

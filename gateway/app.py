"""The composition root: settings -> database, secret store, authorization server, API."""

from __future__ import annotations

import asyncio
import base64
import gc
import logging
import os
from collections.abc import AsyncIterator, Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from oauth_server.bearer import BearerError
from oauth_server.cache import TtlCache
from oauth_server.crypto import ServerKeys
from oauth_server.grants_store import Lifetimes
from oauth_server.routes import AuthorizationService, OAuthConfig
from oauth_server.scopes import expand
from providers.outbound import OutboundPolicy
from providers.registry import ProviderOptions, build_settings

from .api import (
    availability,
    availability_rules,
    batch,
    calendars,
    channels,
    events,
    identity,
    openapi,
    permissions,
    resources,
    sequenced,
    smart_invites,
    webhooks,
    writes,
)
from .api.app_auth import ClientSecretAuth
from .api.auth import Authenticator
from .api.errors import (
    ApiError,
    ServerErrors,
    forbidden,
    handle_api_error,
    handle_http_error,
    handle_server_error,
    handle_unavailable,
    unauthorized,
)
from .api.guard import InputGuard
from .domain.event_notices import event_unsealer
from .domain.opener import ProfileOpener
from .domain.sealing import DataKeys
from .domain.upstream_apps import UpstreamApps
from .oauth_host import GatewayAccountHost
from .observe import exposition
from .observe.metrics import token_issued
from .observe.middleware import ObservabilityMiddleware
from .persistence.database import make_engine
from .persistence.wakeups import Wakeups
from .secrets import SecretStore, SecretStoreUnavailable, open_secret_store
from .services.accounts import AccountService
from .services.application_calendars import ApplicationCalendars
from .services.availability import AvailabilityService
from .services.availability_rules import AvailabilityRuleService
from .services.availability_spans import BusyCache
from .services.batches import BatchService
from .services.calendars import CalendarService
from .services.channels import ChannelService, ChannelSettings
from .services.connectors import register_defaults
from .services.external_writes import ExternalWriteService
from .services.inbound_token import InboundToken
from .services.linking import ConnectorRegistry
from .services.managed_availability import StoredManagedAvailability
from .services.pagecache import PageCache
from .services.permissions import AppInfo, PermissionService
from .services.pull import PullService
from .services.push import PushService, PushSettings
from .services.reads import ReadService
from .services.relink import RelinkLinks
from .services.resources import ResourceService
from .services.sequenced import SequencedService
from .services.signing import ClientSecrets
from .services.smart_invites import NOTIFICATION_PURPOSE as smart_invite_notice_purpose
from .services.smart_invites import InviteSettings, SmartInviteService
from .services.writes import WriteService
from .settings import Settings
from .sync.answers import Answers
from .sync.delivery import Deliverer, DeliverySettings
from .sync.engine import SyncEngine, SyncSettings
from .sync.external import ExternalOutbox
from .sync.invite_delivery import InviteDeliverer
from .sync.outbox import Outbox
from .worker import Worker

log = logging.getLogger("calgate")
SERVER_KEYS_PATH = "server/keys"


@dataclass(frozen=True, slots=True)
class Caller:
    subject: str
    client_id: str
    scope: tuple[str, ...]
    grants: frozenset[str]


@dataclass
class Gateway:
    """Everything one process holds, built once from Settings."""

    settings: Settings
    engine: Engine
    secrets: SecretStore
    accounts: AccountService
    connectors: ConnectorRegistry
    oauth: AuthorizationService
    writes: WriteService
    reads: ReadService
    worker: Worker
    apps: UpstreamApps
    push: PushService
    signing: ClientSecrets  # client secrets for webhook signatures
    channels: ChannelService  # client apps' notification channels
    calendars: CalendarService  # listing and creating calendars, with the provider settings
    batches: BatchService  # batch progress
    pages: PageCache | None = None  # rendered read pages (None: the cache is off)
    permissions: PermissionService | None = None  # elevated permissions (API.md s6.3)
    external_writes: ExternalWriteService | None = None  # writes to events of others
    invites: SmartInviteService | None = None  # Smart Invites and their answers
    inbound: InboundToken | None = None  # the secret of the inbound-mail webhook
    relinks: RelinkLinks | None = None  # signs profile_relink_url
    resources: ResourceService | None = None  # the organisation's rooms, asked upstream
    availability: AvailabilityService | None = None  # POST /v1/availability, from the mirror
    # Availability rules and available periods (managed availability, API.md s8.3).
    availability_rules: AvailabilityRuleService | None = None

    @classmethod
    def build(cls, settings: Settings, *, secrets: SecretStore | None = None,
              connectors: ConnectorRegistry | None = None,
              options: ProviderOptions | None = None) -> Gateway:
        engine = make_engine(settings.effective_database_url)
        store = secrets or open_secret_store(settings)
        keys = load_server_keys(store)
        accounts = AccountService(engine, store, TtlCache(settings.auth_cache_seconds))
        outbound = OutboundPolicy.allowing(settings.outbound_networks)
        options = options or provider_options(settings)  # tests may pass their own resolver
        apps = UpstreamApps(store)
        opener = ProfileOpener(store, options, apps)
        if connectors is None:
            connectors = ConnectorRegistry()
            register_defaults(connectors, options, apps)
        relinks = RelinkLinks(keys.derive("relink"), settings.issuer)
        host = GatewayAccountHost(accounts, connectors,
                                  ApplicationCalendars(engine, accounts, options), relinks)
        lifetimes = Lifetimes(access=settings.access_token_ttl, refresh=settings.refresh_token_ttl,
                              refresh_idle=settings.refresh_token_idle_ttl,
                              grace=settings.refresh_grace_seconds, code=settings.code_ttl,
                              cache=settings.auth_cache_seconds)
        oauth = AuthorizationService(engine, keys, host, OAuthConfig(
            issuer=settings.issuer, lifetimes=lifetimes, consent_ttl=settings.consent_ttl,
            failures_per_minute=settings.client_auth_failures_per_minute))
        signing = ClientSecrets(store)
        oauth.registry.keeper = signing  # new, rotated and deleted client secrets
        oauth.server.on_token_issued = token_issued  # calgate_oauth_tokens_issued_total
        keys_cache = DataKeys(engine, store)
        sync = SyncEngine(engine, store, keys_cache, SyncSettings(
            days_back=settings.sync_days_back, days_ahead=settings.sync_days_ahead,
            interval=settings.sync_interval,
            calendar_list_interval=settings.calendar_list_interval,
            lease=settings.sync_lease), options)
        # Channels Calgate reads itself need no public URL: on unless push is switched off.
        pulls = settings.provider_push != "off"
        push = PushService(engine, opener, PushSettings(
            settings.push_enabled, settings.issuer, settings.push_channel_ttl, pull=pulls))
        accounts.release = lambda profile_id: _run_async(push.release, profile_id)
        delivery = DeliverySettings(
            timeout=settings.notify_timeout, retry_base=settings.notify_retry_base,
            max_backoff=settings.notify_max_backoff,
            retry_period=settings.notify_retry_hours * 3600,
            claim=settings.notify_timeout * 2 + 10, log_days=settings.delivery_log_days,
            outbound=outbound)
        deliverer = Deliverer(engine, signing.sign, delivery)
        callbacks = ChannelSettings(per_account=settings.channels_per_account,
                                    http_hosts=settings.callback_hosts, outbound=outbound)
        invites = SmartInviteService(engine, keys, InviteSettings(
            settings.smart_invite_mailbox, callbacks))
        invite_deliverer = InviteDeliverer(
            engine, signing.sign,
            lambda sealed: keys.unseal(smart_invite_notice_purpose, sealed), delivery,
            unseal_event=event_unsealer(keys_cache))
        worker = Worker(sync, Outbox(engine, store, keys_cache, options),
                        Answers(engine, store, options), tick=settings.worker_tick, push=push,
                        deliverer=deliverer, wakeups=Wakeups(engine),
                        concurrency=settings.worker_concurrency,
                        external=ExternalOutbox(engine, store, keys_cache, options),
                        invites=invite_deliverer, pull=PullService(
                            engine, opener, pulls, settings.push_pull_seconds))
        channel_service = ChannelService(engine, callbacks,
            has_signing_secret=lambda client_id: bool(signing.active(client_id)))
        rules = AvailabilityRuleService(engine)
        pages = (PageCache(settings.read_cache_mb * 1024 * 1024, settings.read_cache_seconds)
                 if settings.read_cache_mb else None)
        return cls(settings, engine, store, accounts, connectors, oauth,
                   WriteService(engine, keys_cache, callbacks), ReadService(engine, keys_cache),
                   worker,
                   apps, push, signing, channel_service, CalendarService(engine, store, options),
                   BatchService(engine), pages, PermissionService(engine),
                   ExternalWriteService(engine, keys_cache), invites, InboundToken(store),
                   relinks, ResourceService(engine, opener),
                   availability=AvailabilityService(
                       engine, keys_cache, StoredManagedAvailability(rules),
                       BusyCache(settings.read_cache_mb * 1024 * 1024,
                                 settings.read_cache_seconds)
                       if settings.read_cache_mb else None),
                   availability_rules=rules)

    def find_app(self, client_id: str) -> AppInfo | None:
        """A client app as the permissions page presents it."""
        client = self.oauth.registry.find(client_id)
        if client is None:
            return None
        brand = client.branding
        return AppInfo(client.client_id, brand.display_name, client.redirect_uris,
                       client.verified, brand.logo_url, brand.privacy_policy_url,
                       brand.support_url)

    async def wake_workers(self) -> None:
        """Work was just recorded: wake this process's worker and, through the database,
        every ``calgate worker`` process, so it starts now rather than at the next tick."""
        self.worker.wake()
        if self.worker.wakeups is not None and self.worker.wakeups.enabled:
            from anyio import to_thread

            await to_thread.run_sync(self.worker.wakeups.publish)

    def delete_client(self, client_id: str) -> bool:
        """Erase a client app: every account's credentials and rows, then its tokens and
        the upstream apps it registered."""
        done = self.oauth.delete_client(client_id)
        if self.invites is not None:
            self.invites.forget_client(client_id)
        self.apps.remove_client(client_id)
        return done

    def close(self) -> None:
        self.engine.dispose()
        self.secrets.close()


def provider_options(settings: Settings) -> ProviderOptions:
    """What every provider is opened with: the outbound guard's policy and each provider's
    typed settings, built once from the ``CALGATE_<PROVIDER>_*`` settings it declares."""
    return ProviderOptions(outbound=OutboundPolicy.allowing(settings.outbound_networks),
                           settings=build_settings(settings.provider_values))


def _run_async(function: Callable[[str], Coroutine[Any, Any, None]], argument: str) -> None:
    """Run an async upstream call from blocking code: here if this thread runs no event
    loop (a worker thread, the CLI), else on a thread of its own."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(function(argument))
        return
    with ThreadPoolExecutor(1) as pool:
        pool.submit(lambda: asyncio.run(function(argument))).result()


def load_server_keys(store: SecretStore) -> ServerKeys:
    """The server key lives in the secret store; made on first start."""
    found = store.find(SERVER_KEYS_PATH)
    if found is None:
        store.put(SERVER_KEYS_PATH, {"master": base64.b64encode(os.urandom(32)).decode()})
        found = store.get(SERVER_KEYS_PATH)
    return ServerKeys(base64.b64decode(found["master"]))


def create_app(gateway: Gateway) -> Starlette:
    """The ASGI app: OAuth routes, the /v1 API and operational endpoints."""
    bearer = gateway.oauth.bearer

    async def authenticate(request: Request, scope: str | None) -> Caller:
        try:
            info = await bearer.authenticate(request)
            if scope is not None:
                bearer.require(info, scope)
        except BearerError as exc:
            if exc.status == 403:
                raise forbidden(scope or "", exc.challenge) from None
            raise unauthorized(exc.challenge) from None
        return Caller(info.subject, info.client_id, info.scope, expand(info.scope))

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        from anyio import to_thread

        try:
            await to_thread.run_sync(_check_ready, gateway)
        except Exception as exc:  # readiness reports, it never raises
            log.warning("not ready: %s", type(exc).__name__)
            return JSONResponse({"status": "unavailable"}, status_code=503)
        return JSONResponse({"status": "ok"})

    registry = exposition.api_registry(gateway.engine)

    async def metrics(request: Request) -> Response:
        """Prometheus text exposition: this process's (or, in multiprocess mode, every API
        process's) counters, and the database's state (observe/state.py)."""
        from anyio import to_thread

        body, content_type = await to_thread.run_sync(
            exposition.render, registry, request.headers.get("accept", ""))
        return Response(body, headers={"Content-Type": content_type})

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        import anyio

        # Few threads for blocking work: database calls are short, and many threads only
        # fight over the GIL (measured: bench/RESULTS.md).
        anyio.to_thread.current_default_thread_limiter().total_tokens = (
            gateway.settings.api_threads)
        # The ~100k objects made at start-up (modules, tables, compiled statements) never
        # die: move them out of the collector's sight, so a full collection under load
        # walks only what requests allocate (it cost 40-60 ms pauses: bench/HOTSPOTS.md).
        gc.collect()
        gc.freeze()
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(_housekeeping, gateway)
            if gateway.settings.worker_mode == "inprocess":
                tasks.start_soon(gateway.worker.run)
            yield
            tasks.cancel_scope.cancel()
        gateway.close()

    async def end_authorization(subject: str) -> None:
        from anyio import to_thread

        await to_thread.run_sync(gateway.oauth.store.revoke_subject, subject, "last_profile")

    routes = [*gateway.oauth.routes(), *_api_routes(gateway, authenticate, end_authorization),
              Route("/healthz", healthz), Route("/readyz", readyz),
              Route("/metrics", metrics, methods=["GET"]),
              *openapi.routes(openapi.document(gateway.settings.issuer))]
    app = Starlette(routes=routes, lifespan=lifespan,
                    exception_handlers={ApiError: handle_api_error, 500: handle_server_error,
                                        SecretStoreUnavailable: handle_unavailable,
                                        OperationalError: handle_unavailable,
                                        HTTPException: handle_http_error})
    # Outermost last: ids and the access log see the 500 that ServerErrors answers.
    app.add_middleware(InputGuard)  # NUL, lone surrogates, deep JSON: refused for everyone
    app.add_middleware(ServerErrors)  # an unhandled exception: JSON 500, connection kept
    app.add_middleware(ObservabilityMiddleware)  # request ids, latency, access log
    return app


def _api_routes(gateway: Gateway, authenticate: Authenticator,
                end_authorization: Callable[[str], Coroutine[Any, Any, None]]) -> list[Route]:
    """The /v1 and webhook routes, each over the services it needs (built once, above)."""
    wake = gateway.wake_workers
    settings = gateway.settings
    window = events.SyncWindow(settings.sync_days_back, settings.sync_days_ahead)
    return [
        *identity.routes_for(authenticate, gateway.accounts, end_authorization,
                             gateway.calendars, gateway.relinks),
        *calendars.routes_for(authenticate, gateway.calendars),
        *_resource_routes(gateway, authenticate),
        # The server keys seal next_page URLs.
        *events.routes_for(authenticate, gateway.reads, gateway.pages,
                           gateway.oauth.server.keys, window),
        *writes.routes_for(authenticate, gateway.writes, gateway.reads, wake,
                           identity.Userinfo(gateway.accounts, gateway.calendars,
                                             gateway.relinks), gateway.external_writes),
        *_permission_routes(gateway, authenticate),
        *batch.routes_for(authenticate, gateway.writes, gateway.batches, wake,
                          settings.issuer, gateway.external_writes),
        *webhooks.routes_for(gateway.push, wake),
        *channels.routes_for(authenticate, gateway.channels, wake),
        *_invite_routes(gateway),
        *_availability_routes(gateway, authenticate),
        *_rule_routes(gateway, authenticate),
    ]


def _resource_routes(gateway: Gateway, authenticate: Authenticator) -> list[Route]:
    if gateway.resources is None:
        return []
    return resources.routes_for(authenticate, gateway.resources)


def _rule_routes(gateway: Gateway, authenticate: Authenticator) -> list[Route]:
    if gateway.availability_rules is None:
        return []
    # The server keys seal the available periods' next_page URLs, as for events.
    return availability_rules.routes_for(authenticate, gateway.availability_rules,
                                         gateway.oauth.server.keys)


def _permission_routes(gateway: Gateway, authenticate: Authenticator) -> list[Route]:
    if gateway.permissions is None:
        return []
    return permissions.routes_for(authenticate, gateway.permissions, gateway.find_app,
                                  gateway.settings.issuer)


def _client_secret_auth(gateway: Gateway) -> ClientSecretAuth:
    """App-level calls: the client app's secret as a bearer token."""
    registry = gateway.oauth.registry

    def find_client(secret: str) -> str | None:
        client = registry.find_by_secret(secret)
        return None if client is None else client.client_id

    return ClientSecretAuth(find_client, gateway.oauth.server.throttle)


def _invite_routes(gateway: Gateway) -> list[Route]:
    """Smart Invites: app-level calls authenticated by the client secret, and the
    inbound-mail webhook."""
    if gateway.invites is None or gateway.inbound is None:
        return []
    return smart_invites.routes_for(_client_secret_auth(gateway), gateway.invites,
                                    gateway.inbound, gateway.wake_workers)


def _availability_routes(gateway: Gateway, authenticate: Authenticator) -> list[Route]:
    """Availability: an access token for its own account, or the client secret for any of
    the app's accounts."""
    if gateway.availability is None:
        return []
    app_auth = _client_secret_auth(gateway)
    return [*availability.routes_for(authenticate, app_auth, gateway.availability),
            *sequenced.routes_for(authenticate, app_auth,
                                  SequencedService(gateway.availability))]


async def _housekeeping(gateway: Gateway, every: float = 60.0) -> None:
    """Run :func:`housekeep` every ``every`` seconds.

    Interim: the worker (ARCHITECTURE.md s4) takes this over when it lands.
    """
    import anyio
    from anyio import to_thread

    while True:
        try:
            await to_thread.run_sync(housekeep, gateway)
        except Exception:
            log.exception("housekeeping failed; retrying in %.0f s", every)
        await anyio.sleep(every)


def housekeep(gateway: Gateway) -> None:
    """Erase credentials parked by consent flows nobody finished, the authorizations of
    stolen grants whose erasure failed, expired codes and tokens, used or expired link
    tokens, and permissions requests long expired."""
    gateway.oauth.sweep_expired_flows()
    gateway.oauth.sweep_stolen()
    gateway.oauth.store.delete_expired_codes()
    gateway.oauth.store.delete_expired_tokens()
    gateway.accounts.purge_link_tokens()
    if gateway.permissions is not None:
        gateway.permissions.purge()


def _check_ready(gateway: Gateway) -> None:
    with gateway.engine.connect() as conn:
        conn.execute(text("SELECT 1"))
    gateway.secrets.check()

"""``calgate providers …`` and ``calgate clients set-upstream-app …``: the upstream OAuth apps
of the redirect providers (the registry's) that Calgate links accounts with. Secrets go to
the secret store only; pass them with ``--client-secret-stdin`` to keep them out of the shell
history and the process list."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from providers.registry import redirect_providers

from ..settings import Settings


def add_provider_commands(sub: Any, clients: Any) -> None:
    names = redirect_providers()
    providers = sub.add_parser("providers", help="configure upstream OAuth apps "
                                                 f"({', '.join(names)})")
    psub = providers.add_subparsers(required=True, metavar="action")
    configure = psub.add_parser("configure", help="set the deployment's default upstream app")
    configure.add_argument("provider", choices=names)
    _app_arguments(configure)
    configure.set_defaults(func=_configure)
    show = psub.add_parser("show", help="the configured app and the redirect URI to register")
    show.add_argument("provider", choices=names)
    show.set_defaults(func=_show)
    remove = psub.add_parser("remove", help="forget the default upstream app")
    remove.add_argument("provider", choices=names)
    remove.set_defaults(func=_remove)

    own = clients.add_parser("set-upstream-app",
                             help="link this client's users with its own upstream app, so "
                                  "the provider's consent screen shows its name")
    own.add_argument("client_id")
    own.add_argument("--provider", choices=names, required=True)
    _app_arguments(own)
    own.set_defaults(func=_configure)
    clear = clients.add_parser("clear-upstream-app",
                               help="go back to the deployment's default upstream app")
    clear.add_argument("client_id")
    clear.add_argument("--provider", choices=names, required=True)
    clear.set_defaults(func=_remove)


def _app_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--client-id", required=True, dest="upstream_client_id",
                        help="the OAuth client id from the provider's console")
    secret = parser.add_mutually_exclusive_group(required=True)
    secret.add_argument("--client-secret", dest="upstream_client_secret")
    secret.add_argument("--client-secret-stdin", action="store_true",
                        help="read the client secret from standard input")


def _apps(settings: Settings) -> Any:
    from ..domain.upstream_apps import UpstreamApps
    from ..secrets import open_secret_store

    return UpstreamApps(open_secret_store(settings))


def _target(args: argparse.Namespace) -> tuple[str, str | None]:
    client = getattr(args, "client_id", None)
    return (args.provider, client)


def _configure(settings: Settings, args: argparse.Namespace) -> int:
    from .main import emit

    provider, client = _target(args)
    secret = (sys.stdin.readline().strip() if args.client_secret_stdin
              else args.upstream_client_secret)
    if client is not None and not _client_exists(settings, client):
        print(f"calgate: no client {client}", file=sys.stderr)
        return 1
    apps = _apps(settings)
    try:
        apps.configure(provider, args.upstream_client_id, secret or "", client)
    except ValueError as exc:
        print(f"calgate: {exc}", file=sys.stderr)
        return 1
    finally:
        apps.secrets.close()
    emit({"provider": provider, "client": client or "default",
          "upstream_client_id": args.upstream_client_id.strip(),
          "redirect_uri": f"{settings.issuer}/oauth/callback/{provider}"})
    return 0


def _show(settings: Settings, args: argparse.Namespace) -> int:
    from .main import emit

    apps = _apps(settings)
    try:
        found = apps.describe(args.provider)
    finally:
        apps.secrets.close()
    emit({"provider": args.provider, "upstream_client_id": found,
          "configured": found is not None,
          "redirect_uri": f"{settings.issuer}/oauth/callback/{args.provider}"})
    return 0


def _remove(settings: Settings, args: argparse.Namespace) -> int:
    provider, client = _target(args)
    apps = _apps(settings)
    try:
        done = apps.remove(provider, client)
    finally:
        apps.secrets.close()
    if not done:
        print(f"calgate: no {provider} app configured for {client or 'the deployment'}",
              file=sys.stderr)
        return 1
    print(f"removed the {provider} app of {client or 'the deployment'}")
    return 0


def _client_exists(settings: Settings, client_id: str) -> bool:
    from ..app import Gateway

    gateway = Gateway.build(settings)
    try:
        return gateway.oauth.registry.find(client_id) is not None
    finally:
        gateway.close()

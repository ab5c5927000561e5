"""``calgate clients create|list|show|update|rotate-secret|delete``."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ..settings import Settings


def add_client_commands(sub: Any) -> None:
    clients = sub.add_parser("clients", help="register and manage client apps")
    csub = clients.add_subparsers(required=True, metavar="action")
    create = csub.add_parser("create", help="register a client app; prints its secret once")
    create.add_argument("--name", required=True)
    create.add_argument("--redirect-uri", action="append", required=True, dest="redirect_uris")
    create.add_argument("--scope", required=True, help="space-separated scopes it may request")
    create.add_argument("--logo-url")
    create.add_argument("--accent-color")
    create.add_argument("--privacy-policy-url")
    create.add_argument("--support-url")
    create.add_argument("--public", action="store_true", help="no secret; PKCE required")
    create.add_argument("--legacy-no-pkce", action="store_true",
                        help="allow code flows without PKCE (apps on the Cronofy SDKs)")
    create.add_argument("--verified", action="store_true", help="mark the app verified")
    create.add_argument("--rotate-refresh-tokens", action="store_true",
                        help="answer every refresh with a new refresh token (a reused one "
                             "ends the grant); public clients always rotate")
    create.set_defaults(func=_create)
    update = csub.add_parser("update", help="change a client app's settings")
    update.add_argument("client_id")
    update.add_argument("--rotate-refresh-tokens", action=argparse.BooleanOptionalAction,
                        default=None, help="rotate refresh tokens at every refresh, or keep "
                                           "one per grant (confidential clients only)")
    update.set_defaults(func=_update)
    csub.add_parser("list", help="list client apps").set_defaults(func=_list)
    for name, func, text in (("show", _show, "show one client app"),
                             ("rotate-secret", _rotate, "issue a new secret"),
                             ("delete", _delete, "delete the app and erase its users' data")):
        cmd = csub.add_parser(name, help=text)
        cmd.add_argument("client_id")
        cmd.set_defaults(func=func)
        if name == "rotate-secret":
            cmd.add_argument(
                "--overlap", type=float, default=0.0, metavar="SECONDS",
                help="keep the old secret valid this long (default 0: it stops at once); "
                     "meanwhile both secrets authenticate and webhooks carry both signatures")
    from .providers import add_provider_commands

    add_provider_commands(sub, csub)


def _gateway(settings: Settings) -> Any:
    from ..app import Gateway

    return Gateway.build(settings)


def _describe(client: Any) -> dict[str, Any]:
    b = client.branding
    return {"client_id": client.client_id, "name": b.display_name,
            "redirect_uris": list(client.redirect_uris), "scope": " ".join(client.allowed_scopes),
            "public": client.public, "legacy_no_pkce": client.legacy_no_pkce,
            "verified": client.verified,
            "rotate_refresh_tokens": client.rotates_refresh_tokens, "logo_url": b.logo_url,
            "accent_color": b.accent_color,
            "privacy_policy_url": b.privacy_policy_url, "support_url": b.support_url}


def _create(settings: Settings, args: argparse.Namespace) -> int:
    from oauth_server.registry import Branding, ClientError

    from .main import emit

    gateway = _gateway(settings)
    try:
        client, secret = gateway.oauth.registry.create(
            name=args.name, redirect_uris=args.redirect_uris, scopes=args.scope.split(),
            branding=Branding(args.name, args.logo_url, args.accent_color,
                              args.privacy_policy_url, args.support_url),
            public=args.public, legacy_no_pkce=args.legacy_no_pkce, verified=args.verified,
            rotate_refresh_tokens=args.rotate_refresh_tokens)
    except ClientError as exc:
        print(f"calgate: {exc}", file=sys.stderr)
        return 2
    finally:
        gateway.close()
    emit(_describe(client) | {"client_secret": secret})
    if secret:
        print("Store the client_secret now: it is not shown again.", file=sys.stderr)
    return 0


def _list(settings: Settings, args: argparse.Namespace) -> int:
    from .main import emit

    gateway = _gateway(settings)
    try:
        emit([_describe(c) for c in gateway.oauth.registry.list()])
    finally:
        gateway.close()
    return 0


def _show(settings: Settings, args: argparse.Namespace) -> int:
    from .main import emit

    gateway = _gateway(settings)
    try:
        client = gateway.oauth.registry.find(args.client_id)
    finally:
        gateway.close()
    if client is None:
        print(f"calgate: no client {args.client_id}", file=sys.stderr)
        return 1
    emit(_describe(client))
    return 0


def _update(settings: Settings, args: argparse.Namespace) -> int:
    from oauth_server.registry import ClientError

    from .main import emit

    gateway = _gateway(settings)
    try:
        client = gateway.oauth.registry.update(
            args.client_id, rotate_refresh_tokens=args.rotate_refresh_tokens)
    except ClientError as exc:
        print(f"calgate: {exc}", file=sys.stderr)
        return 1
    finally:
        gateway.close()
    emit(_describe(client))
    return 0


def _rotate(settings: Settings, args: argparse.Namespace) -> int:
    from oauth_server.registry import ClientError

    from .main import emit

    gateway = _gateway(settings)
    try:
        secret = gateway.oauth.registry.rotate_secret(args.client_id, args.overlap)
    except ClientError as exc:
        print(f"calgate: {exc}", file=sys.stderr)
        return 1
    finally:
        gateway.close()
    emit({"client_id": args.client_id, "client_secret": secret,
          "overlap_seconds": args.overlap})
    if args.overlap > 0:
        print(f"The previous secret stays valid for {args.overlap:g} s: deploy the new one "
              "before then.", file=sys.stderr)
    return 0


def _delete(settings: Settings, args: argparse.Namespace) -> int:
    gateway = _gateway(settings)
    try:
        done = gateway.delete_client(args.client_id)
    finally:
        gateway.close()
    if not done:
        print(f"calgate: no client {args.client_id}", file=sys.stderr)
        return 1
    print(f"deleted {args.client_id} and erased its users' credentials and data")
    return 0

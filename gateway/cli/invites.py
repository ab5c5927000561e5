"""``calgate smart-invites inbound-url [--rotate]``: the URL to give the inbound-mail
service that receives the Smart Invite mailbox's mail."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ..settings import Settings


def add_invite_commands(sub: Any) -> None:
    invites = sub.add_parser("smart-invites", help="Smart Invites: the inbound-mail webhook")
    isub = invites.add_subparsers(required=True, metavar="action")
    url = isub.add_parser("inbound-url", help="print the URL your inbound-mail service posts "
                          "the mailbox's mail to (made on first use)")
    url.add_argument("--rotate", action="store_true",
                     help="make a new secret: the old URL stops working at once")
    url.set_defaults(func=_inbound_url)


def _inbound_url(settings: Settings, args: argparse.Namespace) -> int:
    from ..secrets import open_secret_store
    from ..services.inbound_token import InboundToken

    store = open_secret_store(settings)
    try:
        tokens = InboundToken(store)
        token = tokens.rotate() if args.rotate else tokens.current()
    finally:
        store.close()
    if not settings.smart_invite_mailbox:
        print("calgate: CALGATE_SMART_INVITE_MAILBOX is not set: Smart Invites are off",
              file=sys.stderr)
    print(f"{settings.issuer}/inbound/smart_invites/{token}")
    return 0

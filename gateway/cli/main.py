"""The ``calgate`` command: serve, migrate, manage client apps, show settings."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any

from ..settings import Settings, SettingsError, describe

log = logging.getLogger("calgate.cli")


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    _listen_flags(args)
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"calgate: {exc}", file=sys.stderr)
        return 2
    result: int = args.func(settings, args)
    return result


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="calgate", description=__doc__)
    sub = parser.add_subparsers(required=True, metavar="command")
    serve = sub.add_parser("serve", help="migrate the database and serve the gateway")
    serve.add_argument("--no-migrate", action="store_true", help="skip `calgate migrate`")
    serve.add_argument("--workers", type=int, default=0,
                       help="uvicorn worker processes (default: CALGATE_API_WORKERS)")
    serve.add_argument("--host", help="address to listen on (default: CALGATE_HOST)")
    serve.add_argument("--port", type=_port, help="port to listen on (default: CALGATE_PORT)")
    serve.set_defaults(func=_serve)
    worker = sub.add_parser("worker", help="run the worker: syncs and upstream writes")
    worker.set_defaults(func=_worker)
    migrate = sub.add_parser("migrate", help="upgrade the database schema")
    migrate.add_argument("revision", nargs="?", default="head")
    migrate.set_defaults(func=_migrate)
    settings = sub.add_parser("settings", help="list the CALGATE_* variables")
    settings.add_argument("--markdown", action="store_true", help="as the README's table")
    settings.set_defaults(func=_settings)
    from .clients import add_client_commands

    add_client_commands(sub)
    from .invites import add_invite_commands

    add_invite_commands(sub)
    return parser


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    import logging.config

    import uvicorn

    from ..observe.exposition import prepare_multiprocess_dir
    from ..observe.logs import logging_config
    from ..persistence.database import migrate

    # uvicorn applies the same configuration in each worker process it starts. Its access
    # log is off: the app logs every request itself, by route template (observe/middleware).
    log_config = logging_config(settings)
    logging.config.dictConfig(log_config)
    prepare_multiprocess_dir(empty=True)  # before any worker process counts anything
    if not args.no_migrate:
        migrate(settings.effective_database_url)
    uvicorn.run("gateway.asgi:build", factory=True, host=settings.host, port=settings.port,
                workers=args.workers or settings.api_workers, log_level=settings.log_level,
                log_config=log_config, access_log=False,
                proxy_headers=True, forwarded_allow_ips=settings.forwarded_allow_ips,
                server_header=False, timeout_graceful_shutdown=int(settings.shutdown_grace))
    return 0


def _listen_flags(args: argparse.Namespace) -> None:
    """``serve --host/--port`` stand for CALGATE_HOST/CALGATE_PORT. They go into the
    environment before the settings are read, so they are validated with the rest (the
    default public URL names the port), and uvicorn's worker processes, which build the app
    from the environment (``gateway.asgi:build``), see them too."""
    for flag, variable in (("host", "CALGATE_HOST"), ("port", "CALGATE_PORT")):
        value = getattr(args, flag, None)
        if value is not None:
            os.environ[variable] = str(value)


def _port(value: str) -> int:
    port = int(value)
    if not 0 < port <= 65535:
        raise argparse.ArgumentTypeError("a port is between 1 and 65535")
    return port


def _worker(settings: Settings, args: argparse.Namespace) -> int:
    import signal

    import anyio

    from ..app import Gateway
    from ..observe.exposition import prepare_multiprocess_dir, serve_worker_metrics
    from ..observe.logs import configure_logging

    configure_logging(settings)
    prepare_multiprocess_dir(empty=False)  # shared with other processes: never emptied here
    gateway = Gateway.build(settings)
    metrics = serve_worker_metrics(settings.host, settings.worker_metrics_port)

    async def run() -> None:
        """Work until SIGTERM or SIGINT, then drain: running tasks get the grace period to
        finish, and whatever is still held is handed back to the other workers."""
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(gateway.worker.run)
            with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
                async for received in signals:
                    log.info("worker got %s: draining for up to %.0f s",
                             signal.Signals(received).name, settings.shutdown_grace)
                    break
            await gateway.worker.drain(settings.shutdown_grace)
            tasks.cancel_scope.cancel()

    try:
        anyio.run(run)
    finally:
        if metrics is not None:
            metrics.shutdown()
            metrics.server_close()
        gateway.close()
    return 0


def _migrate(settings: Settings, args: argparse.Namespace) -> int:
    from ..persistence.database import migrate

    migrate(settings.effective_database_url, args.revision)
    print(f"database at revision {args.revision}")
    return 0


def _settings(settings: Settings, args: argparse.Namespace) -> int:
    if args.markdown:
        print("| variable | default | meaning |\n|---|---|---|")
    for name, default, help_text in describe():
        if args.markdown:
            print(f"| `{name}` | {f'`{default}`' if default else ''} | {help_text} |")
        else:
            print(f"{name}={default}\n    {help_text}")
    return 0


def emit(data: Any) -> None:
    print(json.dumps(data, indent=2))


if __name__ == "__main__":
    raise SystemExit(main())

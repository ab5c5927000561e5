"""Run the emulator on its own: ``python -m tests.emulators.google [--port N]``; prints its
base URL and serves until interrupted (drive it through ``/_emulator/...``)."""

from __future__ import annotations

import argparse
import contextlib
import threading

from .emulator import GoogleEmulator


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--auto-create-users", action="store_true")
    args = parser.parse_args()
    with GoogleEmulator.running(port=args.port,
                                auto_create_users=args.auto_create_users) as emu:
        print(emu.base_url, flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()


if __name__ == "__main__":
    main()

"""Public identifiers: a prefix and 120 random bits in lower-case base32 (e.g. ``acc_…``)."""

from __future__ import annotations

import base64
import os


def new_id(prefix: str) -> str:
    return prefix + base64.b32encode(os.urandom(15)).decode("ascii").lower()

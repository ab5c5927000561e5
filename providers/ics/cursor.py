"""The ICS sync cursor: the feed's validators, a digest of what was last listed, and the
window that listing covered.

A feed has no change log, so "nothing changed" means: the server answered 304 to the
validators, or sent a body with the same digest, *and* the caller's window lies inside the
one last expanded. A window that moved on (a rolling sync window) can bring instances of
an unchanged series into view, so it is answered with a fresh full listing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from ..errors import CursorExpired
from ..model import SyncCursor, TimeWindow
from .client import Validators

_VERSION = 1


@dataclass(frozen=True, slots=True)
class FeedCursor:
    validators: Validators
    digest: str
    window: TimeWindow

    def covers(self, window: TimeWindow) -> bool:
        return self.window.start <= window.start and window.end <= self.window.end

    def encode(self) -> SyncCursor:
        return SyncCursor(json.dumps({
            "v": _VERSION, "etag": self.validators.etag,
            "last_modified": self.validators.last_modified, "sha256": self.digest,
            "window": [self.window.start.isoformat(), self.window.end.isoformat()],
        }, separators=(",", ":")))

    @classmethod
    def decode(cls, cursor: SyncCursor) -> FeedCursor:
        """Raises CursorExpired for anything this version did not write."""
        try:
            data = json.loads(cursor.value)
            if data["v"] != _VERSION:
                raise ValueError("another cursor version")
            start, end = (datetime.fromisoformat(w) for w in data["window"])
            return cls(Validators(_opt(data["etag"]), _opt(data["last_modified"])),
                       str(data["sha256"]), TimeWindow(start, end))
        except (ValueError, TypeError, KeyError) as exc:
            raise CursorExpired(f"not an ICS feed cursor: {exc}") from None


def _opt(value: object) -> str | None:
    return None if value is None else str(value)

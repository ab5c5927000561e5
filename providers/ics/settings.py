"""The ICS feed provider's typed settings and how a feed is linked (a URL on the consent
screen). Light on purpose: the registry imports this module without the feed client."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Self

from ..errors import InvalidInput
from ..plugin import FormField, FormLinking

DEFAULT_MAX_BYTES = 10 * 1024 * 1024
DEFAULT_MAX_INSTANCES = 50_000


@dataclass(frozen=True, slots=True)
class IcsSettings:
    """Limits on one feed: its size in bytes and the instances one expansion may produce."""

    max_bytes: int = DEFAULT_MAX_BYTES
    max_instances: int = DEFAULT_MAX_INSTANCES

    @classmethod
    def from_values(cls, values: Mapping[str, str]) -> Self:
        default = cls()
        return cls(max_bytes=_positive(values, "max_bytes", default.max_bytes),
                   max_instances=_positive(values, "max_instances", default.max_instances))


def _positive(values: Mapping[str, str], key: str, default: int) -> int:
    raw = values.get(key)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InvalidInput(f"option {key} must be a whole number, not {raw!r}") from None
    if value <= 0:
        raise InvalidInput(f"option {key} must be positive")
    return value


def _credentials(values: Mapping[str, str]) -> dict[str, str]:
    return {"url": values["url"].strip()}


LINKING = FormLinking((
    FormField("url", "Feed address", "url",
              help="An https:// or webcal:// address. The app can only read it."),),
    _credentials)

"""Logging for every Calgate process: one JSON object per line (or plain text), each with
the id of the HTTP request it belongs to, and scrubbed of anything that looks like a
credential.

``calgate serve`` hands :func:`logging_config` to uvicorn, which applies it in every
worker process it starts; ``calgate worker`` calls :func:`configure_logging`. A JSON line::

    {"time": "2025-05-01T09:30:00.123Z", "level": "info", "logger": "calgate.access",
     "message": "GET /v1/events 200", "request_id": "5f0c…", "method": "GET",
     "route": "/v1/events", "status": 200, "duration_ms": 3.1}

Calgate's own code never logs a token, code, password or event text; :class:`RedactFilter`
is defence in depth against a library, or a future change, that would.
"""

from __future__ import annotations

import json
import logging
import logging.config
import re
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from providers.registry import entries

from ..settings import Settings

# Set by the HTTP middleware for the request being served (each request runs in a task of
# its own, and anyio copies the context into worker threads), None elsewhere.
request_id: ContextVar[str | None] = ContextVar("calgate_request_id", default=None)

REDACTED = "[redacted]"
_NAMES = ("access_token|refresh_token|id_token|code|code_verifier|client_secret|"
          "secret|password|token|secret_id")
_TRIGGER = re.compile(r"(?i)authorization|bearer|token|code|secret|password")
_RULES: tuple[tuple[re.Pattern[str], str], ...] = (
    # An Authorization header: "Authorization: Basic …", a dict's or a header tuple's repr.
    (re.compile(r"(?i)(\bauthorization['\"]?\s*[:=,]\s*(?:b?['\"])?)(?:[a-z][a-z0-9-]*\s+)?"
                r"[^\s'\",;}]+"), rf"\1{REDACTED}"),
    # A bearer token anywhere else.
    (re.compile(r"(?i)\b(bearer)\s+[a-z0-9\-._~+/]+=*"), rf"\1 {REDACTED}"),
    # name=value in a query string or a form body.
    (re.compile(rf"(?i)(?<![a-z0-9_])((?:{_NAMES})=)[^&\s'\",;]+"), rf"\1{REDACTED}"),
    # "name": "value" in JSON or a dict's repr.
    (re.compile(rf"(?i)(['\"](?:{_NAMES})['\"]\s*:\s*(?:b?['\"]))[^'\"]+"), rf"\1{REDACTED}"),
    # password: value, as prose or YAML would put it.
    (re.compile(r"(?i)\b((?:password|client_secret)\s*:\s*)(?!['\"])[^\s,;]+"),
     rf"\1{REDACTED}"),
)
# Libraries whose debug and info lines carry request URLs, headers, bodies or SQL
# parameters: warnings only, whatever CALGATE_LOG_LEVEL says.
# Providers' own libraries come from their registry entries.
_LIBRARIES = ("sqlalchemy", "httpx", "httpcore", "urllib3", "niquests", "hpack",
              *dict.fromkeys(name for entry in entries() for name in entry.loggers),
              "hvac", "authlib", "multipart", "python_multipart", "taskiq", "asyncio",
              "alembic.runtime.plugins")
_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING,
           "error": logging.ERROR}


def redact(text: str) -> str:
    """``text`` with credential-looking values replaced by ``[redacted]``."""
    if not _TRIGGER.search(text):
        return text
    for pattern, replacement in _RULES:
        text = pattern.sub(replacement, text)
    return text


class RequestIdFilter(logging.Filter):
    """Stamps each record with the current request id (None outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = request_id.get()
        return True


class RedactFilter(logging.Filter):
    """Formats the message once and scrubs it, so neither the message nor its arguments
    can carry a credential to any handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: keep what there is, scrubbed
            message = f"{record.msg} {record.args}"
        record.msg, record.args = redact(message), None
        return True


_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message", "asctime", "request_id", "request", "color_message", "taskName"}


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, request_id, then the
    record's extra fields, and ``exception`` with the traceback when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(
                timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname.lower(), "logger": record.name,
            "message": record.getMessage(), "request_id": getattr(record, "request_id", None)}
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                line.setdefault(key, redact(value) if isinstance(value, str) else value)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            line["stack"] = redact(self.formatStack(record.stack_info))
        return json.dumps(line, default=str, ensure_ascii=False)

    def formatException(self, ei: Any) -> str:
        return redact(super().formatException(ei))


class TextFormatter(logging.Formatter):
    """``time LEVEL logger [request id] message``, for a terminal."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s [%(request)s] %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        record.request = getattr(record, "request_id", None) or "-"
        return super().format(record)

    def formatException(self, ei: Any) -> str:
        return redact(super().formatException(ei))


def logging_config(settings: Settings) -> dict[str, Any]:
    """The ``logging.config.dictConfig`` schema for ``settings`` (also uvicorn's log_config):
    one handler on stderr; uvicorn's loggers go through it, its access log is off."""
    level = _LEVELS[settings.log_level.lower()]
    formatter = JsonFormatter if settings.log_format == "json" else TextFormatter
    quiet = logging.getLevelName(max(level, logging.WARNING))
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": f"{__name__}.RequestIdFilter"},
                    "redact": {"()": f"{__name__}.RedactFilter"}},
        "formatters": {"calgate": {"()": f"{__name__}.{formatter.__name__}"}},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "stream": "ext://sys.stderr",
                                "formatter": "calgate", "filters": ["request_id", "redact"]}},
        "root": {"level": logging.getLevelName(level), "handlers": ["stderr"]},
        "loggers": {
            "uvicorn": {"level": logging.getLevelName(level), "handlers": [],
                        "propagate": True},
            "uvicorn.error": {"level": logging.getLevelName(level), "handlers": [],
                              "propagate": True},
            # Its lines carry the raw path and query (ids, an upstream's ?code=…): the
            # middleware logs each request instead, by its route template.
            "uvicorn.access": {"level": "WARNING", "handlers": [], "propagate": False},
            **{name: {"level": quiet} for name in _LIBRARIES},
        },
    }


def configure_logging(settings: Settings) -> None:
    """Apply :func:`logging_config` to this process; Python warnings become log lines."""
    logging.config.dictConfig(logging_config(settings))
    logging.captureWarnings(True)


__all__ = ["JsonFormatter", "RedactFilter", "RequestIdFilter", "TextFormatter",
           "configure_logging", "logging_config", "redact", "request_id"]

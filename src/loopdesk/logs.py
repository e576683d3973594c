"""Structured logs: JSON lines on standard error (standard output is for results).

Every line, loopdesk's own (structlog) and the libraries' (uvicorn, SQLAlchemy, httpx
through stdlib `logging`), passes the same redaction before it is written:

- configured secrets (every `SecretStr` setting: Loop and Order Tracking tokens, webhook
  secrets, the env API key...) become `[redacted]` wherever they appear;
- loopdesk API keys (`ld_...`), bearer credentials and passwords in URLs likewise;
- SQL parameters in database errors (`[parameters: ...]`: customer emails, webhook
  bodies) are dropped; the statement, which holds only placeholders, stays;
- customer emails are masked (`j***@example.com`), also percent-encoded in URLs;
- values under keys such as `body`, `payload`, `headers` are never written.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable, Mapping
from typing import Any

import structlog
from pydantic import SecretStr
from structlog.typing import EventDict, Processor, WrappedLogger

from loopdesk.loop.redact import redact_text

REDACTED = "[redacted]"
# Values under these keys are request/response content: never logged.
SENSITIVE_KEYS = frozenset(
    {
        "body",
        "raw_body",
        "payload",
        "params",
        "parameters",
        "headers",
        "authorization",
        "cookie",
        "token",
        "secret",
        "password",
        "api_key",
    }
)
# Shorter values would make scrubbing mangle ordinary words (test doubles, "x").
MIN_SECRET_LENGTH = 8
_SQL_PARAMETERS = re.compile(r"\[parameters: [^\n]*")
_API_KEY = re.compile(r"\bld_[A-Za-z0-9_\-]{8,}")
_BEARER = re.compile(r"(?i)\b(bearer\s+)[^\s\"',;]+")
_URL_PASSWORD = re.compile(r"(\b[a-z][a-z0-9+.\-]*://[^:/\s@]*:)[^@\s/]+@", re.IGNORECASE)
# Libraries whose INFO lines say nothing an operator needs (one per request or start-up).
_NOISY = {
    name: logging.WARNING for name in ("httpx", "httpcore", "sqlalchemy", "alembic", "aiosqlite")
}

_secrets: tuple[str, ...] = ()


def secret_values(settings: Any) -> list[str]:
    """Every `SecretStr` value of a settings object (also inside tuples and lists)."""
    found: list[str] = []
    for name in type(settings).model_fields:
        value = getattr(settings, name, None)
        items = value if isinstance(value, tuple | list) else [value]
        found += [v.get_secret_value() for v in items if isinstance(v, SecretStr)]
    return found


def redact(text: str) -> str:
    """One string as it may be logged."""
    for secret in _secrets:
        text = text.replace(secret, REDACTED)
    text = _SQL_PARAMETERS.sub(f"[parameters: {REDACTED}]", text)
    text = _API_KEY.sub(f"ld_{REDACTED}", text)
    text = _BEARER.sub(lambda m: m.group(1) + REDACTED, text)
    text = _URL_PASSWORD.sub(lambda m: m.group(1) + REDACTED + "@", text)
    return redact_text(text)


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, bytes | bytearray):
        return f"<{len(value)} bytes>"
    if isinstance(value, Mapping):
        return {
            k: REDACTED if str(k).lower() in SENSITIVE_KEYS else _clean(v) for k, v in value.items()
        }
    if isinstance(value, list | tuple | set):
        return [_clean(v) for v in value]
    if value is None or isinstance(value, bool | int | float):
        return value
    return redact(str(value))


def redact_event(_: WrappedLogger, __: str, event: EventDict) -> EventDict:
    """structlog processor: the event dict with every value redacted (see module doc)."""
    cleaned: EventDict = {}
    for key, value in event.items():
        if key.startswith("_"):  # structlog's own bookkeeping (`_record`...)
            cleaned[key] = value
        elif key.lower() in SENSITIVE_KEYS:
            cleaned[key] = REDACTED
        else:
            cleaned[key] = _clean(value)
    return cleaned


def _final_pass(_: WrappedLogger, __: str, rendered: Any) -> Any:
    """Secrets once more over the rendered line (a renderer may have added text)."""
    if not isinstance(rendered, str):
        return rendered
    line = rendered
    for secret in _secrets:
        line = line.replace(secret, REDACTED)
    return line


def _chain(json_lines: bool) -> list[Processor]:
    renderer: Processor = (
        structlog.processors.JSONRenderer()
        if json_lines
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    return [structlog.processors.format_exc_info, redact_event, renderer, _final_pass]


class RedactingFormatter(structlog.stdlib.ProcessorFormatter):
    """Formats stdlib records (uvicorn, SQLAlchemy...) as loopdesk's redacted JSON lines."""

    def __init__(self, json_lines: bool = True) -> None:
        super().__init__(
            foreign_pre_chain=[
                structlog.stdlib.add_log_level,
                structlog.stdlib.add_logger_name,
                structlog.processors.TimeStamper(fmt="iso", utc=True),
            ],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                *_chain(json_lines),
            ],
        )


class RedactingHandler(logging.Handler):
    """The one handler loopdesk puts on the root logger (found again by its class).

    It writes to whatever `sys.stderr` is at the time, not the one it was made with.
    """

    def __init__(self, json_lines: bool = True, level: int = logging.NOTSET) -> None:
        super().__init__(level)
        self.setFormatter(RedactingFormatter(json_lines))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(self.format(record) + "\n")
            sys.stderr.flush()
        except Exception:
            self.handleError(record)


def logging_config(level: str = "INFO") -> dict[str, Any]:
    """A `logging.config.dictConfig` for uvicorn (`log_config=`): it applies it in every
    worker process, so the libraries' lines are redacted there too."""
    numeric = _level(level)
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "handlers": {"loopdesk": {"()": RedactingHandler}},
        "root": {"handlers": ["loopdesk"], "level": numeric},
        "loggers": {
            **{name: {"handlers": [], "propagate": True} for name in _UVICORN},
            **{name: {"level": lvl} for name, lvl in _NOISY.items()},
        },
    }


_UVICORN = ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi")


def configure_logging(
    level: str = "INFO", *, json_lines: bool = True, secrets: Iterable[str] = ()
) -> None:
    """Configure structlog and the root logger; `secrets` are scrubbed from every line."""
    global _secrets
    known = {s for s in (*_secrets, *secrets) if s and len(s) >= MIN_SECRET_LENGTH}
    # Longest first: a secret containing another is replaced whole.
    _secrets = tuple(sorted(known, key=len, reverse=True))
    numeric = _level(level)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            *_chain(json_lines),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, RedactingHandler)]:
        root.removeHandler(handler)
    root.addHandler(RedactingHandler(json_lines, numeric))
    # Lowered when asked, never raised: other handlers (a test's) keep what they see.
    root.setLevel(min(root.getEffectiveLevel(), numeric))
    for name in _UVICORN:  # uvicorn's own handlers would write unredacted lines
        logger = logging.getLogger(name)
        logger.handlers = []
        logger.propagate = True
    for name, lvl in _NOISY.items():
        logging.getLogger(name).setLevel(max(lvl, numeric))


def _level(level: str) -> int:
    return logging.getLevelNamesMapping().get(level.upper(), logging.INFO)

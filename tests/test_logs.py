"""Log redaction, in-process: loopdesk's structlog lines and the libraries' stdlib lines."""

from __future__ import annotations

import json
import logging

import pytest
import structlog

from loopdesk.logs import configure_logging, logging_config, redact, secret_values
from loopdesk.settings import Settings

TOKEN = "loop-token-Xy12Zw34"
SQL_ERROR = (
    "(sqlite3.OperationalError) no such table: webhook_events\n"
    "[SQL: INSERT INTO webhook_events (dedupe_key, body) VALUES (?, ?)]\n"
    "[parameters: ('abc', b'{\"customer\":\"jane.doe@example.com\"}')]\n"
    "(Background on this error at: https://sqlalche.me/e/20/e3q8)"
)


def _lines(err: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in err.splitlines() if line.startswith("{")]


@pytest.fixture(autouse=True)
def _restore_stdlib_logging() -> object:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers, root.level = handlers, level


def test_redact_rules() -> None:
    configure_logging("INFO", secrets=[TOKEN, "short"])
    text = redact(
        f"{SQL_ERROR} token={TOKEN} Authorization: Bearer abc.def key ld_AbCdEf0123456789xyz "
        "url=postgresql+asyncpg://app:hunter2pass@db.internal/prod "
        "GET /v1/customers/lookup?email=jane%40example.com&email=Bob.Roe@Example.org"
    )
    assert TOKEN not in text and "jane" not in text and "Bob.Roe" not in text
    assert "[parameters: [redacted]]" in text and "[SQL: INSERT INTO webhook_events" in text
    assert "Bearer [redacted]" in text and "ld_[redacted]" in text
    assert "app:[redacted]@db.internal" in text and "hunter2pass" not in text
    assert "j***%40example.com" in text and "B***@Example.org" in text
    assert "short" in redact("short")  # too short to scrub without mangling words


def test_structlog_lines_are_redacted(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("INFO", secrets=[TOKEN])
    log = structlog.get_logger("t")
    log.warning("webhook.stored", body=b'{"customer": "a@b.co"}', payload={"x": 1}, note=TOKEN)
    try:
        raise RuntimeError(SQL_ERROR)
    except RuntimeError:
        log.exception("http.unhandled_error", context={"email": "jane.doe@example.com"})
    err = capsys.readouterr().err
    assert TOKEN not in err and "jane.doe@" not in err and "a@b.co" not in err
    first, second = _lines(err)
    assert first["body"] == "[redacted]" and first["payload"] == "[redacted]"
    assert first["note"] == "[redacted]"
    assert "[parameters: [redacted]]" in str(second["exception"])
    assert second["context"] == {"email": "j***@example.com"}


def test_stdlib_lines_are_redacted_json(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("INFO", secrets=[TOKEN])
    try:
        raise ValueError(SQL_ERROR)
    except ValueError as exc:
        logging.getLogger("uvicorn.error").error("Exception in ASGI application", exc_info=exc)
    logging.getLogger("sqlalchemy.engine").warning("params %s", "jane.doe@example.com")
    logging.getLogger("uvicorn.access").warning('GET /x?token=%s "Bearer %s"', TOKEN, TOKEN)
    err = capsys.readouterr().err
    lines = _lines(err)
    assert len(lines) == 3, err
    assert lines[0]["logger"] == "uvicorn.error"
    assert "[parameters: [redacted]]" in str(lines[0]["exception"])
    assert lines[1]["event"] == "params j***@example.com"
    assert TOKEN not in err and "jane.doe@" not in err


def test_one_handler_however_often_configured() -> None:
    for _ in range(3):
        configure_logging("ERROR")
    from loopdesk.logs import RedactingHandler

    ours = [h for h in logging.getLogger().handlers if isinstance(h, RedactingHandler)]
    assert len(ours) == 1


def test_uvicorn_config_routes_through_our_handler() -> None:
    config = logging_config("warning")
    assert config["root"]["handlers"] == ["loopdesk"]
    assert config["loggers"]["uvicorn.error"] == {"handlers": [], "propagate": True}


def test_every_secret_setting_is_scrubbed() -> None:
    settings = Settings(
        loop_api_token="tok-1234567890",
        order_tracking_token="ot-1234567890",
        loop_webhook_secret="whsec-a-123456,whsec-b-123456",
        api_key="env-key-123456",
    )
    assert set(secret_values(settings)) >= {
        "tok-1234567890",
        "ot-1234567890",
        "whsec-a-123456",
        "whsec-b-123456",
        "env-key-123456",
    }

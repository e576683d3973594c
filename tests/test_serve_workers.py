"""`serve --workers N` divides Loop's per-key budget among its workers, never multiplies it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import uvicorn
from typer.testing import CliRunner

from loopdesk.cli.main import app
from loopdesk.loop.limits import PROCESSES_ENV
from loopdesk.settings import Settings

runner = CliRunner()


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[dict[str, Any]]:
    """`serve` up to the point where uvicorn would start its workers."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LOOPDESK_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path}/db.sqlite")
    monkeypatch.setenv("LOOPDESK_API_KEY", "serve-workers-key-0123456789")
    monkeypatch.delenv("LOOPDESK_REDIS_URL", raising=False)
    monkeypatch.setenv(PROCESSES_ENV, "1")  # restored after the test, whatever serve sets
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(uvicorn, "run", lambda *args, **kwargs: calls.append(kwargs))
    return calls


def test_workers_get_their_share_of_the_budget(started: list[dict[str, Any]]) -> None:
    result = runner.invoke(app, ["serve", "--workers", "4"])
    assert result.exit_code == 0, result.output
    assert started[0]["workers"] == 4
    # What each worker reads from the environment it inherits.
    worker = Settings()
    assert worker.loop_rate_limit_processes == 4
    assert worker.loop_rate_limit_per_minute // worker.loop_rate_limit_processes == 75


def test_more_workers_than_the_budget_is_refused(
    started: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOOPDESK_LOOP_RATE_LIMIT_PER_MINUTE", "3")
    result = runner.invoke(app, ["serve", "--workers", "4"])
    assert result.exit_code == 1
    assert "LOOPDESK_REDIS_URL" in result.output
    assert started == []

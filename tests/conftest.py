from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import stamina
import structlog

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
CONFORMANCE = SHARED / "conformance" / "gladly-app-platform"


def require_shared() -> Path:
    """The read-only shared folder beside the repo, or a clear skip where it is absent."""
    if not CONFORMANCE.is_dir():
        pytest.skip(f"../shared is absent ({SHARED}): conformance data not available here")
    return SHARED


@pytest.fixture(autouse=True)
def _reset_logging() -> Iterator[None]:
    """Commands configure structlog for the process; each test starts from defaults."""
    yield
    structlog.reset_defaults()


@pytest.fixture
def instant_retries() -> Iterator[None]:
    """Retries without waits (3 attempts), for tests about what is retried, not when."""
    stamina.set_testing(True, attempts=3)
    yield
    stamina.set_testing(False)

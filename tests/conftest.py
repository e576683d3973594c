from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import respx.mocks
import stamina
import structlog

pytest_plugins = ["tests.reports"]

# Upstream requests go through aiohttp (`loop/transport.py`), which respx's default
# mocker (patching httpcore's pool) never sees; its `httpx` mocker wraps whatever
# transport an `httpx.AsyncClient` has, so every respx test mocks the real path.
respx.mocks.DEFAULT_MOCKER = "httpx"

REPO = Path(__file__).resolve().parents[1]
# Fixtures copied into the repository (tests/conformance/README.md names the source),
# so a fresh clone runs every conformance test with nothing beside it.
CONFORMANCE_DATA = REPO / "tests" / "conformance"
CONFORMANCE = CONFORMANCE_DATA / "gladly-app-platform"
CONTRACT_EXAMPLE = CONFORMANCE_DATA / "contracts" / "sandbox-data.example.json"


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

"""Schemathesis over the service's own OpenAPI schema: no 5xx, no response that breaks
the declared response models (successes and errors alike), no stack trace in a body,
whatever the inputs (run against a real server on loopback)."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from bench.server import free_port, wait_until_up

from tests.conftest import REPO
from tests.reports import Report
from tests.test_store import PG_SKIP, PgServer

KEY = "fuzz-api-key-0123456789"
# The audit filters (NUL bytes, ids past PostgreSQL's integer column) are validated by
# the audit route's own change (issue 8, requirement 1); until it is in, PostgreSQL
# answers them with a 500, so that one operation is fuzzed on SQLite only.
EXCLUDED: dict[str, list[str]] = {}
EXAMPLES = os.environ.get("LOOPDESK_FUZZ_EXAMPLES", "50")  # per operation, fuzzing phase
CHECKS = "not_a_server_error,response_schema_conformance,content_type_conformance,no_stack_trace"


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def service_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, str]]:
    tmp: Path = tmp_path_factory.mktemp("fuzz")
    pg = PgServer()
    if request.param == "sqlite":
        database_url = f"sqlite+aiosqlite:///{tmp}/fuzz.db"
    else:
        try:
            database_url = asyncio.run(pg.create_database())
        except Exception:
            pytest.skip(PG_SKIP)
    port = free_port()
    env = {
        **os.environ,
        "LOOPDESK_API_KEY": KEY,
        "LOOPDESK_DATABASE_URL": database_url,
        "LOOPDESK_LOG_LEVEL": "ERROR",
        "LOOPDESK_SANDBOX_RATE_LIMIT_PER_MINUTE": "0",
        "LOOPDESK_LOOP_RATE_LIMIT_PER_MINUTE": "100000",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "loopdesk", "serve", "--port", str(port)],
        env=env,
        cwd=tmp,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(f"{url}/healthz", proc)
        yield url, request.param
    finally:
        proc.terminate()
        proc.wait(timeout=15)
        if pg.created:
            asyncio.run(pg.drop_all())


def _count(pattern: str, text: str) -> int:
    return sum(int(n) for n in re.findall(pattern, text))


def test_every_route_declares_its_response_models() -> None:
    """What the fuzzer checks against: a model per route, errors included."""
    from loopdesk.api.app import create_app
    from loopdesk.settings import Settings

    schema = create_app(Settings(api_key=KEY)).openapi()
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            # The success: 200, or 201 where a route creates something.
            success = next(s for s in responses if s.startswith("2"))
            ok = responses[success]["content"]
            body = ok.get("application/json", ok.get("text/plain", {})).get("schema", {})
            assert body.get("$ref") or body.get("type") == "string", (method, path, body)
            for status, answer in responses.items():
                if status.startswith(("4", "5")):
                    ref = answer["content"]["application/json"]["schema"]["$ref"]
                    assert ref.endswith("/ErrorBody"), (method, path, status)
    lookup = schema["components"]["schemas"]["LoopReturn"]
    assert lookup["additionalProperties"] is False  # exactly Gladly's fields


@pytest.mark.slow
def test_no_5xx_and_no_response_breaks_the_schema(
    service_url: tuple[str, str], report: Report
) -> None:
    url, database = service_url
    cli = Path(sys.executable).with_name("schemathesis")
    env = {
        **os.environ,
        "SCHEMATHESIS_HOOKS": "tests.fuzz_hooks",
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    }
    result = subprocess.run(
        [
            str(cli),
            "run",
            f"{url}/openapi.json",
            "-H",
            f"Authorization: Bearer {KEY}",
            "-c",
            CHECKS,
            "-n",
            EXAMPLES,
            # The stateful phase walks links the schema does not declare; skipped.
            "--phases",
            "examples,coverage,fuzzing",
            "--continue-on-failure",
            "--no-color",
            *EXCLUDED.get(database, []),
        ],
        capture_output=True,
        text=True,
        timeout=400,
        env=env,
        cwd=REPO,
    )
    out = result.stdout
    cases = _count(r"(\d+) generated", out)
    server_errors = _count(r"Server error: (\d+)", out)
    schema_breaks = _count(r"Response violates schema: (\d+)", out)
    report(
        f"[fuzz] schemathesis ({database}): {cases} cases run, {server_errors} 5xx found, "
        f"{schema_breaks} responses off-schema"
    )
    assert result.returncode == 0, out[-6000:] + result.stderr[-2000:]
    assert cases > 0 and server_errors == 0 and schema_breaks == 0

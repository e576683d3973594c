"""The README's command lines run as written, against the built-in sandbox.

Each `.venv/bin/loopdesk ...` line of the README's shell blocks is run in a fresh
directory (holding the `raw.json` and `world.json` the examples name) with this
interpreter. Servers (`serve`, `sandbox`) are started, checked to answer, and stopped;
their port is swapped for a free one, since others may hold the README's.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shlex
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from bench.server import free_port, wait_until_up

from loopdesk.loop.returns import returns_list_path
from loopdesk.sandbox.app import create_sandbox_app
from loopdesk.settings import Settings
from tests.conftest import REPO
from tests.reports import Report

PROGRAM = ".venv/bin/loopdesk"
SERVERS = {"serve": "/healthz", "sandbox": "/_sandbox/health"}


def readme_commands() -> list[list[str]]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    commands = []
    for block in re.findall(r"```sh\n(.*?)```", text, flags=re.S):
        # A line ending in a backslash goes on on the next, as the shell reads it.
        for line in block.replace("\\\n", " ").splitlines():
            words = shlex.split(line, comments=True)
            if words and words[0] == PROGRAM:
                commands.append(words[1:])
    return commands


async def _raw_returns_body() -> dict[str, object]:
    """A raw `GET /api/v2/returns` body from the sandbox, as a merchant would save one."""
    sandbox = create_sandbox_app(Settings())
    since = (datetime.now(UTC) - timedelta(days=365)).date()
    path = returns_list_path("primary@email.com", since=since, limit=10)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=sandbox), base_url="http://sandbox"
    ) as client:
        response = await client.get(path, headers={"X-Authorization": "readme"})
    response.raise_for_status()
    body: dict[str, object] = response.json()
    return body


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    here = tmp_path_factory.mktemp("readme")
    raw = asyncio.run(_raw_returns_body())
    assert raw["data"], "the sandbox has returns for the demo customer"
    (here / "raw.json").write_text(json.dumps(raw))
    (here / "world.json").write_text(json.dumps({"returns": raw["data"]}))
    # A merchant's rules file, as the README's `rules check` names it: the shipped one.
    shipped = REPO / "src" / "loopdesk" / "routing" / "default_rules.toml"
    (here / "rules.toml").write_text(shipped.read_text(encoding="utf-8"))
    return here


@pytest.fixture(scope="module")
def env() -> dict[str, str]:
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("LOOPDESK_") or k == "LOOPDESK_LOG_LEVEL"
    }
    return {
        **clean,
        "LOOPDESK_API_KEY": "readme-api-key-0123456789",  # `serve` then mints none
        "LOOPDESK_SANDBOX_RATE_LIMIT_PER_MINUTE": "0",
        "PYTHONPATH": os.pathsep.join([str(REPO / "src"), str(REPO)]),
    }


def test_the_readme_has_examples() -> None:
    commands = readme_commands()
    assert len(commands) >= 10
    assert ["return-link", "#1086", "43215"] in commands


@pytest.mark.slow
@pytest.mark.parametrize("args", readme_commands(), ids=lambda a: " ".join(a)[:50])
def test_readme_command_runs_as_written(
    args: list[str], workdir: Path, env: dict[str, str], report: Report
) -> None:
    command = [sys.executable, "-m", "loopdesk", *args]
    if args[0] in SERVERS:
        _run_server(command, workdir, env, SERVERS[args[0]])
    else:
        # `chat` reads the customer's messages on standard input; nothing else reads it.
        said = "where is my return?\nTalk to an agent\n" if args[0] == "chat" else ""
        result = subprocess.run(
            command, cwd=workdir, env=env, capture_output=True, text=True, timeout=120, input=said
        )
        assert result.returncode == 0, f"{shlex.join(args)}: {result.stderr[-2000:]}"
        assert "Traceback" not in result.stderr
        if "--json" in args or args[0] in ("normalize", "allowlist", "sync"):
            json.loads(result.stdout)
        if args[0] == "normalize":
            assert json.loads(result.stdout), "the example's file yields returns"
        if args[0] == "return-link":
            assert result.stdout.startswith("https://")
        if args[0] == "chat":
            assert result.stdout.count("guide>") == 2 and "handed over" in result.stdout
    report(f"[readme] ran: loopdesk {shlex.join(args)}")


def _run_server(command: list[str], cwd: Path, env: dict[str, str], health: str) -> None:
    port = free_port()
    if "--port" in command:
        command[command.index("--port") + 1] = str(port)
    else:
        command += ["--port", str(port)]
    proc = subprocess.Popen(command, cwd=cwd, env=env, stderr=subprocess.PIPE)
    try:
        wait_until_up(f"http://127.0.0.1:{port}{health}", proc, seconds=60)
    finally:
        proc.terminate()
        proc.wait(timeout=30)

"""Runs `loopdesk sandbox` in its own process on a free loopback port."""

from __future__ import annotations

import contextlib
import functools
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

# This checkout's `loopdesk` in every process the bench starts (an editable install may
# point at another checkout).
SRC = Path(__file__).resolve().parents[1] / "src"


def child_env(**extra: str) -> dict[str, str]:
    path = os.pathsep.join(p for p in (str(SRC), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PYTHONPATH": path, **extra}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_up(url: str, proc: subprocess.Popen[bytes], seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            stderr = proc.stderr.read().decode() if proc.stderr else ""
            raise RuntimeError(f"{url} did not come up: {stderr}")
        time.sleep(0.1)


@functools.cache  # the cores this run was given, before any pinning
def cores() -> tuple[set[int], set[int]] | None:
    """The machine's cores split as across machines: the first for the service being
    measured, the rest for the stand-ins of its callers and of Loop (this process, wrk,
    the sandbox). Otherwise the OS may run a client on the service's core in the middle
    of an answer, a cost no deployment has. None (placement left to the OS) with one
    core, or when `BENCH_PIN=0`."""
    if os.environ.get("BENCH_PIN") == "0" or not hasattr(os, "sched_setaffinity"):
        return None
    cpus = sorted(os.sched_getaffinity(0))
    return ({cpus[0]}, set(cpus[1:])) if len(cpus) > 1 else None


def wrk_threads() -> int:
    """One wrk thread per core the stand-ins run on: a second thread sharing a core
    would hold half the connections' answers unread while it waits for its turn."""
    split = cores()
    return len(split[1]) if split is not None else 2


def _pin(pid: int, cpus: set[int]) -> None:
    """Every thread of `pid` (threads made later inherit their maker's cores)."""
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(ProcessLookupError):
            os.sched_setaffinity(int(task.name), cpus)


@contextmanager
def serving(
    command: list[str],
    env: dict[str, str],
    health: str,
    *,
    cwd: Path | None = None,
    measured: bool = False,
) -> Iterator[subprocess.Popen[bytes]]:
    """`command` in its own process until the block ends, once `health` answers 200.
    `measured`: the service under measure, on its own core (`cores`)."""
    split = cores()
    if split is not None:
        _pin(os.getpid(), split[1])  # this process and what it starts: the stand-ins
    proc = subprocess.Popen(command, env=env, cwd=cwd, stderr=subprocess.PIPE)
    try:
        if split is not None and measured:
            _pin(proc.pid, split[0])
        wait_until_up(health, proc)
        if split is not None and measured:
            _pin(proc.pid, split[0])  # and the threads it started meanwhile
        yield proc
    finally:
        proc.terminate()
        proc.wait(timeout=15)


@contextmanager
def running_sandbox(data: Path, *, latency_ms: int = 0) -> Iterator[str]:
    port = free_port()
    env = child_env(
        LOOPDESK_SANDBOX_LATENCY_MS=str(latency_ms), LOOPDESK_SANDBOX_RATE_LIMIT_PER_MINUTE="0"
    )
    command = [
        sys.executable,
        "-m",
        "loopdesk",
        "sandbox",
        "--port",
        str(port),
        "--sandbox-data",
        str(data),
    ]
    base_url = f"http://127.0.0.1:{port}"
    with serving(command, env, f"{base_url}/_sandbox/health"):
        yield base_url


@contextmanager
def running_service(
    sandbox_url: str, workdir: Path, *, api_key: str, token: str
) -> Iterator[tuple[str, int]]:
    """`loopdesk serve` in its own process, talking over HTTP to the sandbox at
    `sandbox_url` as it would to Loop (both APIs), with a SQLite store in `workdir`.
    Yields its URL and process id."""
    port = free_port()
    env = child_env(
        LOOPDESK_DATABASE_URL=f"sqlite+aiosqlite:///{workdir}/cold.db",
        LOOPDESK_API_KEY=api_key,
        LOOPDESK_LOOP_API_TOKEN=token,
        LOOPDESK_LOOP_BASE_URL=sandbox_url,
        LOOPDESK_ORDER_TRACKING_TOKEN=token,
        LOOPDESK_ORDER_TRACKING_BASE_URL=sandbox_url,
        # The client-side limit (300/min) would dominate a tight benchmark loop; what
        # is measured is how the requests are scheduled, so it is lifted for this run.
        LOOPDESK_LOOP_RATE_LIMIT_PER_MINUTE="1000000",
        LOOPDESK_LOG_LEVEL="ERROR",
    )
    command = [sys.executable, "-m", "loopdesk", "serve", "--port", str(port)]
    url = f"http://127.0.0.1:{port}"
    with serving(command, env, f"{url}/healthz", cwd=workdir, measured=True) as proc:
        yield url, proc.pid

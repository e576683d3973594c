"""Warm lookups, webhook ingestion and memory of the running service, each measured
against its own baseline in the same run. Load always comes from another process."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from bench.server import free_port, wait_until_up
from loopdesk.domain.webhooks import signature

KEY = "bench-api-key-0123456789"
SECRET = "bench-webhook-secret"
LOOKUP = "/v1/customers/lookup?email=primary@email.com&email=secondary@email.com"


@contextmanager
def uvicorn_app(target: str, env: dict[str, str], cwd: Path) -> Iterator[tuple[str, int]]:
    """`target` served by uvicorn alone (one process, same options for every app)."""
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        target,
        "--port",
        str(port),
        "--log-level",
        "warning",
        "--no-access-log",
    ]
    repo = str(Path(__file__).resolve().parents[1])  # `bench` importable from `cwd`
    full_env = {**os.environ, "PYTHONPATH": repo, **env}
    proc = subprocess.Popen(command, env=full_env, cwd=cwd, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(f"{url}/healthz", proc)
        yield url, proc.pid
    finally:
        proc.terminate()
        proc.wait(timeout=15)


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def load(url: str, clients: int, seconds: float) -> dict[str, Any]:
    """wrk when installed (a C load generator: the server is what gets measured), else
    the Python generator in `bench.load` (slower; it can become the bottleneck)."""
    if shutil.which("wrk"):
        return _wrk(url, clients, seconds)
    out = subprocess.run(
        [sys.executable, "-m", "bench.load", url, KEY, str(clients), str(seconds)],
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + 60,
    )
    result: dict[str, Any] = json.loads(out.stdout)
    return result


def _wrk(url: str, clients: int, seconds: float) -> dict[str, Any]:
    out = subprocess.run(
        [
            "wrk",
            "-t2",
            f"-c{clients}",
            f"-d{max(1, int(seconds))}s",
            "--latency",
            "-H",
            f"Authorization: Bearer {KEY}",
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + 60,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out)[1])  # type: ignore[index]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "tool": "wrk",
        "rps": round(rps, 1),
        "p50_ms": _wrk_ms(out, "50%"),
        "p99_ms": _wrk_ms(out, "99%"),
        "errors": int(errors[1]) if errors else 0,
    }


def _wrk_ms(out: str, percentile: str) -> float:
    match = re.search(rf"{percentile}\s+([\d.]+)(us|ms|s)", out)
    if match is None:
        return 0.0
    value, unit = float(match[1]), match[2]
    return round(value / 1000 if unit == "us" else value * 1000 if unit == "s" else value, 2)


def service_env(database_url: str) -> dict[str, str]:
    return {
        "LOOPDESK_DATABASE_URL": database_url,
        "LOOPDESK_API_KEY": KEY,
        "LOOPDESK_LOOP_WEBHOOK_SECRET": SECRET,
        "LOOPDESK_LOOKUP_TTL_S": "3600",
        "LOOPDESK_LOG_LEVEL": "ERROR",
        "LOOPDESK_SANDBOX_RATE_LIMIT_PER_MINUTE": "0",
    }


def warm_lookup(tmp: Path, clients: int, seconds: float) -> dict[str, Any]:
    env = service_env(f"sqlite+aiosqlite:///{tmp}/warm.db")
    with uvicorn_app("loopdesk.api.app:create_app", env, tmp) as (url, pid):
        primed = httpx.get(url + LOOKUP, headers={"Authorization": f"Bearer {KEY}"}, timeout=30)
        body = primed.json()
        assert primed.status_code == 200 and body["returns"], primed.text
        again = httpx.get(url + LOOKUP, headers={"Authorization": f"Bearer {KEY}"}).json()
        assert again["meta"]["source"] == "store"
        served = load(url + LOOKUP, clients, seconds)
        rss = peak_rss_mb(pid)
    bare_json = tmp / "bare.json"
    bare_json.write_text(json.dumps(again))
    with uvicorn_app("bench.bare_app:create_app", {"BENCH_BARE_JSON": str(bare_json)}, tmp) as (
        url,
        _,
    ):
        bare = load(url + LOOKUP, clients, seconds)
    return {
        "warm_lookup_rps_ratio_to_bare": round(served["rps"] / bare["rps"], 3),
        "warm_lookup_p99_ms": served["p99_ms"],
        "warm_lookup_p99_ratio_to_bare": round(served["p99_ms"] / bare["p99_ms"], 2)
        if bare["p99_ms"]
        else None,
        "warm_lookup": served,
        "bare_endpoint": bare,
        "peak_rss_mb": rss,
    }


def _event(n: int) -> bytes:
    payload = {
        "topic": "return",
        "trigger": "return.updated",
        "shop_id": 1,
        "id": str(70000000 + n),
        "state": "open",
        "created_at": "2026-11-01T00:00:00+00:00",
        "updated_at": f"2026-11-02T00:00:{n % 60:02d}+00:00",
        "customer": f"c{n}@example.com",
        "order_name": f"#{n}",
        "return_total": "10.00",
        "line_items": [],
        "exchanges": [],
    }
    return json.dumps(payload, separators=(",", ":")).encode()


async def _post_events(url: str, count: int, concurrency: int) -> float:
    bodies = [_event(n) for n in range(count)]
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)
    async with httpx.AsyncClient(timeout=30) as client:

        async def worker() -> None:
            while not queue.empty():
                body = queue.get_nowait()
                response = await client.post(
                    url, content=body, headers={"X-Loop-Signature": signature(body, SECRET)}
                )
                assert response.status_code == 200 and response.json()["result"] == "applied"

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return count / (time.perf_counter() - started)


def webhooks(tmp: Path, database_url: str, count: int) -> float:
    with uvicorn_app("loopdesk.api.app:create_app", service_env(database_url), tmp) as (url, _):
        return round(asyncio.run(_post_events(url + "/webhooks/loop", count, 8)), 1)

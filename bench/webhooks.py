"""Signed Loop webhooks acknowledged per second, end to end, and whether the apply kept up.

A running `loopdesk serve` (sandbox mode, SQLite or PostgreSQL) gets signed
`return.updated` bodies, each a new event (new return, new customer, an exact
`updated_at`), from many concurrent clients: wrk with a Lua script cycling pre-signed
bodies when installed, else a Python load generator in its own process. Reported:
acknowledged events per second (2xx answers), errors, then how long after the load
stopped every acknowledged event was applied (none left `received`) and how many were.

    python -m bench.webhooks                      # this checkout, SQLite and PostgreSQL
    python -m bench.webhooks OLD_CHECKOUT NEW_CHECKOUT [SECONDS]   # side by side, ratios

Each checkout's own `src` serves (`PYTHONPATH`); the bench's code is this checkout's.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from bench.load import drive, wrk_ms
from bench.server import SRC, child_env, free_port, serving, wrk_threads
from loopdesk import store as db
from loopdesk.domain.webhooks import signature

SECRET = "bench-webhook-secret"
KEY = "bench-api-key-0123456789"
CLIENTS = 64
# Bodies per second of load prepared: more than any run acknowledges, so each is new.
BODIES_PER_S = 1500
CATCH_UP_S = 60.0
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"

LUA = """
local bodies, sigs = {}, {}
local counter = 0
local threads = {}
function setup(thread)
  counter = counter + 1
  thread:set("id", counter)
  table.insert(threads, thread)
end
function init(args)
  local n = 0
  for line in io.lines(args[1]) do
    local sig, body = line:match("^([^\\t]*)\\t(.*)$")
    n = n + 1
    sigs[n], bodies[n] = sig, body
  end
  step = tonumber(args[2])
  i = id
  count = n
end
function request()
  local k = ((i - 1) % count) + 1
  i = i + step
  local headers = {}
  headers["Content-Type"] = "application/json"
  headers["X-Loop-Signature"] = sigs[k]
  return wrk.format("POST", nil, headers, bodies[k])
end
"""


def event_body(n: int, run: str) -> bytes:
    payload = {
        "topic": "return",
        "trigger": "return.updated",
        "shop_id": 1,
        "id": f"{run}{n:07d}",
        "state": "open",
        "created_at": "2026-11-01T00:00:00+00:00",
        "updated_at": f"2026-11-02T00:{(n // 60) % 60:02d}:{n % 60:02d}+00:00",
        "customer": f"c{run}{n}@example.com",
        "order_name": f"#{n}",
        "return_total": "10.00",
        "line_items": [],
        "exchanges": [],
    }
    return json.dumps(payload, separators=(",", ":")).encode()


def write_bodies(path: Path, count: int, run: str) -> Path:
    with path.open("wb") as out:
        for n in range(count):
            body = event_body(n, run)
            out.write(signature(body, SECRET).encode() + b"\t" + body + b"\n")
    return path


def service_env(database_url: str, src: Path) -> dict[str, str]:
    env = {k: v for k, v in child_env().items() if not k.startswith("LOOPDESK_")}
    return {
        **env,
        "PYTHONPATH": str(src),
        "LOOPDESK_DATABASE_URL": database_url,
        "LOOPDESK_API_KEY": KEY,
        "LOOPDESK_LOOP_WEBHOOK_SECRET": SECRET,
        "LOOPDESK_LOG_LEVEL": "ERROR",
        "LOOPDESK_SANDBOX_RATE_LIMIT_PER_MINUTE": "0",
        "LOOPDESK_SANDBOX_WEBHOOKS_TO_SELF": "false",
    }


@contextmanager
def running_serve(database_url: str, src: Path, cwd: Path) -> Iterator[str]:
    """`loopdesk serve` of the checkout whose `src` this is, one process."""
    port = free_port()
    command = [sys.executable, "-m", "loopdesk", "serve", "--port", str(port)]
    url = f"http://127.0.0.1:{port}"
    env = service_env(database_url, src)
    with serving(command, env, f"{url}/healthz", cwd=cwd, measured=True):
        yield url


def load(url: str, bodies: Path, clients: int, seconds: float) -> dict[str, Any]:
    if shutil.which("wrk"):
        return _wrk(url, bodies, clients, seconds)
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.webhooks",
            "load",
            url,
            str(bodies),
            str(clients),
            str(seconds),
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + 60,
        env=child_env(),
    )
    result: dict[str, Any] = json.loads(out.stdout)
    return result


def _wrk(url: str, bodies: Path, clients: int, seconds: float) -> dict[str, Any]:
    threads = wrk_threads()
    script = bodies.with_suffix(".lua")
    script.write_text(LUA)
    out = subprocess.run(
        [
            *("wrk", f"-t{threads}", f"-c{clients}", f"-d{max(1, round(seconds))}s", "--latency"),
            *("-s", str(script), url + "/webhooks/loop", "--", str(bodies), str(threads)),
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + 60,
    ).stdout
    done = re.search(r"(\d+) requests in ([\d.]+)(ms|s|m)", out)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    requests = int(done[1]) if done else 0
    elapsed = float(done[2]) * {"ms": 0.001, "s": 1.0, "m": 60.0}[done[3]] if done else seconds
    failed = int(errors[1]) if errors else 0
    return {
        "tool": "wrk",
        "acknowledged": requests - failed,
        "errors": failed,
        "acks_per_s": round((requests - failed) / elapsed, 1),
        "p50_ms": wrk_ms(out, "50%"),
        "p99_ms": wrk_ms(out, "99%"),
    }


async def _python_load(
    url: str, lines: list[list[bytes]], clients: int, seconds: float
) -> dict[str, Any]:
    taken = 0

    async def send(client: httpx.AsyncClient, _worker: int, _turn: int) -> httpx.Response:
        nonlocal taken
        sig, body = lines[taken % len(lines)]
        taken += 1
        return await client.post(
            url + "/webhooks/loop", content=body, headers={"X-Loop-Signature": sig.decode()}
        )

    result = await drive(send, clients, seconds)
    return {
        "tool": "python",
        "acknowledged": result["requests"],
        "errors": result["errors"],
        "acks_per_s": result["rps"],
        "p50_ms": result["p50_ms"],
        "p99_ms": result["p99_ms"],
    }


async def _counts(database_url: str) -> dict[str, int]:
    store = await db.Store.open(database_url, migrate=False)
    try:
        async with store.reader() as session:
            return await db.event_counts(session)
    finally:
        await store.close()


def caught_up(
    database_url: str, acknowledged: int, timeout_s: float = CATCH_UP_S
) -> dict[str, Any]:
    """After the load: how long until no acknowledged event is left `received`."""
    started = time.perf_counter()
    while True:
        counts = asyncio.run(_counts(database_url))
        waiting = counts["received"]
        elapsed = time.perf_counter() - started
        if waiting == 0 or elapsed > timeout_s:
            break
        time.sleep(0.1)
    done = sum(n for status, n in counts.items() if status != "received")
    return {
        "apply_caught_up_s": round(elapsed, 2) if waiting == 0 else None,
        "applied": counts["applied"],
        "stored": done + waiting,
        "left_received": waiting,
        "acknowledged_all_stored": done + waiting >= acknowledged,
    }


def measure_on(
    url: str, database_url: str, workdir: Path, seconds: float, run: str
) -> dict[str, Any]:
    """Load a running service for `seconds`, then wait for its apply."""
    bodies = write_bodies(workdir / f"bodies-{run}.tsv", int(BODIES_PER_S * seconds) + 500, run)
    warm_up(url, run)
    result = load(url, bodies, CLIENTS, seconds)
    result.update(caught_up(database_url, result["acknowledged"]))
    return result


def warm_up(url: str, run: str) -> None:
    # Warm-up: the first requests (imports, connections) are not what is measured, nor
    # the guide's classifier training in a thread at start-up (a guide turn waits for it).
    turn = httpx.post(
        url + "/v1/guide/messages",
        headers={"Authorization": f"Bearer {KEY}"},
        json={
            "conversationId": f"bench-hooks-{run}",
            "channel": "chat",
            "text": "where's my return?",
            "customer": {"emails": ["warm-up@example.com"]},
        },
        timeout=120,
    )
    assert turn.status_code == 200, turn.text
    warm = event_body(10_000_000, run)
    for _ in range(3):
        httpx.post(
            url + "/webhooks/loop",
            content=warm,
            headers={"X-Loop-Signature": signature(warm, SECRET)},
            timeout=30,
        )


def measure(
    workdir: Path, database_url: str, seconds: float, *, src: Path = SRC, run: str = "9"
) -> dict[str, Any]:
    with running_serve(database_url, src, workdir) as url:
        return measure_on(url, database_url, workdir, seconds, run)


async def _pg_create(name: str) -> bool:
    import asyncpg

    try:
        admin = await asyncpg.connect(PG_ADMIN, timeout=3)
    except (OSError, asyncpg.PostgresError, TimeoutError):
        return False
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    return True


async def _pg_drop(name: str) -> None:
    import asyncpg

    admin = await asyncpg.connect(PG_ADMIN, timeout=3)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


def on_each_database(
    workdir: Path, seconds: float, *, src: Path = SRC, tag: str = "new"
) -> dict[str, Any]:
    """SQLite, then PostgreSQL when it answers (None when not)."""
    results: dict[str, Any] = {}
    sqlite = f"sqlite+aiosqlite:///{workdir}/hooks-{tag}.db"
    results["sqlite"] = measure(workdir, sqlite, seconds, src=src, run="1")
    name = f"loopdesk_bench_hooks_{tag}_{os.getpid()}"
    if not asyncio.run(_pg_create(name)):
        results["postgres"] = None
        return results
    try:
        url = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
        results["postgres"] = measure(workdir, url, seconds, src=src, run="2")
    finally:
        asyncio.run(_pg_drop(name))
    return results


def side_by_side(old: Path, new: Path, seconds: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        runs = {
            "old": on_each_database(work, seconds, src=old / "src", tag="old"),
            "new": on_each_database(work, seconds, src=new / "src", tag="new"),
        }
    ratios = {}
    for database in ("sqlite", "postgres"):
        before, after = runs["old"].get(database), runs["new"].get(database)
        if before and after and before["acks_per_s"]:
            ratios[database] = round(after["acks_per_s"] / before["acks_per_s"], 2)
    return {"seconds": seconds, "clients": CLIENTS, **runs, "ratio_new_to_old": ratios}


def main(argv: list[str]) -> int:
    if argv and argv[0] == "load":  # the Python load generator's own process
        url, bodies, clients, seconds = argv[1], Path(argv[2]), int(argv[3]), float(argv[4])
        lines = [line.split(b"\t", 1) for line in bodies.read_bytes().splitlines()]
        print(json.dumps(asyncio.run(_python_load(url, lines, clients, seconds))))
        return 0
    if len(argv) >= 2:
        seconds = float(argv[2]) if len(argv) > 2 else 10.0
        result = side_by_side(Path(argv[0]).resolve(), Path(argv[1]).resolve(), seconds)
    else:
        seconds = float(argv[0]) if argv else 10.0
        with tempfile.TemporaryDirectory() as tmp:
            result = on_each_database(Path(tmp), seconds)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

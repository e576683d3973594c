"""Warm lookups, webhook ingestion and memory of the running service, each measured
against its own baseline in the same run. Load always comes from another process."""

from __future__ import annotations

import json
import os
import re
import shutil
import statistics
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from bench.load import GUIDE_CUSTOMER, wrk_ms
from bench.server import SRC, child_env, free_port, serving, wrk_threads
from bench.webhooks import measure_on as measure_webhooks

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
    # `bench` importable from `cwd`, and this checkout's `loopdesk` first (an editable
    # install may point at another checkout).
    repo = Path(__file__).resolve().parents[1]
    full_env = {**child_env(), "PYTHONPATH": os.pathsep.join([str(SRC), str(repo)]), **env}
    url = f"http://127.0.0.1:{port}"
    with serving(command, full_env, f"{url}/healthz", cwd=cwd, measured=True) as proc:
        yield url, proc.pid


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def load(
    url: str, clients: int, seconds: float, *, guide: bool = False, json_body: Any = None
) -> dict[str, Any]:
    """wrk when installed (a C load generator: the server is what gets measured), else
    the Python generator in `bench.load` (slower; it can become the bottleneck). Guide
    turns (a new conversation per POST) always use `bench.load`; `json_body` is POSTed
    as is by either."""
    if shutil.which("wrk") and not guide:
        return _wrk(url, clients, seconds, json_body)
    mode = ["guide"] if guide else ["decide"] if json_body is not None else []
    out = subprocess.run(
        [sys.executable, "-m", "bench.load", url, KEY, str(clients), str(seconds), *mode],
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + 60,
    )
    result: dict[str, Any] = json.loads(out.stdout)
    return result


def _wrk(url: str, clients: int, seconds: float, json_body: Any = None) -> dict[str, Any]:
    script: list[str] = []
    if json_body is not None:
        lua = Path(os.environ.get("TMPDIR", "/tmp")) / f"bench-post-{os.getpid()}.lua"
        body = json.dumps(json.dumps(json_body))  # a Lua string literal of the JSON
        lua.write_text(
            f'wrk.method = "POST"\nwrk.body = {body}\n'
            'wrk.headers["Content-Type"] = "application/json"\n'
        )
        script = ["-s", str(lua)]
    out = subprocess.run(
        [
            "wrk",
            f"-t{wrk_threads()}",
            f"-c{clients}",
            f"-d{max(1, int(seconds))}s",
            "--latency",
            *script,
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
    done = re.search(r"(\d+) requests in ([\d.]+)(ms|s|m)", out)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "tool": "wrk",
        "requests": int(done[1]) if done else 0,
        "rps": round(rps, 1),
        "p50_ms": wrk_ms(out, "50%"),
        "p99_ms": wrk_ms(out, "99%"),
        "errors": int(errors[1]) if errors else 0,
    }


def side_by_side(urls: dict[str, str], clients: int, seconds: float, chunks: int) -> dict[str, Any]:
    """Each URL loaded in turn, `chunks` times, so drift on the shared machine (other
    work starting or stopping) falls on every one alike. Per URL: requests per second
    over all its chunks, the median of the chunks' p50 and p99, and each chunk."""
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in urls}
    for _ in range(chunks):
        for name, url in urls.items():
            runs[name].append(load(url, clients, seconds / chunks))
    merged = {}
    for name, chunk in runs.items():
        merged[name] = {
            "tool": chunk[0]["tool"],
            "rps": round(statistics.mean(c["rps"] for c in chunk), 1),
            "p50_ms": round(statistics.median(c["p50_ms"] for c in chunk), 2),
            "p99_ms": round(statistics.median(c["p99_ms"] for c in chunk), 2),
            "errors": sum(c["errors"] for c in chunk),
            "chunks": [{k: c[k] for k in ("rps", "p50_ms", "p99_ms")} for c in chunk],
        }
    return merged


def service_env(database_url: str) -> dict[str, str]:
    return {
        "LOOPDESK_DATABASE_URL": database_url,
        "LOOPDESK_API_KEY": KEY,
        "LOOPDESK_LOOP_WEBHOOK_SECRET": SECRET,
        "LOOPDESK_LOOKUP_TTL_S": "3600",
        "LOOPDESK_LOG_LEVEL": "ERROR",
        "LOOPDESK_SANDBOX_RATE_LIMIT_PER_MINUTE": "0",
    }


def _ready_for_load(url: str) -> dict[str, Any]:
    """Prime the service as a day of use would: the customer fetched, then served from
    the store, and one guide turn (which waits for the classifier trained at start-up,
    in a thread that would otherwise compete with the load). The stored answer's JSON."""
    headers = {"Authorization": f"Bearer {KEY}"}
    primed = httpx.get(url + LOOKUP, headers=headers, timeout=30)
    assert primed.status_code == 200 and primed.json()["returns"], primed.text
    again = httpx.get(url + LOOKUP, headers=headers, timeout=30).json()
    assert again["meta"]["source"] == "store"
    turn = httpx.post(
        url + "/v1/guide/messages",
        headers=headers,
        json={
            "conversationId": "bench-warm-up",
            "channel": "chat",
            "text": "where's my return?",
            "customer": GUIDE_CUSTOMER,
        },
        timeout=120,
    )
    assert turn.status_code == 200, turn.text
    result: dict[str, Any] = again
    return result


def warm_lookup(
    tmp: Path,
    clients: int,
    seconds: float,
    *,
    chunks: int,
    guide_seconds: float,
    webhook_seconds: float,
) -> dict[str, Any]:
    """Warm lookups beside the bare endpoint (interleaved), then guide turns, then
    webhook ingest on SQLite, all on one running service; its peak RSS last."""
    database_url = f"sqlite+aiosqlite:///{tmp}/warm.db"
    with uvicorn_app("loopdesk.api.app:create_app", service_env(database_url), tmp) as (
        url,
        pid,
    ):
        stored = _ready_for_load(url)
        bare_json = tmp / "bare.json"
        bare_json.write_text(json.dumps(stored))
        with uvicorn_app("bench.bare_app:create_app", {"BENCH_BARE_JSON": str(bare_json)}, tmp) as (
            bare_url,
            _,
        ):
            both = side_by_side(
                {"warm": url + LOOKUP, "bare": bare_url + LOOKUP}, clients, seconds, chunks
            )
        served, bare = both["warm"], both["bare"]
        # Guide turns end to end, beside the warm lookup they build on: each a first
        # turn of a new conversation (classify, store-fresh lookup, render, state write).
        turns = load(url + "/v1/guide/messages", clients, guide_seconds, guide=True)
        # Routing decisions end to end from stored data (the same customer, its returns
        # in the store), with the load generator the warm lookup had.
        decision = {"customer": GUIDE_CUSTOMER, "channel": "chat"}
        decisions = load(url + "/v1/routing/decide", clients, guide_seconds, json_body=decision)
        hooks = measure_webhooks(url, database_url, tmp, webhook_seconds, run="3")
        rss = peak_rss_mb(pid)
    return {
        "warm_lookup_rps_ratio_to_bare": round(served["rps"] / bare["rps"], 3),
        "warm_lookup_p99_ms": served["p99_ms"],
        "warm_lookup_p99_ratio_to_bare": round(served["p99_ms"] / bare["p99_ms"], 2)
        if bare["p99_ms"]
        else None,
        "warm_lookup": served,
        "guide_turns_per_s": turns["rps"],
        "guide_turns": turns,
        "guide_turns_ratio_to_warm_lookup": round(turns["rps"] / served["rps"], 3),
        "routing_decisions_http_per_s": decisions["rps"],
        "routing_decisions_http": decisions,
        "routing_decisions_ratio_to_warm_lookup": round(decisions["rps"] / served["rps"], 3),
        "bare_endpoint": bare,
        "webhook_events_per_s_sqlite": hooks["acks_per_s"],
        "webhook_apply_caught_up_s_sqlite": hooks["apply_caught_up_s"],
        "webhooks_sqlite": hooks,
        "peak_rss_mb": rss,
    }


def webhooks(tmp: Path, database_url: str, seconds: float) -> dict[str, Any]:
    """Webhook ingest on its own running service (PostgreSQL): see `bench.webhooks`."""
    with uvicorn_app("loopdesk.api.app:create_app", service_env(database_url), tmp) as (url, _):
        _ready_for_load(url)
        return measure_webhooks(url, database_url, tmp, seconds, run="4")

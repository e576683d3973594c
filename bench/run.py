"""`make bench`: measured side by side in one run, reported as ratios.

Cold lookup (`bench.cold`): end to end through a running `loopdesk serve` talking to
`loopdesk sandbox` in another process with a fixed upstream latency, compared with
(a) the same requests made one after another, as a template-driven integration issues
them, and (b) the floor of two dependent round trips (a returns list, then one notes
request), which no lookup can beat. Warm lookups, guide turns, webhook ingest and
memory (`bench.service`) and routing decisions (`bench.routing`) follow.

BENCH_QUICK=1 runs fewer rounds (under a minute).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from bench.cold import cold_lookups
from bench.routing import routing_decisions
from bench.server import running_sandbox
from bench.service import warm_lookup, webhooks
from bench.world import write_world
from loopdesk.logs import configure_logging

RESULTS = Path(__file__).with_name("results.json")
LATENCY_MS = int(os.environ.get("BENCH_LATENCY_MS", "50"))
QUICK = os.environ.get("BENCH_QUICK") == "1"
ROUNDS = 5 if QUICK else 25


async def _postgres_database() -> tuple[str, Callable[[], Awaitable[None]]] | None:
    """A throwaway database on the local server, or None where there is none."""
    import secrets

    import asyncpg

    name = f"loopdesk_bench_{secrets.token_hex(4)}"
    admin_dsn = "postgresql://postgres@127.0.0.1:5432/test"
    try:
        admin = await asyncpg.connect(admin_dsn, timeout=3)
    except (OSError, asyncpg.PostgresError, TimeoutError):
        return None
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()

    async def drop() -> None:
        conn = await asyncpg.connect(admin_dsn, timeout=3)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

    return f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}", drop


def report(results: dict[str, Any]) -> None:
    console = Console()
    table = Table(
        title=f"Cold lookup end to end (HTTP API, sandbox in another process), "
        f"upstream latency {LATENCY_MS} ms, {ROUNDS} rounds"
    )
    for column in ("measure", "median ms", "p95 ms"):
        table.add_column(column)
    for key in (
        "cold_lookup",
        "sequential_lookup",
        "two_round_trip_floor",
        "library_cold_lookup",
        "cold_lookup_large",
    ):
        table.add_row(key, str(results[key]["median_ms"]), str(results[key]["p95_ms"]))
    console.print(table)
    console.print(
        f"end to end: {results['cold_lookup_speedup_vs_sequential']}x faster than sequential, "
        f"{results['cold_lookup_ratio_to_floor']}x the two-round-trip floor; "
        f"library call: {results['library_cold_lookup_speedup_vs_sequential']}x, "
        f"{results['library_cold_lookup_ratio_to_floor']}x; "
        f"5 addresses / 50 returns: {results['cold_lookup_large_ratio_to_floor']}x the floor"
    )
    service = Table(title="Service (load from a separate process, 64 clients)")
    for column in ("measure", "value"):
        service.add_column(column)
    for key in (
        "warm_lookup_rps_ratio_to_bare",
        "warm_lookup_p99_ms",
        "warm_lookup_p99_ratio_to_bare",
        "webhook_events_per_s_sqlite",
        "webhook_events_per_s_postgres",
        "webhook_apply_caught_up_s_sqlite",
        "webhook_apply_caught_up_s_postgres",
        "routing_decisions_per_s",
        "routing_decisions_http_per_s",
        "routing_decisions_ratio_to_warm_lookup",
        "guide_turns_per_s",
        "guide_turns_ratio_to_warm_lookup",
        "peak_rss_mb",
    ):
        service.add_row(key, str(results.get(key)))
    warm, bare = results["warm_lookup"], results["bare_endpoint"]
    service.add_row("warm lookup rps / bare rps", f"{warm['rps']} / {bare['rps']} ({warm['tool']})")
    service.add_row("warm lookup p99 / bare p99 ms", f"{warm['p99_ms']} / {bare['p99_ms']}")
    console.print(service)
    console.print(f"wrote {RESULTS}")


def main() -> int:
    configure_logging("WARNING")
    with tempfile.TemporaryDirectory() as tmp:
        data = write_world(Path(tmp) / "bench-world.json")
        with running_sandbox(data, latency_ms=LATENCY_MS) as base_url:
            results: dict[str, Any] = {
                "quick": QUICK,
                "upstream_latency_ms": LATENCY_MS,
                "rounds": ROUNDS,
            }
            results.update(asyncio.run(cold_lookups(base_url, Path(tmp), ROUNDS)))
        tmp_path = Path(tmp)
        hook_seconds = 3 if QUICK else 10
        results.update(
            warm_lookup(
                tmp_path,
                clients=64,
                # An odd number of 2 s chunks (at least): the median chunk's p99, so one
                # chunk caught by a pause (wrk's 64 new connections stall the first
                # requests up to ~100 ms, on the bare endpoint too) does not decide it.
                seconds=6 if QUICK else 15,
                chunks=3 if QUICK else 5,
                guide_seconds=2 if QUICK else 10,
                webhook_seconds=hook_seconds,
            )
        )
        postgres = asyncio.run(_postgres_database())
        if postgres is None:
            results["webhook_events_per_s_postgres"] = None
            results["notes"] = ["PostgreSQL not reachable at 127.0.0.1:5432: not measured"]
        else:
            url, drop = postgres
            try:
                hooks = webhooks(tmp_path, url, hook_seconds)
                results["webhook_events_per_s_postgres"] = hooks["acks_per_s"]
                results["webhook_apply_caught_up_s_postgres"] = hooks["apply_caught_up_s"]
                results["webhooks_postgres"] = hooks
            finally:
                asyncio.run(drop())
    results.update(routing_decisions(seconds=1 if QUICK else 5))
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    report(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Cold lookups, end to end, beside their baselines in the same run.

What is timed is what a user waits for: a client calls `GET /v1/customers/lookup` with
`Cache-Control: no-cache` on a running `loopdesk serve`, which talks over HTTP to
`loopdesk sandbox` in another process (a fixed latency per request), as it would to
Loop. Beside it, interleaved round by round so drift on the machine affects all alike:

- the same 12 upstream requests made one after another from this process (3 returns
  lists, 8 notes, 1 Order Tracking query), as a template-driven integration issues them;
- the floor: two dependent upstream round trips (a returns list, then one return's
  notes), which no lookup can beat;
- the library call (`lookup_customer` in this process, no HTTP API, no store write),
  labelled as such;
- the large customer (5 addresses, 50 returns), to show how the cost grows.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from bench.server import running_service
from bench.world import EMAILS, LARGE_EMAILS, LARGE_RETURNS, ORDERS, RETURNS
from loopdesk.customers.lookup import LookupOptions, lookup_customer
from loopdesk.loop.returns import LoopReturnsClient
from loopdesk.loop.tracking import OrderTrackingClient
from loopdesk.settings import Settings

TOKEN = "bench-token"
API_KEY = "bench-cold-api-key-0123456789"
ORDERS_QUERY = (
    "query fetchGladlyOrderInformation($emails: [String!]!) { orders(input: "
    "{customerEmails: $emails}) { name shipments { trackingCode status carrierDisplayName } } }"
)


async def _timed(make: Callable[[], Awaitable[Any]]) -> float:
    started = time.perf_counter()
    await make()
    return (time.perf_counter() - started) * 1000


def summary(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {"median_ms": round(statistics.median(ordered), 2), "p95_ms": round(p95, 2)}


def _lookup_params(emails: list[str]) -> list[tuple[str, str]]:
    return [("email", e) for e in emails]


async def cold_lookups(sandbox_url: str, workdir: Path, rounds: int) -> dict[str, Any]:
    with running_service(sandbox_url, workdir, api_key=API_KEY, token=TOKEN) as (service, _):
        return await _measure(sandbox_url, service, rounds)


async def _measure(sandbox_url: str, service_url: str, rounds: int) -> dict[str, Any]:
    settings = Settings(loop_api_token=TOKEN, loop_rate_limit_per_minute=1_000_000)
    since = (datetime.now(UTC) - timedelta(days=365)).date()
    headers = {"Authorization": f"Bearer {API_KEY}", "Cache-Control": "no-cache"}
    async with (
        LoopReturnsClient(base_url=sandbox_url, token=TOKEN, settings=settings) as returns,
        OrderTrackingClient(base_url=sandbox_url, token=TOKEN, settings=settings) as tracking,
        httpx.AsyncClient(base_url=sandbox_url, headers={"X-Authorization": TOKEN}) as plain,
        httpx.AsyncClient(base_url=service_url, headers=headers, timeout=30) as client,
    ):
        options = LookupOptions.from_settings(settings)

        async def end_to_end(emails: list[str], returns_count: int) -> None:
            response = await client.get("/v1/customers/lookup", params=_lookup_params(emails))
            body = response.json()
            assert response.status_code == 200, response.text
            assert body["meta"]["source"] == "loop", body["meta"]
            assert not body["meta"].get("errors"), body["meta"]
            assert len(body["returns"]) == returns_count and len(body["orders"]) == ORDERS

        async def small() -> None:
            await end_to_end(EMAILS, RETURNS)

        async def large() -> None:
            await end_to_end(LARGE_EMAILS, LARGE_RETURNS)

        async def library() -> None:
            view = await lookup_customer(EMAILS, returns, tracking, options)
            assert len(view.returns) == RETURNS and len(view.orders) == ORDERS, view.meta.errors

        async def sequential() -> None:
            ids: list[str] = []
            for email in EMAILS:
                params = {
                    "filter": "updated_at",
                    "limit": 10,
                    "from": since.isoformat(),
                    "customer_email": email,
                }
                body = (await plain.get("/api/v2/returns", params=params)).json()
                ids += [r["id"] for r in body["data"]]
            for return_id in ids:
                await plain.get(f"/api/v1/warehouse/return/{return_id}/notes")
            await plain.post(
                "/graphql",
                json={"query": ORDERS_QUERY, "variables": {"emails": EMAILS}},
                headers={"x-wonderment-access-token": TOKEN},
            )
            assert len(ids) == RETURNS

        async def floor() -> None:
            params = {
                "filter": "updated_at",
                "limit": 10,
                "from": since.isoformat(),
                "customer_email": EMAILS[0],
            }
            body = (await plain.get("/api/v2/returns", params=params)).json()
            await plain.get(f"/api/v1/warehouse/return/{body['data'][0]['id']}/notes")

        # A service at work, not in its first seconds: one guide turn waits for the
        # intent classifier, which trains in a thread at start-up and would otherwise
        # take CPU (and the GIL) from the first lookups timed.
        turn = await client.post(
            "/v1/guide/messages",
            json={
                "conversationId": "bench-cold-warm-up",
                "channel": "chat",
                "text": "where's my return?",
                "customer": {"emails": EMAILS, "name": "Bench"},
            },
            timeout=120,
        )
        assert turn.status_code == 200, turn.text
        # Each end-to-end lookup is followed by a measure made elsewhere, so its store
        # write (after the answer) is done before the service is timed again.
        measures = {
            "cold_lookup": small,
            "library_cold_lookup": library,
            "cold_lookup_large": large,
            "sequential_lookup": sequential,
            "two_round_trip_floor": floor,
        }
        for make in measures.values():  # warm-up: connections open, code paths hot
            await make()
        samples: dict[str, list[float]] = {name: [] for name in measures}
        for _ in range(rounds):
            for name, make in measures.items():
                samples[name].append(await _timed(make))
    s = {name: summary(values) for name, values in samples.items()}
    floor_ms, seq_ms = s["two_round_trip_floor"]["median_ms"], s["sequential_lookup"]["median_ms"]
    small_ms, library_ms = s["cold_lookup"]["median_ms"], s["library_cold_lookup"]["median_ms"]
    large_ms = s["cold_lookup_large"]["median_ms"]
    return {
        # End to end through loopdesk's HTTP API (the contract's two figures).
        "cold_lookup_speedup_vs_sequential": round(seq_ms / small_ms, 2),
        "cold_lookup_ratio_to_floor": round(small_ms / floor_ms, 2),
        "cold_lookup": s["cold_lookup"],
        "sequential_lookup": s["sequential_lookup"],
        "two_round_trip_floor": s["two_round_trip_floor"],
        # The library call alone, in this process: no HTTP API, no store write.
        "library_cold_lookup": s["library_cold_lookup"],
        "library_cold_lookup_speedup_vs_sequential": round(seq_ms / library_ms, 2),
        "library_cold_lookup_ratio_to_floor": round(library_ms / floor_ms, 2),
        # 5 addresses, 50 returns, end to end: how the cost grows with the customer.
        "cold_lookup_large": {
            **s["cold_lookup_large"],
            "addresses": len(LARGE_EMAILS),
            "returns": LARGE_RETURNS,
        },
        "cold_lookup_large_ratio_to_floor": round(large_ms / floor_ms, 2),
        "cold_lookup_large_ratio_to_small": round(large_ms / small_ms, 2),
    }

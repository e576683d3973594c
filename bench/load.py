"""A load generator, run as its own process: N concurrent clients for a fixed time.

GET the URL, or with `guide` as the fifth argument POST guide messages to it: each
request a new conversation's first turn ("where's my return?"), so each reads and
writes its own state; with `decide`, POST the same customer's routing decision (from
the stored returns). Prints one JSON line: requests, errors, rps, p50_ms, p99_ms.
Bounded in count and time.
"""

from __future__ import annotations

import asyncio
import json
import re
import statistics
import sys
import time
from collections.abc import Awaitable, Callable

import httpx

GUIDE_CUSTOMER = {"emails": ["primary@email.com", "secondary@email.com"], "name": "Jane Doe"}


Send = Callable[[httpx.AsyncClient, int, int], Awaitable[httpx.Response]]


async def drive(
    send: Send, clients: int, seconds: float, *, headers: dict[str, str] | None = None
) -> dict[str, float]:
    """`clients` workers calling `send(client, worker, turn)` back to back for
    `seconds`; a 200 counts, anything else (or a transport error) is an error."""
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(headers=headers, limits=limits, timeout=30) as client:

        async def worker(number: int) -> None:
            nonlocal errors
            turn = 0
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                turn += 1
                try:
                    ok = (await send(client, number, turn)).status_code == 200
                except httpx.HTTPError:
                    ok = False
                if ok:
                    latencies.append((time.perf_counter() - started) * 1000)
                else:
                    errors += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker(n) for n in range(clients)))
        elapsed = time.perf_counter() - started
    ordered = sorted(latencies) or [0.0]
    return {
        "requests": len(latencies),
        "errors": errors,
        "rps": round(len(latencies) / elapsed, 1),
        "p50_ms": round(statistics.median(ordered), 2),
        "p99_ms": round(ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))], 2),
    }


async def run(
    url: str, headers: dict[str, str], clients: int, seconds: float, *, post: str = ""
) -> dict[str, float]:
    """`post`: "" (GET), "guide" or "decide"."""

    async def send(client: httpx.AsyncClient, number: int, turn: int) -> httpx.Response:
        if post == "decide":
            return await client.post(url, json={"customer": GUIDE_CUSTOMER, "channel": "chat"})
        if post == "guide":
            message = {
                "conversationId": f"bench-{number}-{turn}",
                "channel": "chat",
                "text": "where's my return?",
                "customer": GUIDE_CUSTOMER,
            }
            return await client.post(url, json=message)
        return await client.get(url)

    return await drive(send, clients, seconds, headers=headers)


def wrk_ms(out: str, percentile: str) -> float:
    """A latency percentile from `wrk --latency` output, in milliseconds."""
    match = re.search(rf"{percentile}\s+([\d.]+)(us|ms|s)", out)
    if match is None:
        return 0.0
    value, unit = float(match[1]), match[2]
    return round(value / 1000 if unit == "us" else value * 1000 if unit == "s" else value, 2)


if __name__ == "__main__":
    target, key, n, duration = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    posting = sys.argv[5] if sys.argv[5:] in (["guide"], ["decide"]) else ""
    result = asyncio.run(run(target, {"Authorization": f"Bearer {key}"}, n, duration, post=posting))
    sys.stdout.write(json.dumps(result) + "\n")

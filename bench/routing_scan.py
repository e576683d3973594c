"""The routing scan's cost per customer, from the store alone (no upstream call).

    python -m bench.routing_scan --customers 1000 [--database-url URL]

N customers, one open return each, delivered to the warehouse 6 days before T0; three
scans: at T0 (every customer's first outcome, recorded), at T0 again (nothing changed)
and a day later (every refund crosses 7 days: N events written to the outbox).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from loopdesk import store as db
from loopdesk.customers.lookup import LookupOptions
from loopdesk.domain.facts import FactsPolicy
from loopdesk.domain.normalize import normalize_return
from loopdesk.routing.events import EventsConfig
from loopdesk.routing.reroute import Rerouter
from loopdesk.routing.rules import load_rules
from loopdesk.routing.scan import scan
from loopdesk.routing.service import RoutingConfig

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


def raw_return(index: int) -> dict[str, Any]:
    return {
        "id": str(100_000 + index),
        "state": "open",
        "created_at": (T0 - timedelta(days=20)).isoformat(),
        "updated_at": (T0 - timedelta(days=1)).isoformat(),
        "customer": f"customer{index}@example.com",
        "order_name": f"#{index}",
        "label_status": "delivered",
        "label_updated_at": (T0 - timedelta(days=6)).isoformat(),
    }


async def run(url: str, customers: int) -> None:
    store = await db.Store.open(url)
    try:
        items = [(raw, normalize_return(raw)) for raw in map(raw_return, range(customers))]
        async with store.session() as session:
            await db.upsert_returns(session, items)
        events = EventsConfig(urls=("http://receiver.invalid/",), secret=SecretStr("bench"))
        config = RoutingConfig(load_rules(), FactsPolicy(), events)
        rerouter = Rerouter(config, store, LookupOptions())
        for label, at in (
            ("first outcomes", T0),
            ("unchanged", T0),
            ("all changed", T0 + timedelta(days=1)),
        ):
            started = time.perf_counter()
            result = await scan(rerouter, now=at)
            took = time.perf_counter() - started
            print(
                f"{store.dialect}: {label}: {result.customers} customers, "
                f"{len(result.changes)} events, {took:.2f} s, "
                f"{took / max(result.customers, 1) * 1000:.2f} ms per customer"
            )
    finally:
        await store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1000)
    parser.add_argument("--database-url", default=None, help="an empty database (default: SQLite)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as here:
        url = args.database_url or f"sqlite+aiosqlite:///{Path(here) / 'scan.db'}"
        asyncio.run(run(url, args.customers))


if __name__ == "__main__":
    main()

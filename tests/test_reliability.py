"""Nothing lost under SIGKILL: signed webhooks to a real `loopdesk serve`, killed twice.

A stand-in for Loop sends every change of many returns as signed webhooks, in both
payload shapes (Loop's documented one without `updated_at` and `id` an integer, and
one with `updated_at` and `id` a string), 5% of them twice and 10% out of order, and
re-sends each one until it is acknowledged (2xx), as Loop does. The service reads
the returns it cannot order from a `loopdesk sandbox` holding their newest state, as
it would read them from Loop. Meanwhile the service is killed with SIGKILL twice and
restarted. Afterwards every acknowledged event is stored exactly once, every return
holds its newest state, and `webhooks replay` has nothing left to do.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy import text

from loopdesk import store as db
from loopdesk.domain.webhooks import dedupe_key, parse_event
from loopdesk.sandbox.webhooks import encode_body, sign
from tests.reports import Report

SECRET = "reliability-webhook-secret"
PG_HOST = "127.0.0.1:5432"
PG_ADMIN_DSN = f"postgresql://postgres@{PG_HOST}/test"
T0 = datetime(2026, 11, 1, tzinfo=UTC)
VERSIONS = 10  # changes per return
SENDERS = 8
KILLS = 2


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S+00:00")


def _version(rid: int, v: int) -> dict[str, Any]:
    """Return `rid` after its `v`th change (v = 1 .. VERSIONS)."""
    created = T0 + timedelta(hours=rid % 1000)
    state = "open" if v < VERSIONS else "closed"
    return {
        "id": str(rid),
        "state": state,
        "created_at": _iso(created),
        "updated_at": _iso(created + timedelta(minutes=v)),
        "edited_at": None,
        "total": f"{v}.00",
        "outcome": "refund",
        "order_id": str(rid * 10),
        "order_name": f"#{rid}",
        "customer": f"customer{rid}@example.com",
        "currency": "USD",
        "return_total": f"{v}.00",
        "refund": f"{v}.00",
        "line_items": [],
        "exchanges": [],
    }


def _payload(item: dict[str, Any], trigger: str, documented: bool) -> dict[str, Any]:
    if documented:  # Loop's documented shape: no `updated_at`, integer id
        body = {k: v for k, v in item.items() if k != "updated_at"}
        return {"topic": "return", "trigger": trigger, "shop_id": 1, **body, "id": int(item["id"])}
    return {"topic": "return", "trigger": trigger, "shop_id": 1, **item}


def _events(distinct: int, rng: random.Random) -> tuple[list[bytes], dict[str, dict[str, Any]]]:
    """Signed bodies to send (duplicates and disorder included) and each return's
    newest state."""
    first = 7_000_001
    returns = max(distinct // VERSIONS, 1)
    streams = []
    newest: dict[str, dict[str, Any]] = {}
    for rid in range(first, first + returns):
        stream = []
        for v in range(1, VERSIONS + 1):
            trigger = {1: "return.created", VERSIONS: "return.closed"}.get(v, "return.updated")
            stream.append(encode_body(_payload(_version(rid, v), trigger, rng.random() < 0.5)))
        streams.append(stream)
        newest[str(rid)] = _version(rid, VERSIONS)
    # Interleave the returns' changes, each return's in order ...
    bodies: list[bytes] = []
    while streams:
        stream = rng.choice(streams)
        bodies.append(stream.pop(0))
        if not stream:
            streams.remove(stream)
    # ... then 10% out of order: moved behind up to 50 later events.
    for index in rng.sample(range(len(bodies)), len(bodies) // 10):
        target = min(len(bodies) - 1, index + rng.randint(1, 50))
        bodies.insert(target, bodies.pop(index))
    # ... and 5% sent twice, the copy a little later.
    for body in rng.sample(list(bodies), len(bodies) // 20):
        position = bodies.index(body)
        bodies.insert(min(len(bodies), position + rng.randint(1, 100)), body)
    return bodies, newest


@dataclass
class Counts:
    deliveries: int = 0
    acknowledged: set[bytes] = field(default_factory=set)
    applied: dict[bytes, int] = field(default_factory=dict)
    results: dict[str, int] = field(default_factory=dict)
    # Events stored but not applied when the process died (the window a kill hits).
    received_at_kill: list[int] = field(default_factory=list)


async def _received(database_url: str) -> int:
    store = await db.Store.open(database_url, migrate=False)
    try:
        async with store.reader() as session:
            return (await db.event_counts(session))["received"]
    finally:
        await store.close()


class Service:
    """`loopdesk serve` as a subprocess (its own process group, so that a SIGKILL
    takes its workers too)."""

    def __init__(self, env: dict[str, str], port: int, workers: int, log: Path) -> None:
        self.env, self.port, self.workers, self.log = env, port, workers, log
        self.process: subprocess.Popen[bytes] | None = None
        self.url = f"http://127.0.0.1:{port}"

    def start(self) -> None:
        command = [sys.executable, "-m", "loopdesk", "serve", "--port", str(self.port)]
        command += ["--workers", str(self.workers)]
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                command, env=self.env, stdout=out, stderr=out, start_new_session=True
            )

    async def ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(timeout=1.0) as client:
            while time.monotonic() < deadline:
                assert self.process is not None and self.process.poll() is None, self.tail()
                try:
                    if (await client.get(f"{self.url}/readyz")).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.1)
        raise AssertionError(f"loopdesk serve did not start:\n{self.tail()}")

    def kill(self) -> None:
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""


async def _send_all(
    service: Service, bodies: list[bytes], counts: Counts, database_url: str
) -> None:
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)

    async def sender(client: httpx.AsyncClient) -> None:
        while True:
            try:
                body = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            headers = {"Content-Type": "application/json", "X-Loop-Signature": sign(body, SECRET)}
            while True:  # Loop re-sends until it gets a 2xx
                counts.deliveries += 1
                try:
                    response = await client.post(
                        f"{service.url}/webhooks/loop", content=body, headers=headers
                    )
                except httpx.HTTPError:
                    await asyncio.sleep(0.05)
                    continue
                if 200 <= response.status_code < 300:
                    break
                assert response.status_code in (502, 503, 504), response.text
                await asyncio.sleep(0.05)
            result = response.json()["result"]
            counts.acknowledged.add(body)
            counts.results[result] = counts.results.get(result, 0) + 1
            if result == "applied":
                counts.applied[body] = counts.applied.get(body, 0) + 1

    async def killer() -> None:
        for kill in range(1, KILLS + 1):
            while len(counts.acknowledged) < len(set(bodies)) * kill / (KILLS + 1):
                await asyncio.sleep(0.01)
            service.kill()
            counts.received_at_kill.append(await _received(database_url))
            service.start()
            await service.ready()

    async with httpx.AsyncClient(timeout=httpx.Timeout(15.0, connect=1.0)) as client:
        kills = asyncio.create_task(killer())
        await asyncio.gather(*(sender(client) for _ in range(SENDERS)))
        await kills


async def _check_store(
    database_url: str, bodies: list[bytes], newest: dict[str, dict[str, Any]], counts: Counts
) -> dict[str, int]:
    store = await db.Store.open(database_url)
    try:
        async with store.session() as session:
            rows = (
                await session.execute(text("SELECT dedupe_key, status FROM webhook_events"))
            ).all()
            stored = {rid: await db.stored_return(session, rid) for rid in newest}
    finally:
        await store.close()
    keys: dict[str, int] = {}
    for row in rows:
        keys[row.dedupe_key] = keys.get(row.dedupe_key, 0) + 1
    statuses = {row.status for row in rows}
    lost = 0
    for body in counts.acknowledged:
        event = parse_event(body)
        assert event.dedupe_key == dedupe_key(body, event.topic, event.trigger)
        lost += keys.get(event.dedupe_key, 0) != 1
    wrong = 0
    for rid, item in newest.items():
        row = stored[rid]
        wrong += not (
            row is not None
            and row.normalized["state"] == item["state"]
            and row.normalized["return"]["total"] == item["return_total"]
            and row.updated_at == datetime.fromisoformat(item["updated_at"])
        )
    return {
        "rows": len(rows),
        "lost": lost,
        "extra rows": len(rows) - len(set(bodies)),
        "returns not newest": wrong,
        "not applied": len(statuses - {"applied", "unchanged", "stale"}),
    }


async def _run(
    tmp_path: Path, database_url: str, distinct: int, workers: int, report: Report
) -> None:
    rng = random.Random(1086)
    bodies, newest = _events(distinct, rng)
    data = tmp_path / "loop.json"
    data.write_text(json.dumps({"returns": list(newest.values())}))
    sandbox_port, port = _free_port(), _free_port()
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("LOOPDESK_")}
    env = {
        **base_env,
        "LOOPDESK_DATABASE_URL": database_url,
        "LOOPDESK_LOOP_API_TOKEN": "reliability-token",
        "LOOPDESK_LOOP_BASE_URL": f"http://127.0.0.1:{sandbox_port}",
        "LOOPDESK_LOOP_WEBHOOK_SECRET": SECRET,
        "LOOPDESK_API_KEY": "reliability-api-key",
        "LOOPDESK_LOOP_RATE_LIMIT_PER_MINUTE": "1000000",
        "LOOPDESK_SANDBOX_RATE_LIMIT_PER_MINUTE": "0",
        "LOOPDESK_LOG_LEVEL": "WARNING",
    }
    sandbox = subprocess.Popen(
        [sys.executable, "-m", "loopdesk", "sandbox", "--port", str(sandbox_port)],
        env={**env, "LOOPDESK_SANDBOX_DATA": str(data)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    service = Service(env, port, workers, tmp_path / "serve.log")
    counts = Counts()
    started = time.monotonic()
    try:
        service.start()
        await service.ready()
        await _send_all(service, bodies, counts, database_url)
        service.stop()
        replay = subprocess.run(
            [sys.executable, "-m", "loopdesk", "webhooks", "replay", "--limit", "1000000"],
            env=env,
            capture_output=True,
            timeout=120,
            check=False,
        )
    finally:
        service.stop()
        sandbox.terminate()
        sandbox.wait(10)
    assert replay.returncode == 0, replay.stderr.decode(errors="replace")
    left = json.loads(replay.stdout)
    found = await _check_store(database_url, bodies, newest, counts)
    twice = sum(1 for n in counts.applied.values() if n > 1)
    summary = {
        "events": len(set(bodies)),
        "sent": len(bodies),
        "deliveries": counts.deliveries,
        "acknowledged": len(counts.acknowledged),
        "lost": found["lost"],
        "applied twice": twice,
        "kills": KILLS,
        "received at each kill": counts.received_at_kill,
        "workers": workers,
        "seconds": round(time.monotonic() - started, 1),
        "results": counts.results,
        "replay left": left,
    }
    report(f"reliability ({database_url.split(':')[0]}): {json.dumps(summary)}")
    assert len(counts.acknowledged) == len(set(bodies))
    assert found["lost"] == 0 and found["extra rows"] == 0, found
    assert found["returns not newest"] == 0 and found["not applied"] == 0, found
    assert twice == 0
    assert left == {}, left


@pytest.mark.slow
async def test_sigkill_loses_nothing_on_sqlite(tmp_path: Path, report: Report) -> None:
    await _run(
        tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'serve.db'}", 950, workers=1, report=report
    )


@pytest.mark.slow
async def test_sigkill_loses_nothing_on_postgresql_with_two_workers(
    tmp_path: Path, report: Report
) -> None:
    name = f"loopdesk_sigkill_{secrets.token_hex(6)}"
    try:
        admin = await asyncpg.connect(PG_ADMIN_DSN, timeout=3)
    except (OSError, asyncpg.PostgresError, TimeoutError):
        pytest.skip(f"PostgreSQL not reachable at {PG_HOST}: the two-worker SIGKILL test skipped")
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        url = f"postgresql+asyncpg://postgres@{PG_HOST}/{name}"
        await _run(tmp_path, url, 4750, workers=2, report=report)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()

"""Faults on demand, the rate limit and the request log of the sandbox."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from loopdesk.sandbox.app import create_sandbox_app
from loopdesk.sandbox.faults import FaultController, parse_fault_header
from loopdesk.sandbox.ratelimit import RollingLimiter
from loopdesk.sandbox.seed import generate_world
from loopdesk.sandbox.world import World
from loopdesk.settings import Settings

LOOP = {"X-Authorization": "test-token"}
TRACKING = {"x-wonderment-access-token": "test-token"}
RETURNS = "/api/v2/returns"
SEARCH = "/2022-10/shipments/search/1001"


@pytest.fixture(scope="module")
def world() -> World:
    return generate_world(customers=5)


def make_app(world: World, **overrides: Any) -> FastAPI:
    return create_sandbox_app(
        Settings(**{"sandbox_rate_limit_per_minute": 0, **overrides}), world=world
    )


def client_for(app: FastAPI, **kwargs: Any) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app)
    return httpx.AsyncClient(transport=transport, base_url="http://sandbox", **kwargs)


@pytest.fixture
def app(world: World) -> FastAPI:
    return make_app(world)


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(app) as client:
        yield client


async def _timed(client: httpx.AsyncClient, path: str, **kwargs: Any) -> float:
    started = time.monotonic()
    await client.get(path, **kwargs)
    return time.monotonic() - started


# --- rate limit -----------------------------------------------------------------------


async def test_rate_limit_per_token(world: World) -> None:
    async with client_for(make_app(world, sandbox_rate_limit_per_minute=2)) as client:
        statuses = [(await client.get(RETURNS, headers=LOOP)).status_code for _ in range(3)]
        refused = await client.get(RETURNS, headers=LOOP)
        other = await client.get(RETURNS, headers={"X-Authorization": "another-key"})
        tracking = await client.get(SEARCH, headers=TRACKING)
    assert statuses == [200, 200, 429]
    assert refused.json() == {"message": "Too Many Attempts."}
    assert "Retry-After" not in refused.headers  # Loop documents none
    assert other.status_code == 200
    assert tracking.status_code == 200


async def test_rate_limit_retry_after_on_request(world: World) -> None:
    app = make_app(world, sandbox_rate_limit_per_minute=1, sandbox_rate_limit_retry_after=True)
    async with client_for(app) as client:
        await client.get(RETURNS, headers=LOOP)
        refused = await client.get(RETURNS, headers=LOOP)
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["Retry-After"]) <= 60


def test_rolling_window() -> None:
    now = [0.0]
    limiter = RollingLimiter(2, clock=lambda: now[0])
    assert limiter.hit("k") is None
    now[0] = 30.0
    assert limiter.hit("k") is None
    assert limiter.hit("k") == pytest.approx(30.0)
    now[0] = 60.5  # the first hit has left the window
    assert limiter.hit("k") is None
    assert limiter.hit("k") == pytest.approx(29.5)


async def test_rate_limit_off(world: World) -> None:
    async with client_for(make_app(world, sandbox_rate_limit_per_minute=0)) as client:
        for _ in range(5):
            assert (await client.get(RETURNS, headers=LOOP)).status_code == 200


# --- faults from settings -------------------------------------------------------------


async def test_settings_latency_is_non_blocking(world: World) -> None:
    async with client_for(make_app(world, sandbox_latency_ms=100)) as client:
        assert await _timed(client, RETURNS, headers=LOOP) >= 0.1
        started = time.monotonic()
        await asyncio.gather(*(client.get(RETURNS, headers=LOOP) for _ in range(5)))
        assert time.monotonic() - started < 0.4


async def test_error_rate(world: World) -> None:
    async with client_for(make_app(world, sandbox_error_rate=1.0)) as client:
        response = await client.get(RETURNS, headers=LOOP)
        assert response.status_code == 500
        assert response.json() == {"message": "Server Error"}

    async def statuses() -> list[int]:
        async with client_for(make_app(world, sandbox_error_rate=0.5)) as client:
            return [(await client.get(RETURNS, headers=LOOP)).status_code for _ in range(20)]

    first = await statuses()
    assert first == await statuses()  # seeded: the same requests fail every run
    assert set(first) == {200, 500}


# --- faults from the request header ---------------------------------------------------


async def test_header_latency(client: httpx.AsyncClient) -> None:
    elapsed = await _timed(client, RETURNS, headers={**LOOP, "X-Sandbox-Fault": "latency=60"})
    assert elapsed >= 0.06


async def test_header_status(client: httpx.AsyncClient) -> None:
    response = await client.get(RETURNS, headers={**LOOP, "X-Sandbox-Fault": "status=503"})
    assert response.status_code == 503
    assert response.json() == {"message": "Service Unavailable"}
    response = await client.get(SEARCH, headers={**TRACKING, "x-sandbox-fault": "status=500"})
    assert response.json() == {"message": "Server Error"}


async def test_header_rate_limit(client: httpx.AsyncClient) -> None:
    response = await client.get(RETURNS, headers={**LOOP, "X-Sandbox-Fault": "rate_limit=2"})
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "2"
    assert response.json() == {"message": "Too Many Attempts."}
    bare = await client.get(RETURNS, headers={**LOOP, "X-Sandbox-Fault": "rate_limit"})
    assert bare.status_code == 429
    assert "Retry-After" not in bare.headers
    asked = await client.get(
        RETURNS, headers={**LOOP, "X-Sandbox-Fault": "status=429; retry_after=3"}
    )
    assert (asked.status_code, asked.headers["Retry-After"]) == (429, "3")


async def test_header_malformed(client: httpx.AsyncClient) -> None:
    response = await client.get(RETURNS, headers={**LOOP, "X-Sandbox-Fault": "malformed"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    with pytest.raises(json.JSONDecodeError):
        response.json()
    short = await client.post(
        "/api/v1/warehouse/return/1/note",
        json={"content": "x"},
        headers={**LOOP, "X-Sandbox-Fault": "malformed"},
    )
    with pytest.raises(json.JSONDecodeError):
        short.json()


async def test_header_hang(client: httpx.AsyncClient) -> None:
    # The in-process transport has no timeouts of its own; the caller's deadline stands in.
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(
            client.get(RETURNS, headers={**LOOP, "X-Sandbox-Fault": "hang"}), 0.2
        )
    assert time.monotonic() - started < 1
    assert (await client.get(RETURNS, headers=LOOP)).status_code == 200


async def test_header_combined_and_invalid(client: httpx.AsyncClient) -> None:
    headers = {**LOOP, "X-Sandbox-Fault": "latency=30; status=502"}
    started = time.monotonic()
    response = await client.get(RETURNS, headers=headers)
    assert response.status_code == 502 and time.monotonic() - started >= 0.03
    bad = await client.get(RETURNS, headers={**LOOP, "X-Sandbox-Fault": "explode"})
    assert bad.status_code == 400
    assert "explode" in bad.json()["message"]


def test_parse_fault_header() -> None:
    fault = parse_fault_header("latency=200; rate_limit=0.5")
    assert (fault.latency_ms, fault.status, fault.retry_after) == (200, 429, 0.5)
    bare = parse_fault_header("rate_limit")
    assert (bare.status, bare.retry_after) == (429, None)
    assert parse_fault_header("hang").hang and parse_fault_header(" malformed ;").malformed
    for bad in ("status=99", "latency=-1", "latency=fast", "teleport=1"):
        with pytest.raises(ValueError, match="X-Sandbox-Fault"):
            parse_fault_header(bad)


async def test_hang_trips_a_real_clients_read_timeout(world: World) -> None:
    app = make_app(world)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            await asyncio.sleep(0.01)
        timeout = httpx.Timeout(5.0, read=0.3)
        base_url = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient(base_url=base_url, timeout=timeout) as client:
            started = time.monotonic()
            with pytest.raises(httpx.ReadTimeout):
                await client.get(RETURNS, headers={**LOOP, "X-Sandbox-Fault": "hang"})
            assert time.monotonic() - started < 2
            assert (await client.get(RETURNS, headers=LOOP)).status_code == 200
    finally:
        server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(serving, 5)


# --- programmatic rules ---------------------------------------------------------------


async def test_rule_times_then_recovers(client: httpx.AsyncClient, app: FastAPI) -> None:
    app.state.faults.add(RETURNS, status=500, times=2)
    statuses = [(await client.get(RETURNS, headers=LOOP)).status_code for _ in range(3)]
    assert statuses == [500, 500, 200]


async def test_rule_targets_path_and_method(client: httpx.AsyncClient, app: FastAPI) -> None:
    app.state.faults.add("/allowlists", status=503, method="post")
    listed = await client.get("/api/v1/allowlists", headers=LOOP)
    created = await client.post("/api/v1/allowlists", json={}, headers=LOOP)
    other = await client.post("/api/v1/order/link", json={}, headers=LOOP)
    assert (listed.status_code, created.status_code, other.status_code) == (200, 503, 422)


async def test_rule_429_with_retry_after(client: httpx.AsyncClient, app: FastAPI) -> None:
    app.state.faults.add("/graphql", status=429, retry_after=0.25, times=1)
    body = {"query": "{ orders(input: {customerEmails: []}) { name } }"}
    limited = await client.post("/graphql", json=body, headers=TRACKING)
    assert limited.status_code == 429
    assert limited.headers["Retry-After"] == "0.25"
    assert (await client.post("/graphql", json=body, headers=TRACKING)).status_code == 200


async def test_rule_429_has_no_retry_after_unless_asked(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    app.state.faults.add(RETURNS, status=429, times=1)
    limited = await client.get(RETURNS, headers=LOOP)
    assert limited.status_code == 429
    assert "Retry-After" not in limited.headers
    added = await client.post(
        "/_sandbox/faults", json={"path_contains": RETURNS, "status": 429, "retry_after": 1}
    )
    assert added.status_code == 201
    assert (await client.get(RETURNS, headers=LOOP)).headers["Retry-After"] == "1"


async def test_rule_latency_hang_and_malformed(client: httpx.AsyncClient, app: FastAPI) -> None:
    faults: FaultController = app.state.faults
    faults.add("/2022-10/", latency_ms=50, times=1)
    assert await _timed(client, SEARCH, headers=TRACKING) >= 0.05
    faults.add("/2022-10/", malformed=True, times=1)
    with pytest.raises(json.JSONDecodeError):
        (await client.get(SEARCH, headers=TRACKING)).json()
    faults.add("/2022-10/", hang=True, times=1)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(client.get(SEARCH, headers=TRACKING), 0.2)
    assert (await client.get(SEARCH, headers=TRACKING)).status_code == 200


async def test_rules_clear(client: httpx.AsyncClient, app: FastAPI) -> None:
    app.state.faults.add(status=500)
    assert (await client.get(RETURNS, headers=LOOP)).status_code == 500
    assert (await client.get(SEARCH, headers=TRACKING)).status_code == 500
    app.state.faults.clear()
    assert (await client.get(RETURNS, headers=LOOP)).status_code == 200


def test_rule_arguments_are_checked() -> None:
    faults = FaultController()
    cases: list[dict[str, Any]] = [{"status": 42}, {"latency_ms": -1}, {"times": -1}]
    for kwargs in cases:
        with pytest.raises(ValueError):
            faults.add("/x", **kwargs)


async def test_rules_over_http(client: httpx.AsyncClient) -> None:
    added = await client.post(
        "/_sandbox/faults", json={"path_contains": RETURNS, "status": 502, "times": 1}
    )
    assert added.status_code == 201
    assert added.json()["rules"][0]["status"] == 502
    assert (await client.get(RETURNS, headers=LOOP)).status_code == 502
    assert (await client.get(RETURNS, headers=LOOP)).status_code == 200
    await client.post("/_sandbox/faults", json={"status": 500})
    assert (await client.get("/_sandbox/faults")).json()["rules"][1]["status"] == 500
    assert (await client.delete("/_sandbox/faults")).json() == {"cleared": 2}
    assert (await client.get(RETURNS, headers=LOOP)).status_code == 200
    for bad in ({"status": "teapot"}, {"colour": "red"}, {"times": -2}):
        response = await client.post("/_sandbox/faults", json=bad)
        assert response.status_code == 422
        assert response.json()["message"]


async def test_control_routes_are_never_faulted(client: httpx.AsyncClient, app: FastAPI) -> None:
    app.state.faults.add(status=500)
    response = await client.get("/_sandbox/health", headers={"X-Sandbox-Fault": "status=503"})
    assert response.status_code == 200


# --- request log ----------------------------------------------------------------------


async def test_request_log_and_counts(client: httpx.AsyncClient, app: FastAPI) -> None:
    await client.get(RETURNS, params={"customer_email": "a@example.com"}, headers=LOOP)
    await client.get(RETURNS, headers=LOOP)
    await client.get(SEARCH)  # refused requests are still seen
    await client.get("/_sandbox/health")
    counts = (await client.get("/_sandbox/requests")).json()
    assert counts == {RETURNS: 2, SEARCH: 1}
    log = app.state.faults.request_log
    assert [(m, p, q) for m, p, q, _ in log] == [
        ("GET", RETURNS, "customer_email=a%40example.com"),
        ("GET", RETURNS, ""),
        ("GET", SEARCH, ""),
    ]
    assert log[0][3] <= log[1][3] <= log[2][3] <= time.monotonic()
    assert (await client.delete("/_sandbox/requests")).status_code == 200
    assert (await client.get("/_sandbox/requests")).json() == {}


async def test_request_log_shows_concurrency(world: World) -> None:
    app = make_app(world, sandbox_latency_ms=50)
    async with client_for(app) as client:
        await asyncio.gather(*(client.get(RETURNS, headers=LOOP) for _ in range(4)))
    stamps = [t for _, _, _, t in app.state.faults.request_log]
    # All four arrived before the first could have finished: they were in flight together.
    assert len(stamps) == 4 and max(stamps) - min(stamps) < 0.05


async def test_header_failure_leaves_rules_unfired(client: httpx.AsyncClient, app: FastAPI) -> None:
    app.state.faults.add(RETURNS, status=500, times=1)
    asked = await client.get(RETURNS, headers={**LOOP, "X-Sandbox-Fault": "status=503"})
    assert asked.status_code == 503
    assert (await client.get(RETURNS, headers=LOOP)).status_code == 500
    assert (await client.get(RETURNS, headers=LOOP)).status_code == 200


def test_request_log_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("loopdesk.sandbox.faults.MAX_LOG", 10)
    faults = FaultController()
    for _ in range(25):
        faults.record("GET", "/graphql", "")
    assert len(faults.request_log) <= 10
    assert faults.request_counts() == {"/graphql": 25}


async def test_rule_can_target_the_query(client: httpx.AsyncClient, app: FastAPI) -> None:
    app.state.faults.add("customer_email=bob", status=503)
    bob = await client.get(RETURNS, params={"customer_email": "bob@example.com"}, headers=LOOP)
    ann = await client.get(RETURNS, params={"customer_email": "ann@example.com"}, headers=LOOP)
    assert (bob.status_code, ann.status_code) == (503, 200)

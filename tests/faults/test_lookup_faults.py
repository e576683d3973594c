"""The faults matrix: every upstream failure the sandbox can make, through the lookup API.

Each case runs against two apps: a real `loopdesk serve` process pointed at a
`loopdesk sandbox` process (faults set through the sandbox's control routes), and the
in-process app with its own sandbox (no sockets, so no socket timeouts either). And for
two customers: one never fetched, looked up with `Cache-Control: no-cache`; one the store
already holds, looked up plainly (the TTL is 0, so the lookup still goes to Loop and
falls back on the store). Whatever fails, the lookup answers 200 with what it could get,
says what is missing in `meta.errors`, sets `meta.stale` when stored data stands in, and
answers within the bound the settings give.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from bench.server import free_port, wait_until_up

from loopdesk.api.app import create_app
from loopdesk.settings import Settings
from tests.faults.tally import TALLY
from tests.faults.world import LETTERS, Customer, write_world

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timing]

API_KEY = "faults-matrix-key-0123456789"
# Small on purpose: a hang must cost little, and the bound below must hold.
HTTP = {
    "http_connect_timeout_s": 0.5,
    "http_read_timeout_s": 0.4,
    "http_retry_attempts": 3,
    "http_retry_timeout_s": 1.0,
    "http_max_retry_after_s": 0.3,
    # Loop's 429s may stretch a call past the retry budget, up to this long in all.
    "loop_rate_limit_backoff_s": 0.1,
    "loop_rate_limit_max_backoff_s": 0.2,
    "loop_rate_limit_max_wait_s": 0.6,
}
RETRY_BUDGET_S = HTTP["http_retry_timeout_s"]
# The README's worst case: two calls in a row (a returns list, then its returns' notes),
# each within the retry budget.
WORST_CASE_S = 2 * RETRY_BUDGET_S
# What a loaded machine adds to a lookup besides the upstream calls.
SLACK_S = 1.0
COMMON = {
    "lookup_ttl_s": 0,  # a stored customer still goes upstream, then falls back
    "loop_rate_limit_per_minute": 100_000,
    "log_level": "WARNING",
}


@dataclass(frozen=True)
class Case:
    """One fault and what it takes away: address letters, notes of returns, orders."""

    name: str
    fault: dict[str, Any]
    lists: frozenset[str] = frozenset()
    notes: frozenset[str] = frozenset()
    orders: bool = False
    code: str = "loop_unavailable"
    slow_lists_ms: int = 0  # every returns list answers, this late

    def rules(self, customer: Customer) -> list[dict[str, Any]]:
        rules = [{"path_contains": customer.list_target(x), **self.fault} for x in self.lists]
        rules += [{"path_contains": customer.notes_target(x), **self.fault} for x in self.notes]
        if self.orders:
            rules.append({"path_contains": "/graphql", **self.fault})
        if self.slow_lists_ms:
            rules += [
                {"path_contains": customer.list_target(x), "latency_ms": self.slow_lists_ms}
                for x in LETTERS
            ]
        return rules

    @property
    def bound_s(self) -> float:
        """One failing call (a list, notes after a quick list, or the orders alongside)
        costs one retry budget; slow lists add their latency before the notes start.
        Never more than the README's worst case."""
        return min(RETRY_BUDGET_S + self.slow_lists_ms / 1000, WORST_CASE_S) + SLACK_S


ALL = frozenset(LETTERS)
CASES = [
    Case("returns-500", {"status": 500}, lists=ALL),
    Case("returns-502", {"status": 502}, lists=ALL),
    Case("returns-503", {"status": 503}, lists=ALL),
    Case(
        "returns-429-retry-after",
        {"status": 429, "retry_after": 0.2},
        lists=ALL,
        code="loop_rate_limited",
    ),
    Case("returns-429-bare", {"status": 429}, lists=ALL, code="loop_rate_limited"),
    Case("returns-hang", {"hang": True}, lists=ALL),
    Case("returns-malformed", {"malformed": True}, lists=ALL, code="invalid_upstream_data"),
    Case("returns-html-502", {"html": True}, lists=ALL),
    Case(
        "returns-html-200",
        {"html": True, "status": 200},
        lists=ALL,
        code="invalid_upstream_data",
    ),
    Case("one-address-503", {"status": 503}, lists=frozenset("c")),
    Case("one-address-hang", {"hang": True}, lists=frozenset("b")),
    Case("notes-500-one-return", {"status": 500}, notes=frozenset("a")),
    Case("notes-hang-one-return", {"hang": True}, notes=frozenset("b")),
    # Close to the worst case: the lists take most of a read timeout, then notes hang.
    Case("slow-lists-then-notes-hang", {"hang": True}, notes=frozenset("c"), slow_lists_ms=300),
    Case("tracking-503", {"status": 503}, orders=True),
    Case("tracking-hang", {"hang": True}, orders=True),
    Case("tracking-html-502", {"html": True}, orders=True),
    Case("tracking-malformed", {"malformed": True}, orders=True, code="invalid_upstream_data"),
    Case("returns-401", {"status": 401}, lists=ALL, code="loop_unauthorized"),
    Case("everything-503", {"status": 503}, lists=ALL, orders=True),
]
VARIANTS = ("cold", "warm")


def customer_for(case: Case, variant: str) -> Customer:
    return Customer(CASES.index(case) * len(VARIANTS) + VARIANTS.index(variant))


async def lookup(
    service: httpx.AsyncClient, customer: Customer, *, no_cache: bool
) -> httpx.Response:
    headers = {"Authorization": f"Bearer {API_KEY}"}
    if no_cache:
        headers["Cache-Control"] = "no-cache"
    params = [("email", e) for e in customer.emails]
    return await service.get("/v1/customers/lookup", params=params, headers=headers)


@dataclass
class Harness:
    mode: str
    service: httpx.AsyncClient
    sandbox: httpx.AsyncClient
    source: str  # meta.source of a fresh answer
    clean: list[str] = field(default_factory=list)

    async def lookup(self, customer: Customer, *, no_cache: bool) -> httpx.Response:
        return await lookup(self.service, customer, no_cache=no_cache)

    async def add_faults(self, rules: list[dict[str, Any]]) -> None:
        for rule in rules:
            response = await self.sandbox.post("/_sandbox/faults", json=rule)
            assert response.status_code == 201, response.text

    async def clear_faults(self) -> None:
        assert (await self.sandbox.delete("/_sandbox/faults")).status_code == 200


@pytest.fixture(scope="module")
def world_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Two customers per case, and one to warm each app up with.
    return write_world(tmp_path_factory.mktemp("faults") / "world.json", len(CASES) * 2 + 1)


def _env(settings: dict[str, Any]) -> dict[str, str]:
    return {f"LOOPDESK_{name.upper()}": str(value) for name, value in settings.items()}


@pytest.fixture(scope="module")
def served(world_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """`loopdesk sandbox` and `loopdesk serve` processes: (service URL, sandbox URL)."""
    tmp = tmp_path_factory.mktemp("served")
    sandbox_port, service_port = free_port(), free_port()
    sandbox_url = f"http://127.0.0.1:{sandbox_port}"
    service_url = f"http://127.0.0.1:{service_port}"
    base = {k: v for k, v in os.environ.items() if not k.startswith("LOOPDESK_")}
    env = {
        **base,
        **_env({**HTTP, **COMMON}),
        "LOOPDESK_SANDBOX_RATE_LIMIT_PER_MINUTE": "0",
        "LOOPDESK_LOOP_API_TOKEN": "faults-loop-token",
        "LOOPDESK_LOOP_BASE_URL": sandbox_url,
        "LOOPDESK_ORDER_TRACKING_TOKEN": "faults-tracking-token",
        "LOOPDESK_ORDER_TRACKING_BASE_URL": sandbox_url,
        "LOOPDESK_DATABASE_URL": f"sqlite+aiosqlite:///{tmp}/served.db",
        "LOOPDESK_API_KEY": API_KEY,
    }
    cli = [sys.executable, "-m", "loopdesk"]
    commands: dict[str, list[str | Path]] = {
        "sandbox": [*cli, "sandbox", "--port", str(sandbox_port), "--sandbox-data", world_file],
        "serve": [*cli, "serve", "--port", str(service_port)],
    }
    procs: list[subprocess.Popen[bytes]] = []
    # Logs to files: a pipe nobody reads fills up and then blocks the server writing to it.
    with contextlib.ExitStack() as stack:
        for name, command in commands.items():
            log = stack.enter_context((tmp / f"{name}.log").open("wb"))
            procs.append(subprocess.Popen(command, env=env, cwd=tmp, stderr=log, stdout=log))
        try:
            wait_until_up(f"{sandbox_url}/_sandbox/health", procs[0])
            wait_until_up(f"{service_url}/healthz", procs[1])
            yield service_url, sandbox_url
        finally:
            for proc in procs:
                proc.terminate()
            for proc in procs:
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


@pytest_asyncio.fixture(scope="module", loop_scope="module", params=["served", "in-process"])
async def harness(
    request: pytest.FixtureRequest, world_file: Path, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Harness]:
    timeout = httpx.Timeout(8.0)
    if request.param == "served":
        service_url, sandbox_url = request.getfixturevalue("served")
        async with (
            httpx.AsyncClient(base_url=service_url, timeout=timeout) as service,
            httpx.AsyncClient(base_url=sandbox_url, timeout=timeout) as sandbox,
        ):
            yield await _warmed(Harness("served", service, sandbox, source="loop"))
        return
    tmp = tmp_path_factory.mktemp("in-process")
    settings = Settings(
        **HTTP,
        **COMMON,
        database_url=f"sqlite+aiosqlite:///{tmp}/in-process.db",
        sandbox_data=world_file,
        sandbox_rate_limit_per_minute=0,
        api_key=API_KEY,
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        sandbox_app = app.state.upstream.sandbox
        async with (
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://loopdesk", timeout=timeout
            ) as service,
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=sandbox_app),
                base_url="http://sandbox",
                timeout=timeout,
            ) as sandbox,
        ):
            yield await _warmed(Harness("in-process", service, sandbox, source="sandbox"))


async def _warmed(harness: Harness) -> Harness:
    """One clean lookup first, so no case pays for the app's first request."""
    response = await harness.lookup(Customer(len(CASES) * 2), no_cache=True)
    assert response.status_code == 200 and not response.json()["meta"]["errors"]
    return harness


def _issues(meta: dict[str, Any]) -> set[tuple[str, str | None]]:
    """The failed upstream requests (not the answer-wide `lookup` entry)."""
    return {
        (e["source"], e.get("email") or e.get("returnId"))
        for e in meta["errors"]
        if e["source"] != "lookup"
    }


def _nothing_fetched(meta: dict[str, Any]) -> bool:
    """The answer says outright that no returns could be fetched nor were stored."""
    return any(e["source"] == "lookup" and e["code"] == "nothing_fetched" for e in meta["errors"])


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
async def test_lookup_under_fault(harness: Harness, case: Case, variant: str) -> None:
    customer = customer_for(case, variant)
    warm = variant == "warm"
    first: dict[str, Any] = {}
    if warm:  # the store holds this customer from an earlier, clean lookup
        first = (await harness.lookup(customer, no_cache=True)).json()
        assert first["meta"]["source"] == harness.source and not first["meta"]["errors"]
    await harness.add_faults(case.rules(customer))
    try:
        started = time.monotonic()
        response = await harness.lookup(customer, no_cache=not warm)
        elapsed = time.monotonic() - started
    finally:
        await harness.clear_faults()
    TALLY.record(harness.mode, response.status_code, elapsed, case.bound_s)

    assert response.status_code == 200, response.text
    assert elapsed <= case.bound_s, f"{case.name}: {elapsed:.2f}s, bound {case.bound_s:.2f}s"
    body = response.json()
    meta = body["meta"]

    expected = {("returns", customer.email(x)) for x in case.lists}
    expected |= {("notes", customer.return_id(x)) for x in case.notes}
    expected |= {("orders", None)} if case.orders else set()
    assert _issues(meta) == expected, meta["errors"]
    every_list_failed = case.lists == ALL
    assert _nothing_fetched(meta) is (every_list_failed and not warm), meta["errors"]
    codes = {e["code"] for e in meta["errors"] if e["source"] != "lookup"}
    assert codes == {case.code}, meta["errors"]
    for error in meta["errors"]:  # a readable message: no defect, no proxy's HTML
        assert error["message"] and "unexpected" not in error["message"], error
        assert "<" not in error["message"], error

    # What Loop could still give, and what the store stands in for when it holds it.
    kept = LETTERS if warm else [x for x in LETTERS if x not in case.lists]
    assert [r["id"] for r in body["returns"]] == [customer.return_id(x) for x in kept]
    notes = {r["id"]: [n["content"] for n in r["notes"]] for r in body["returns"]}
    for x in kept:
        missing = x in case.notes and not warm
        want = [] if missing else [f"note on {customer.return_id(x)}"]
        assert notes[customer.return_id(x)] == want, x
    orders = sorted(o["name"] for o in body["orders"])
    assert orders == ([] if case.orders and not warm else sorted(map(customer.order_name, LETTERS)))

    stood_in = warm and bool(expected)
    assert meta["stale"] is (every_list_failed or stood_in)
    assert meta["source"] == ("store" if every_list_failed else harness.source)
    if warm and meta["stale"]:  # as of the clean lookup that filled the store, not of now
        at = datetime.fromisoformat
        assert at(first["meta"]["fetchedAt"]) <= at(meta["asOf"]) < at(meta["fetchedAt"])
    elif not meta["stale"]:
        assert meta["asOf"] == meta["fetchedAt"]


async def test_lookup_with_loop_unreachable(tmp_path: Path) -> None:
    """Both APIs refuse the connection (nothing listens): still a 200 that says so."""
    closed = f"http://127.0.0.1:{free_port()}"
    settings = Settings(
        **HTTP,
        **COMMON,
        database_url=f"sqlite+aiosqlite:///{tmp_path}/unreachable.db",
        loop_api_token="faults-loop-token",
        loop_base_url=closed,
        order_tracking_token="faults-tracking-token",
        order_tracking_base_url=closed,
        api_key=API_KEY,
    )
    customer = Customer(0)
    app = create_app(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://loopdesk"
        ) as service,
    ):
        started = time.monotonic()
        response = await lookup(service, customer, no_cache=True)
        elapsed = time.monotonic() - started
    bound = RETRY_BUDGET_S + SLACK_S
    TALLY.record("unreachable", response.status_code, elapsed, bound)
    assert response.status_code == 200, response.text
    assert elapsed <= bound
    meta = response.json()["meta"]
    expected = {("returns", e) for e in customer.emails} | {("orders", None)}
    assert _issues(meta) == expected and _nothing_fetched(meta)
    assert {e["code"] for e in meta["errors"] if e["source"] != "lookup"} == {"loop_unavailable"}
    assert all("could not be reached" in e["message"] for e in meta["errors"])
    assert meta["stale"] is True and response.json()["returns"] == []

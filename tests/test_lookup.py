"""The customer lookup end to end against the sandbox, including its faults."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from loopdesk.customers.lookup import LookupOptions, lookup_customer
from loopdesk.errors import InvalidInput
from loopdesk.loop.returns import LoopReturnsClient
from loopdesk.loop.tracking import OrderTrackingClient
from loopdesk.sandbox.app import create_sandbox_app
from loopdesk.sandbox.seed import demo_emails
from loopdesk.settings import Settings

TOKEN = "sandbox-test-token"


pytestmark = pytest.mark.usefixtures("instant_retries")


def make_settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "loop_api_token": TOKEN,
        "http_connect_timeout_s": 0.2,
        "http_read_timeout_s": 0.5,
        "http_retry_attempts": 2,
        "sandbox_rate_limit_per_minute": 0,
        **overrides,
    }
    return Settings(**values)


class Rig:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.sandbox = create_sandbox_app(settings)
        transport = httpx.ASGITransport(app=self.sandbox)
        base = "http://sandbox"
        self.returns = LoopReturnsClient(
            base_url=base, token=TOKEN, settings=settings, transport=transport
        )
        self.tracking = OrderTrackingClient(
            base_url=base, token=TOKEN, settings=settings, transport=transport
        )

    @property
    def faults(self) -> Any:
        return self.sandbox.state.faults

    @property
    def world(self) -> Any:
        return self.sandbox.state.world

    async def lookup(self, emails: list[str]) -> Any:
        return await lookup_customer(
            emails, self.returns, self.tracking, LookupOptions.from_settings(self.settings)
        )

    def requests(self, contains: str = "") -> list[Any]:
        return [r for r in self.faults.request_log if contains in r[1]]


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    r = Rig(make_settings())
    yield r
    await r.returns.aclose()
    await r.tracking.aclose()


def _lower(emails: list[str]) -> set[str]:
    return {e.lower() for e in emails}


async def test_demo_customer_view(rig: Rig) -> None:
    emails = demo_emails()
    view = await rig.lookup(emails)
    assert view.meta.errors == []
    assert len(view.returns) >= 2
    ids = [r.id for r in view.returns]
    assert len(ids) == len(set(ids))
    stamps = [r.updated for r in view.returns]
    assert stamps == sorted(stamps, reverse=True)
    assert all(r.customerEmail.lower() in _lower(emails) for r in view.returns)
    # notes are attached to their return, as the sandbox holds them
    for ret in view.returns:
        held = rig.world.notes.get(ret.id, [])
        assert [n.id for n in ret.notes] == [
            str(n["id"]) for n in sorted(held, key=lambda n: n["created_at"], reverse=True)
        ]
    assert 1 <= len(view.orders) <= 10
    body = view.to_json()
    assert set(body) == {"returns", "orders", "facts", "meta"}
    assert set(body["returns"][0]) == {
        "id",
        "state",
        "updatedAt",
        "createdAt",
        "editedAt",
        "currency",
        "url",
        "outcome",
        "customerEmail",
        "order",
        "return",
        "exchange",
        "costBreakdown",
        "shipping",
        "notes",
    }
    assert set(body["orders"][0]) == {"id", "name", "shipments", "shipmentUrl"}


async def test_one_list_per_address_and_one_notes_request_per_return(rig: Rig) -> None:
    emails = demo_emails()
    view = await rig.lookup([*emails, emails[0].upper()])
    assert len(rig.requests("/api/v2/returns")) == len(emails)
    notes_paths = [r[1] for r in rig.requests("/notes")]
    assert len(notes_paths) == len(set(notes_paths)) == len(view.returns)
    assert len(rig.requests("/graphql")) == 1


async def test_requests_run_concurrently_and_notes_start_early() -> None:
    rig = Rig(make_settings(sandbox_latency_ms=0))
    emails = demo_emails()
    slow_email = emails[1].split("@")[0]
    rig.faults.add(f"customer_email={slow_email}", latency_ms=400)
    rig.faults.add("/notes", latency_ms=100)
    rig.faults.add("/graphql", latency_ms=100)
    started = time.monotonic()
    view = await rig.lookup(emails)
    elapsed = time.monotonic() - started
    assert view.meta.errors == []
    # one slow list (0.4 s) then its notes (0.1 s): far below the sum of every latency
    total_latency = 0.4 + 0.1 * (len(view.returns) + 1)
    assert elapsed < 0.4 + 0.1 + 0.25 < total_latency
    slow_list_arrival = next(r[3] for r in rig.requests("/api/v2/returns") if slow_email in r[2])
    first_notes_arrival = min(r[3] for r in rig.requests("/notes"))
    assert first_notes_arrival - slow_list_arrival < 0.3  # did not wait for the slow list
    await rig.returns.aclose()
    await rig.tracking.aclose()


async def test_work_beside_the_lookup_waits_until_its_first_requests_are_sent() -> None:
    """The service's store read runs beside the lookup; it starts once the first
    upstream requests are out, so its CPU does not delay them."""
    rig = Rig(make_settings(sandbox_latency_ms=50))
    emails = demo_emails()
    sent = asyncio.Event()
    seen: list[list[str]] = []

    async def beside() -> None:
        await sent.wait()
        seen.append([r[1] for r in rig.requests()])

    task = asyncio.create_task(beside())  # created first, as the service does
    view = await lookup_customer(
        emails,
        rig.returns,
        rig.tracking,
        LookupOptions.from_settings(rig.settings),
        requests_sent=sent,
    )
    await task
    assert view.meta.errors == [] and view.returns
    (paths,) = seen
    assert sorted(paths) == sorted(["/graphql"] + ["/api/v2/returns"] * len(emails))
    await rig.returns.aclose()
    await rig.tracking.aclose()


async def test_the_returns_lists_leave_before_the_orders_query(rig: Rig) -> None:
    # The notes requests wait on the lists; the orders need nothing more after theirs.
    await rig.lookup(demo_emails())
    first = [r[1] for r in rig.requests()][: len(demo_emails()) + 1]
    assert first == ["/api/v2/returns"] * len(demo_emails()) + ["/graphql"]


async def test_profile_without_email_makes_no_request(rig: Rig) -> None:
    with pytest.raises(InvalidInput, match="does not have any email addresses"):
        await rig.lookup(["", "  "])
    assert rig.requests() == []


async def test_notes_failure_keeps_returns(rig: Rig) -> None:
    rig.faults.add("/notes", status=500)
    view = await rig.lookup(demo_emails())
    assert view.returns
    assert all(r.notes == [] for r in view.returns)
    assert {e.source for e in view.meta.errors} == {"notes"}
    assert all(e.code == "loop_unavailable" and e.returnId for e in view.meta.errors)


async def test_one_address_failing_keeps_the_others(rig: Rig) -> None:
    emails = demo_emails()
    rig.faults.add(f"customer_email={emails[1].split('@')[0]}", status=503)
    view = await rig.lookup(emails)
    assert [e.source for e in view.meta.errors] == ["returns"]
    assert view.meta.errors[0].email == emails[1]
    assert view.returns and all(r.customerEmail.lower() != emails[1].lower() for r in view.returns)
    assert view.orders


async def test_orders_failure_keeps_returns(rig: Rig) -> None:
    rig.faults.add("/graphql", status=500)
    view = await rig.lookup(demo_emails())
    assert view.returns and view.orders == []
    assert [e.source for e in view.meta.errors] == ["orders"]


async def test_rate_limited_once_then_served(rig: Rig) -> None:
    rig.faults.add("/api/v2/returns", status=429, retry_after=0.01, times=1)
    view = await rig.lookup(demo_emails())
    assert view.meta.errors == []
    assert len(rig.requests("/api/v2/returns")) == len(demo_emails()) + 1


async def test_malformed_body_is_reported(rig: Rig) -> None:
    rig.faults.add("/api/v2/returns", malformed=True, times=1)
    view = await rig.lookup(demo_emails())
    assert [e.code for e in view.meta.errors] == ["invalid_upstream_data"]


async def test_hang_past_the_timeout_is_reported_not_raised() -> None:
    rig = Rig(make_settings(http_connect_timeout_s=0.05, http_read_timeout_s=0.1))
    rig.faults.add("/graphql", hang=True)
    started = time.monotonic()
    view = await rig.lookup(demo_emails())
    assert time.monotonic() - started < 3
    assert [e.source for e in view.meta.errors] == ["orders"]
    assert "did not answer in time" in view.meta.errors[0].message
    assert view.returns
    await rig.returns.aclose()
    await rig.tracking.aclose()


async def test_lookback_window_and_per_address_limit() -> None:
    rig = Rig(make_settings(lookup_returns_per_email=1))
    emails = demo_emails()
    view = await rig.lookup(emails)
    assert len(view.returns) <= len(emails)
    queries = [r[2] for r in rig.requests("/api/v2/returns")]
    assert all("limit=1" in q and "filter=updated_at" in q for q in queries)
    await rig.returns.aclose()
    await rig.tracking.aclose()


async def test_one_bad_field_keeps_the_return_and_says_so(rig: Rig) -> None:
    """A `null` among the items, money reading "N/A", a `+0000` offset: the return is
    still in the sidebar, the bad fields read blank and `meta.errors` names them."""
    before = await rig.lookup(demo_emails())
    target = before.returns[0]
    raw = rig.world.returns[target.id]
    raw["line_items"] = [None, *raw["line_items"]]
    raw["exchanges"] = [*raw["exchanges"], None]
    raw["refund"] = "N/A"
    raw["updated_at"] = raw["updated_at"].replace("+00:00", "+0000")
    raw["return_total"] = "29.9"
    view = await rig.lookup(demo_emails())
    assert [r.id for r in view.returns] == [r.id for r in before.returns]
    shown = next(r for r in view.returns if r.id == target.id)
    assert shown.updatedAt == target.updatedAt and shown.costBreakdown.refund == "0.00"
    assert len(shown.return_.items) == len(target.return_.items)
    assert len(shown.exchange.items) == len(target.exchange.items)
    assert shown.return_.total == "29.90"
    issues = [(e.source, e.returnId, e.field, e.code) for e in view.meta.errors]
    assert sorted(issues) == sorted(
        [
            ("fields", target.id, field, "invalid_upstream_data")
            for field in ("line_items[0]", f"exchanges[{len(raw['exchanges']) - 1}]", "refund")
        ]
    )
    assert all(e.email is None and target.id in e.message for e in view.meta.errors)


class _SendsMoreThanAsked:
    """A returns source whose list ignores `limit` (as an upstream might)."""

    def __init__(self, client: LoopReturnsClient) -> None:
        self.client = client

    async def list_returns(self, customer_email: str, *, since: Any, limit: int) -> Any:
        return await self.client.list_returns(customer_email, since=since, limit=50)

    async def list_notes(self, return_id: str) -> list[Any]:
        return await self.client.list_notes(return_id)


async def test_returns_per_address_bound_holds_whatever_the_upstream_sends(rig: Rig) -> None:
    everything = await lookup_customer(demo_emails(), rig.returns, None, LookupOptions())
    bounded = await lookup_customer(
        demo_emails(),
        _SendsMoreThanAsked(rig.returns),
        None,
        LookupOptions(returns_per_email=2),
    )
    for email in demo_emails():
        mine = [r for r in everything.returns if r.customerEmail.lower() == email]
        kept = [r for r in bounded.returns if r.customerEmail.lower() == email]
        assert len(mine) > 2 and len(kept) == 2
        assert [r.id for r in kept] == [r.id for r in mine[:2]]  # the newest two

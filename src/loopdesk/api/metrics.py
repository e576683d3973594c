"""Prometheus metrics: one registry per app, so tests and workers never collide."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

if TYPE_CHECKING:
    from loopdesk.customers.service import CustomerService
    from loopdesk.customers.webhook_desk import WebhookDesk
    from loopdesk.runtime import Upstream


class UpstreamCollector(Collector):
    """Reads the Loop clients' own counters at scrape time (every attempt counted)."""

    def __init__(self, upstream: Upstream) -> None:
        self._upstream = upstream

    def collect(self) -> Iterator[CounterMetricFamily]:
        family = CounterMetricFamily(
            "loopdesk_upstream_calls",
            "Upstream attempts by endpoint and status",
            labels=["endpoint", "status"],
        )
        clients = [self._upstream.returns, self._upstream.tracking]
        for client in clients:
            if client is None:
                continue
            for (endpoint, outcome), count in client.stats.calls.items():
                family.add_metric([endpoint, outcome], count)
        yield family


class LookupWritesCollector(Collector):
    """Lookups answered whose store write afterwards failed (each one also logged)."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[CounterMetricFamily]:
        customers = self._metrics.customers
        yield CounterMetricFamily(
            "loopdesk_lookup_store_writes_failed",
            "Lookups answered from Loop whose store write after the answer failed",
            value=customers.store_writes_failed if customers is not None else 0,
        )


class WebhooksPendingCollector(Collector):
    """Loop webhook events acknowledged and not applied yet (in this process)."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[GaugeMetricFamily]:
        desk = self._metrics.webhook_desk
        yield GaugeMetricFamily(
            "loopdesk_webhook_events_pending",
            "Loop webhook events acknowledged and waiting to be applied (this process)",
            value=desk.pending if desk is not None else 0,
        )


class Metrics:
    def __init__(self, upstream: Upstream) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "loopdesk_http_requests",
            "HTTP requests served",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "loopdesk_http_request_seconds",
            "HTTP request latency",
            ["route"],
            registry=self.registry,
        )
        self.lookups = Counter(
            "loopdesk_lookups",
            "Customer lookups by where they were served from",
            ["source"],
            registry=self.registry,
        )
        # Each answer's result (`received`, `duplicate`, `failed`, `refused`, or with
        # inline applying the outcome) and, applied after the answer, each outcome.
        self.webhooks = Counter(
            "loopdesk_webhook_events",
            "Loop webhook events by result",
            ["result"],
            registry=self.registry,
        )
        self.actions = Counter(
            "loopdesk_actions",
            "Actions by name and outcome",
            ["action", "ok"],
            registry=self.registry,
        )
        self.registry.register(UpstreamCollector(upstream))
        # The lookups' service, once the app has started.
        self.customers: CustomerService | None = None
        self.registry.register(LookupWritesCollector(self))
        self.webhook_desk: WebhookDesk | None = None
        self.registry.register(WebhooksPendingCollector(self))

    def webhook_applied(self, result: str) -> None:
        """An event applied after its answer: counted by its outcome."""
        if result != "received":  # still to apply: counted when it is
            self.webhooks.labels(result).inc()


class RequestMetrics:
    """Counts and times every HTTP request (plain ASGI: no per-request task overhead)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def record(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, record)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            self.metrics.requests.labels(scope["method"], route, str(status)).inc()
            self.metrics.latency.labels(route).observe(time.perf_counter() - started)

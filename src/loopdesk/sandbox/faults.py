"""Fault injection: what the sandbox does wrong on purpose, and the log of what it saw.

Three sources, combined per request: settings (latency on everything, a seeded error
rate), the `X-Sandbox-Fault` header of the request itself, and programmatic rules
(`add`) that target paths and can fire a limited number of times. Latencies add up;
for the failure itself the header wins over the rules (which then do not fire), and a
rule over the error rate.

A failing status normally answers instead of the request, which then never happens.
With `after` the request is served first and its answer replaced by the failure: the
upstream did the work (a return was submitted) but the client cannot know it.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import asdict, dataclass
from random import Random
from typing import Any

# How long `hang` waits for the client to give up; far beyond any sane read timeout.
HANG_SECONDS = 3600.0
MAX_LOG = 100_000


@dataclass
class FaultRule:
    path_contains: str = ""
    status: int | None = None
    latency_ms: int = 0
    retry_after: float | None = None  # sent as `Retry-After` only when set
    hang: bool = False
    malformed: bool = False
    times: int | None = None
    method: str | None = None
    fired: int = 0
    html: bool = False
    after: bool = False

    def matches(self, method: str, target: str) -> bool:
        """`target` is the path, plus `?query` when there is one."""
        if self.times is not None and self.fired >= self.times:
            return False
        if self.method is not None and self.method.upper() != method.upper():
            return False
        return self.path_contains in target

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Fault:
    """What to do to one request. All defaults: serve it normally."""

    latency_ms: float = 0.0
    status: int | None = None
    retry_after: float | None = None
    hang: bool = False
    malformed: bool = False
    # An HTML error page (a proxy's or load balancer's) instead of Loop's JSON.
    html: bool = False
    # Serve the request, then answer `status` instead of its real answer.
    after: bool = False

    @property
    def fails(self) -> bool:
        return self.status is not None or self.hang or self.malformed or self.html


class FaultController:
    def __init__(self, *, latency_ms: int = 0, error_rate: float = 0.0, seed: int = 1086) -> None:
        self.latency_ms = latency_ms
        self.error_rate = error_rate
        # Seeded so a test with an error rate sees the same failures on every run.
        self._rng = Random(seed)
        self.rules: list[FaultRule] = []
        # (method, path, query string, time.monotonic()) for every upstream request;
        # the oldest entries go once it is long, so a benchmark cannot grow it forever.
        self.request_log: list[tuple[str, str, str, float]] = []
        self._counts: Counter[str] = Counter()

    def add(
        self,
        path_contains: str = "",
        *,
        status: int | None = None,
        latency_ms: int = 0,
        retry_after: float | None = None,
        hang: bool = False,
        malformed: bool = False,
        times: int | None = None,
        method: str | None = None,
        html: bool = False,
        after: bool = False,
    ) -> None:
        """Apply a fault to requests whose path (or path?query) contains `path_contains`.

        Rules are tried in the order added and the first live one fires, so
        `add(status=500, times=2)` then `add()` means "fail twice, then succeed".
        `html=True` answers an HTML error page, with `status` (502 when not given).
        `after=True` (with `status`) serves the request first, then answers `status`.
        """
        if after and status is None and not html:
            raise ValueError("after needs a status: the answer that replaces the real one")
        if status is not None and not 100 <= status <= 599:
            raise ValueError(f"status must be an HTTP status code, not {status}")
        if latency_ms < 0 or (retry_after is not None and retry_after < 0):
            raise ValueError("latency_ms and retry_after cannot be negative")
        if times is not None and times < 0:
            raise ValueError("times cannot be negative")
        self.rules.append(
            FaultRule(
                path_contains,
                status,
                latency_ms,
                retry_after,
                hang,
                malformed,
                times,
                method,
                html=html,
                after=after,
            )
        )

    def clear(self) -> None:
        """Remove every rule (the settings' latency and error rate stay)."""
        self.rules.clear()

    def reset_log(self) -> None:
        self.request_log.clear()
        self._counts.clear()

    def record(self, method: str, path: str, query: str) -> None:
        self.request_log.append((method, path, query, time.monotonic()))
        self._counts[path] += 1
        if len(self.request_log) > MAX_LOG:
            del self.request_log[: MAX_LOG // 2]

    def request_counts(self) -> dict[str, int]:
        """Requests seen per path since the last reset (not trimmed with the log)."""
        return dict(self._counts)

    def decide(self, method: str, path: str, header: str | None, query: str = "") -> Fault:
        """The fault for one request; ValueError when the header cannot be read.

        Rules see the query string too, so one customer's lookups can be targeted
        (`customer_email=jane`) while the same path keeps working for others.
        """
        asked = parse_fault_header(header) if header else Fault()
        target = f"{path}?{query}" if query else path
        rule = None
        if not asked.fails:  # a failure asked for in the header leaves the rules untouched
            rule = next((r for r in self.rules if r.matches(method, target)), None)
        chosen = asked
        if rule is not None:
            rule.fired += 1
            chosen = Fault(
                0,
                rule.status,
                rule.retry_after,
                rule.hang,
                rule.malformed,
                html=rule.html,
                after=rule.after,
            )
        status = chosen.status
        if not chosen.fails and self.error_rate > 0 and self._rng.random() < self.error_rate:
            status = 500
        latency = self.latency_ms + asked.latency_ms + (rule.latency_ms if rule else 0)
        return Fault(
            latency,
            status,
            chosen.retry_after,
            chosen.hang,
            chosen.malformed,
            html=chosen.html,
            # The error rate's 500s fail before the work, like any plain failure.
            after=chosen.after and (chosen.status is not None or chosen.html),
        )


def parse_fault_header(value: str) -> Fault:
    """`latency=200; status=503`, `rate_limit`, `rate_limit=2`, `hang`, `malformed`, `html`,
    `after` (with a status: `status=500; after`).

    A 429 carries `Retry-After` only when asked for (`rate_limit=2`, or `status=429;
    retry_after=2`): Loop documents none, so a bare `rate_limit` sends none.
    """
    fields: dict[str, Any] = {}
    for directive in filter(None, (d.strip() for d in value.split(";"))):
        name, has_value, raw = (p.strip() for p in directive.partition("="))
        name = name.lower().replace("-", "_")
        if name in ("hang", "malformed", "html", "after") and not has_value:
            fields[name] = True
            continue
        if name == "rate_limit" and not has_value:
            fields["status"] = 429
            continue
        try:
            number = float(raw)
        except ValueError:
            raise ValueError(f"X-Sandbox-Fault: cannot read {directive!r}") from None
        if number < 0:
            raise ValueError(f"X-Sandbox-Fault: {directive!r} cannot be negative")
        if name == "latency":
            fields["latency_ms"] = number
        elif name == "status":
            if not (number.is_integer() and 100 <= number <= 599):
                raise ValueError(f"X-Sandbox-Fault: {directive!r} is not an HTTP status")
            fields["status"] = int(number)
        elif name == "rate_limit":
            fields["status"], fields["retry_after"] = 429, number
        elif name == "retry_after":
            fields["retry_after"] = number
        else:
            raise ValueError(f"X-Sandbox-Fault: unknown directive {directive!r}")
    if fields.get("after") and "status" not in fields and not fields.get("html"):
        raise ValueError("X-Sandbox-Fault: `after` needs a status (`status=500; after`)")
    return Fault(**fields)

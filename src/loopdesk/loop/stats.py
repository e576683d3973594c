"""In-memory call counters per endpoint, read by the metrics exporter."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass
class UpstreamStats:
    """Counts every attempt (retries included): that is what the upstream sees.

    `outcome` is the HTTP status as text ("200", "503") or the failure kind when no
    response arrived ("timeout", "connect_error", "transport_error").
    """

    calls: Counter[tuple[str, str]] = field(default_factory=Counter)
    retries: Counter[str] = field(default_factory=Counter)
    elapsed_ms: Counter[str] = field(default_factory=Counter)

    def record(self, endpoint: str, outcome: str, elapsed_ms: float) -> None:
        self.calls[(endpoint, outcome)] += 1
        self.elapsed_ms[endpoint] += round(elapsed_ms)

    def record_retry(self, endpoint: str) -> None:
        self.retries[endpoint] += 1

    def by_endpoint(self) -> dict[str, dict[str, int]]:
        """`{"returns.list": {"200": 3, "503": 1}}`, ready for a JSON or metrics export."""
        out: dict[str, dict[str, int]] = {}
        for (endpoint, outcome), count in sorted(self.calls.items()):
            out.setdefault(endpoint, {})[outcome] = count
        return out

"""Counts kept across the fault matrix and printed in pytest's terminal summary."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class FaultTally:
    cases: int = 0
    five_xx: int = 0
    over_bound: int = 0
    slowest_s: float = 0.0
    slowest_bound_s: float = 0.0
    by_mode: dict[str, int] = field(default_factory=dict)

    def record(self, mode: str, status: int, elapsed_s: float, bound_s: float) -> None:
        self.cases += 1
        self.by_mode[mode] = self.by_mode.get(mode, 0) + 1
        self.five_xx += status >= 500
        self.over_bound += elapsed_s > bound_s
        if elapsed_s > self.slowest_s:
            self.slowest_s, self.slowest_bound_s = elapsed_s, bound_s

    def summary(self) -> str:
        modes = ", ".join(f"{mode} {n}" for mode, n in sorted(self.by_mode.items()))
        return (
            f"fault cases run: {self.cases} ({modes}); 5xx seen: {self.five_xx}; "
            f"over their time bound: {self.over_bound}; slowest lookup "
            f"{self.slowest_s:.2f}s (bound {self.slowest_bound_s:.2f}s)"
        )


TALLY = FaultTally()

"""Routing decisions per second: the default rules' `decide` over prepared facts.

Facts are computed beforehand (seeded, varied, so every rule of the file is reached), and
only `decide` is timed: the rules' evaluation, the trace and the outcome, in-process.
"""

from __future__ import annotations

import random
import time
from typing import Any

from loopdesk.domain.facts import FACTS, FactValue
from loopdesk.routing.decide import decide
from loopdesk.routing.rules import CHANNELS, INTENTS, load_rules

SEED = 1086
STATES = ("", "open", "review", "closed", "cancelled", "expired")


def prepared_facts(count: int) -> list[dict[str, FactValue]]:
    rng = random.Random(SEED)

    def value(kind: type) -> FactValue:
        if kind is bool:
            return rng.random() < 0.3
        if kind is int:
            return rng.choice((0, 0, 1, 3, 6, 7, 9, 14, 30))
        return rng.choice(STATES)

    return [{f.name: value(f.type) for f in FACTS} for _ in range(count)]


def routing_decisions(seconds: float) -> dict[str, Any]:
    rules = load_rules()
    samples = prepared_facts(1000)
    channels = [random.Random(SEED + i).choice(CHANNELS) for i in range(len(samples))]
    intents = [random.Random(SEED - i).choice(INTENTS) for i in range(len(samples))]
    for facts, channel, intent in zip(samples, channels, intents, strict=True):  # warm-up
        decide(rules, facts, channel, intent)
    done = 0
    queues: dict[str, int] = {}
    started = time.perf_counter()
    deadline = started + seconds
    while time.perf_counter() < deadline:
        for facts, channel, intent in zip(samples, channels, intents, strict=True):
            queue = decide(rules, facts, channel, intent).outcome.queue
            queues[queue] = queues.get(queue, 0) + 1
        done += len(samples)
    elapsed = time.perf_counter() - started
    return {
        "routing_decisions_per_s": round(done / elapsed),
        "routing_decisions": {"count": done, "seconds": round(elapsed, 2), "queues": queues},
    }

"""A routing decision: the rules in order over one customer's facts, first match wins.

Rules run in file order. A rule with `continue = true` that matches adds its tags (and
note) and the next rules run; the first other rule that matches decides the queue and
priority, and the rules after it are not evaluated. When no rule decides, the outcome
is `FALLBACK` (queue `general`, priority 0, rule "(none)"). The trace lists every rule
in order with its result and the facts it read, so an agent can see why.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

import cel

from loopdesk.domain.facts import FactValue
from loopdesk.routing.rules import Rule, RuleSet

Result = Literal["matched", "no match", "not evaluated", "error"]
FALLBACK_RULE = "(none)"
FALLBACK_QUEUE = "general"


@dataclass(frozen=True)
class Outcome:
    queue: str
    priority: int
    tags: tuple[str, ...]
    note: str


class TraceStep(NamedTuple):
    """One rule's part in a decision (a tuple: a decision builds one per rule)."""

    rule: str
    position: int
    condition: str
    result: Result
    reads: dict[str, FactValue]
    continues: bool
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        step: dict[str, Any] = {
            "rule": self.rule,
            "position": self.position,
            "condition": self.condition,
            "result": self.result,
            "reads": self.reads,
            "continue": self.continues,
        }
        if self.error is not None:
            step["error"] = self.error
        return step


@dataclass(frozen=True)
class Decision:
    outcome: Outcome
    rule: str
    trace: tuple[TraceStep, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "queue": self.outcome.queue,
            "priority": self.outcome.priority,
            "rule": self.rule,
            "tags": list(self.outcome.tags),
            "note": self.outcome.note,
            "trace": [step.to_json() for step in self.trace],
        }


def decide(
    rules: RuleSet, facts: Mapping[str, FactValue], channel: str = "", intent: str = ""
) -> Decision:
    """The decision of `rules` for these facts, in this channel, for this intent."""
    values: dict[str, FactValue] = {**facts, "channel": channel, "intent": intent}
    context = cel.Context(values)
    tags: list[str] = []
    notes: list[str] = []
    trace: list[TraceStep] = []
    decided: Rule | None = None
    for rule in rules.rules:
        reads = {name: values[name] for name in rule.reads if name in values}
        if decided is not None:
            trace.append(_step(rule, "not evaluated", reads))
            continue
        try:
            matched = rule.program.execute(context) is True
        except (TypeError, RuntimeError, ValueError) as exc:
            # The start-up check makes this unlikely; a rule that cannot be evaluated
            # does not match, and the trace says why.
            trace.append(_step(rule, "error", reads, error=str(exc)))
            continue
        trace.append(_step(rule, "matched" if matched else "no match", reads))
        if not matched:
            continue
        tags.extend(rule.tags)
        if rule.note:
            notes.append(rule.note)
        if not rule.fall_through:
            decided = rule
    outcome = Outcome(
        queue=(decided.queue or FALLBACK_QUEUE) if decided else FALLBACK_QUEUE,
        priority=decided.priority if decided else 0,
        tags=tuple(dict.fromkeys(tags)),
        note=" ".join(notes),
    )
    return Decision(outcome, decided.name if decided else FALLBACK_RULE, tuple(trace))


def _step(
    rule: Rule, result: Result, reads: dict[str, FactValue], *, error: str | None = None
) -> TraceStep:
    return TraceStep(
        rule=rule.name,
        position=rule.position,
        condition=rule.condition,
        result=result,
        reads=reads,
        continues=rule.fall_through,
        error=error,
    )

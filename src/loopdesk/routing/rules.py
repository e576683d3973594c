"""The routing rules file: parsed, checked and compiled once, before any request.

A rules file is TOML with an ordered list of `[[rule]]` tables:

    [[rule]]
    name = "refund-waiting-a-week"
    condition = "refund_pending && refund_pending_days >= 7"   # CEL over facts, channel, intent
    queue = "returns-priority"
    priority = 90          # 0..1000, higher is more urgent; default 0
    tags = ["refund-late"]
    note = "Shown to the agent."

    [[rule]]
    name = "vip"
    condition = "vip"
    continue = true        # only adds its tags (and note), then the next rules run
    tags = ["vip"]

Conditions are CEL (`common-expression-language`). The check, at start-up and by
`loopdesk rules check`, refuses with the rule's name, position and reason:

- a TOML or CEL syntax error, a missing or unknown key, a bad value;
- an unknown identifier (a fact that does not exist; a macro's own variable is fine);
- a type error: each condition is evaluated over a fixed set of sample facts of the
  declared types (every boolean both ways, several numbers and strings, every channel
  and intent); an operator applied to the wrong types, an unknown function or a result
  that is not a bool fails the check;
- an unreachable rule: after a rule whose condition is the literal `true` (and does not
  continue), or with the same condition (ignoring spaces) as an earlier rule that does
  not continue.

A condition that is false on every sample is only a warning (`RuleSet.warnings`): it may
be a mistake CEL does not call an error (`==` between an int and a string is false).
"""

from __future__ import annotations

import difflib
import random
import re
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import cel
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from loopdesk.domain.facts import FACTS, FactValue
from loopdesk.errors import ConfigError

CHANNELS = ("chat", "email", "sms")
INTENTS = ("return_status", "start_return", "return_exception", "order_status", "agent", "other")
CONTEXT_NAMES: dict[str, type[bool] | type[int] | type[str]] = {"channel": str, "intent": str}
"""Besides the facts, what a condition can read: the conversation's channel and the
intent of the customer's message ("" when unknown)."""
DEFAULT_RULES = "default_rules.toml"
NAME_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_.:-]*$"

_MACRO_VARIABLE = r"\.\s*(?:all|exists|exists_one|map|filter)\s*\(\s*{}\s*,"
_STRING_OR_SPACE = re.compile(r"""('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")|\s+""")
_RULE_HEADER = re.compile(r"^[ \t]*\[\[[ \t]*rule[ \t]*\]\]", re.MULTILINE)
_PROBE_SEED = 9
_TYPE_NAMES = {bool: "bool", int: "int", str: "string"}
_RANDOM_PROBES = 48


@dataclass(frozen=True)
class RuleProblem:
    """What is wrong with one rule (or with the file, when `position` is 0)."""

    source: str
    position: int
    name: str
    line: int | None
    reason: str

    def __str__(self) -> str:
        where = f"{self.source}:{self.line}" if self.line else self.source
        if not self.position:
            return f"{where}: {self.reason}"
        return f'{where}: rule {self.position} "{self.name}": {self.reason}'


class RulesError(ConfigError):
    """A rules file that cannot be used; every problem found, in file order."""

    code = "rules_error"

    def __init__(self, problems: list[RuleProblem]) -> None:
        self.problems = problems
        super().__init__(
            "; ".join(str(p) for p in problems),
            details={"problems": [p.__dict__ for p in problems]},
        )


class _RuleSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)

    name: str = Field(min_length=1, max_length=128, pattern=NAME_PATTERN)
    condition: str = Field(min_length=1, max_length=4000)
    queue: str | None = Field(default=None, min_length=1, max_length=64, pattern=NAME_PATTERN)
    priority: int | None = Field(default=None, ge=0, le=1000)
    tags: list[str] = Field(default_factory=list, max_length=32)
    note: str = Field(default="", max_length=1000)
    fall_through: bool = Field(default=False, alias="continue")


@dataclass(frozen=True)
class Rule:
    name: str
    position: int
    line: int | None
    condition: str
    program: cel.Program
    reads: tuple[str, ...]
    queue: str | None
    priority: int
    tags: tuple[str, ...]
    note: str
    fall_through: bool


@dataclass(frozen=True)
class RuleSet:
    """A checked, compiled rules file."""

    source: str
    rules: tuple[Rule, ...]
    # Not errors, but likely mistakes: a condition that never held on the sample facts
    # (e.g. `refund_pending_days == "7"`: CEL compares an int and a string as unequal).
    warnings: tuple[RuleProblem, ...] = ()

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(r.name for r in self.rules)


def known_names() -> dict[str, type[bool] | type[int] | type[str]]:
    return {**{f.name: f.type for f in FACTS}, **CONTEXT_NAMES}


def load_rules(path: Path | None = None) -> RuleSet:
    """The rules of `path`, or the packaged default rules when None."""
    if path is None:
        text = resources.files("loopdesk.routing").joinpath(DEFAULT_RULES).read_text("utf-8")
        return parse_rules(text, source=f"(default) {DEFAULT_RULES}")
    try:
        text = path.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise RulesError([RuleProblem(str(path), 0, "", None, f"cannot read: {reason}")]) from None
    return parse_rules(text, source=str(path))


def parse_rules(text: str, *, source: str = "rules") -> RuleSet:
    """Parse, check and compile; `RulesError` with every problem found."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RulesError([RuleProblem(source, 0, "", None, f"not valid TOML: {exc}")]) from None
    problems: list[RuleProblem] = []
    unknown_keys = sorted(set(document) - {"rule"})
    if unknown_keys:
        problems.append(
            RuleProblem(source, 0, "", None, f"unknown top-level key(s): {', '.join(unknown_keys)}")
        )
    entries = document.get("rule", [])
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise RulesError([RuleProblem(source, 0, "", None, "`rule` must be [[rule]] tables")])
    if not entries:
        problems.append(RuleProblem(source, 0, "", None, "no [[rule]] in the file"))
    lines = [text.count("\n", 0, m.start()) + 1 for m in _RULE_HEADER.finditer(text)]
    names = known_names()
    probes = _probes(names)
    rules: list[Rule] = []
    warnings: list[RuleProblem] = []
    seen_names: set[str] = set()
    for index, entry in enumerate(entries):
        position = index + 1
        line = lines[index] if index < len(lines) else None
        label = entry.get("name") if isinstance(entry.get("name"), str) else "(unnamed)"

        def problem(
            reason: str, label: str = str(label), position: int = position, line: int | None = line
        ) -> None:
            problems.append(RuleProblem(source, position, label, line, reason))

        try:
            spec = _RuleSpec.model_validate(entry)
        except ValidationError as exc:
            for error in exc.errors():
                where = ".".join(str(p) for p in error["loc"]) or "rule"
                problem(f"`{where}`: {error['msg']}")
            continue
        if spec.name in seen_names:
            problem("another rule has the same name")
        seen_names.add(spec.name)
        shape = _shape_problem(spec)
        if shape:
            problem(shape)
            continue
        compiled = _compile(spec.condition, names, probes)
        if isinstance(compiled, str):
            problem(compiled)
            continue
        program, reads, ever_true = compiled
        if not ever_true:
            warnings.append(
                RuleProblem(
                    source,
                    position,
                    spec.name,
                    line,
                    "the condition was false for every sample of the facts: check the "
                    "types and values it compares",
                )
            )
        rules.append(
            Rule(
                name=spec.name,
                position=position,
                line=line,
                condition=spec.condition,
                program=program,
                reads=reads,
                queue=spec.queue,
                priority=spec.priority or 0,
                tags=tuple(dict.fromkeys(t.strip() for t in spec.tags if t.strip())),
                note=spec.note.strip(),
                fall_through=spec.fall_through,
            )
        )
    problems.extend(_unreachable(rules, source))
    if problems:
        problems.sort(key=lambda p: p.position)
        raise RulesError(problems)
    return RuleSet(source=source, rules=tuple(rules), warnings=tuple(warnings))


def _shape_problem(spec: _RuleSpec) -> str | None:
    if spec.fall_through:
        if spec.queue is not None or spec.priority is not None:
            return "a rule with `continue = true` only adds tags: no `queue` or `priority`"
        if not spec.tags and not spec.note:
            return "a rule with `continue = true` must add `tags` (or a `note`)"
    elif spec.queue is None:
        return "`queue` is required (or `continue = true` for a tag-only rule)"
    if any(not t.strip() or len(t) > 64 for t in spec.tags):
        return "`tags` must be non-empty strings of at most 64 characters"
    return None


def _compile(
    condition: str,
    names: dict[str, type[bool] | type[int] | type[str]],
    probes: list[cel.Context],
) -> tuple[cel.Program, tuple[str, ...], bool] | str:
    """The compiled program, the names it reads and whether it ever held on the
    samples; or the reason it is refused."""
    try:
        program = cel.compile(condition)
    except (ValueError, RuntimeError) as exc:
        return f"syntax error in condition: {_syntax_message(exc)}"
    variables = program.variables()
    unknown = [
        v
        for v in variables
        if v not in names and not re.search(_MACRO_VARIABLE.format(re.escape(v)), condition)
    ]
    if unknown:
        hints = []
        for name in unknown:
            close = difflib.get_close_matches(name, list(names), n=1)
            hints.append(f"`{name}`" + (f" (did you mean `{close[0]}`?)" if close else ""))
        return f"unknown fact {', '.join(hints)}"
    reads = tuple(v for v in variables if v in names)
    typed = ", ".join(f"{v} is {_TYPE_NAMES[names[v]]}" for v in reads)
    ever_true = False
    for probe in probes:
        try:
            result = program.execute(probe)
        except TypeError as exc:
            message = str(exc).split(". ")[0]  # the library's long hint helps less here
            return f"type error in condition: {message}" + (f" ({typed})" if typed else "")
        except (RuntimeError, ValueError) as exc:
            undefined = re.search(r"Undefined variable or function: '([^']+)'", str(exc))
            if undefined:
                return f"unknown function `{undefined[1]}`"
            return f"condition cannot be evaluated: {' '.join(str(exc).split())}"
        if not isinstance(result, bool):
            return f"type error in condition: it gives {type(result).__name__}, not a bool"
        ever_true = ever_true or result
    return program, reads, ever_true


def _syntax_message(exc: Exception) -> str:
    """`column 22: mismatched input '<EOF>' ...` from the parser's multi-line report."""
    text = str(exc).split("\n|")[0]
    located = re.search(r"<input>:(\d+):(\d+): (?:Syntax error: )?(.*)", text, re.DOTALL)
    if located:
        return f"column {located[2]}: {' '.join(located[3].split())}"
    return " ".join(text.split())


def _normalized(condition: str) -> str:
    """The condition without spaces outside string literals, for comparing."""
    text = _STRING_OR_SPACE.sub(lambda m: m.group(1) or "", condition)
    while text.startswith("(") and text.endswith(")") and _balanced(text[1:-1]):
        text = text[1:-1]
    return text


def _balanced(text: str) -> bool:
    depth = 0
    for char in _STRING_OR_SPACE.sub("", text):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth < 0:
            return False
    return depth == 0


def _unreachable(rules: list[Rule], source: str) -> list[RuleProblem]:
    problems = []
    always: Rule | None = None
    stops: dict[str, Rule] = {}
    for rule in rules:
        key = _normalized(rule.condition)
        if always is not None:
            reason = f'unreachable: rule {always.position} "{always.name}" before it always matches'
        elif key in stops:
            earlier = stops[key]
            reason = (
                f'unreachable: rule {earlier.position} "{earlier.name}" has the same '
                "condition and matches first"
            )
        else:
            reason = ""
        if reason:
            problems.append(RuleProblem(source, rule.position, rule.name, rule.line, reason))
        if not rule.fall_through:
            stops.setdefault(key, rule)
            if key == "true" and always is None:
                always = rule
    return problems


def _samples(kind: type[bool] | type[int] | type[str], name: str) -> list[FactValue]:
    if kind is bool:
        return [False, True]
    if kind is int:
        return [0, 1, 6, 7, 8, 30, 400]
    if name == "channel":
        return ["", *CHANNELS]
    if name == "intent":
        return ["", *INTENTS]
    return ["", "open", "review", "closed", "cancelled", "expired"]


def _probes(names: dict[str, type[bool] | type[int] | type[str]]) -> list[cel.Context]:
    """Sample facts for the type check: all lowest, all highest, each boolean flipped
    alone, and seeded random mixes (the same set on every run)."""
    domains = {name: _samples(kind, name) for name, kind in names.items()}
    low = {name: values[0] for name, values in domains.items()}
    high = {name: values[-1] for name, values in domains.items()}
    sets: list[dict[str, Any]] = [low, high]
    for name, kind in names.items():
        if kind is bool:
            sets.append({**low, name: True})
            sets.append({**high, name: False})
    rng = random.Random(_PROBE_SEED)  # noqa: S311 - sample data, not security
    sets.extend(
        {name: rng.choice(values) for name, values in domains.items()}
        for _ in range(_RANDOM_PROBES)
    )
    return [cel.Context(values) for values in sets]

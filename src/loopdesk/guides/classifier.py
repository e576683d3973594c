"""The intent classifier: which self-service guide a customer's message asks for.

A TF-IDF over character n-grams (typos, SMS shorthand, Spanish inflections) and word
n-grams, read by a logistic regression. It is trained from `intents.jsonl`, shipped in
the package, on first use and kept for the process: no pickles and no downloads, and a
few hundred utterances train in well under a second. Training is deterministic.

A fifth of each intent (chosen by a stable hash of the text) is held out of the model
the package uses, so the held-out report measures what customers get.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections import Counter
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any, Literal, get_args

Intent = Literal[
    "return_status", "start_return", "return_exception", "order_status", "agent", "other"
]
INTENTS: tuple[Intent, ...] = get_args(Intent)

# Below this the guide asks a clarifying question (with quick replies) rather than act
# on its best guess. Chosen from the held-out part: it asks about one message in nine
# and catches over half of the mistakes (see tests/test_intents.py).
CLARIFY_BELOW = 0.55

MAX_CHARS = 4000  # of a message, classified
HELD_OUT_FRACTION = 5  # one in five of each intent
_DIGITS = re.compile(r"\d+")


@dataclass(frozen=True, slots=True)
class Example:
    text: str
    intent: Intent


@dataclass(frozen=True, slots=True)
class Classified:
    intent: Intent
    confidence: float
    clarify: bool  # confidence below CLARIFY_BELOW: ask, do not act on the guess

    def as_json(self) -> dict[str, Any]:
        return {"intent": self.intent, "confidence": self.confidence, "clarify": self.clarify}


def load_examples() -> list[Example]:
    """The labelled set shipped in the package, in file order."""
    text = resources.files(__package__).joinpath("intents.jsonl").read_text(encoding="utf-8")
    examples = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        row = json.loads(line)
        if row.get("intent") not in INTENTS or not isinstance(row.get("text"), str):
            raise ValueError(f"intents.jsonl line {number}: bad row")
        examples.append(Example(row["text"], row["intent"]))
    return examples


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def split(examples: list[Example]) -> tuple[list[Example], list[Example]]:
    """(training, held out): per intent, the fifth whose text hashes lowest is held out,
    so the split is fixed whatever the file order and balanced across intents."""
    held: set[Example] = set()
    for intent in INTENTS:
        mine = sorted((e for e in examples if e.intent == intent), key=lambda e: _digest(e.text))
        held.update(mine[: len(mine) // HELD_OUT_FRACTION])
    return [e for e in examples if e not in held], [e for e in examples if e in held]


class Classifier:
    """A trained pipeline; `classify` takes a batch of texts."""

    def __init__(self, examples: list[Example]) -> None:
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import FeatureUnion, Pipeline

        features = FeatureUnion(
            [
                (
                    "chars",
                    TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True),
                ),
                ("words", TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)),
            ]
        )
        self._pipeline = Pipeline(
            [
                ("features", features),
                ("model", LogisticRegression(C=20.0, solver="newton-cg", max_iter=200)),
            ]
        )
        self._pipeline.fit([_normalise(e.text) for e in examples], [e.intent for e in examples])
        self._classes: list[Intent] = list(self._pipeline.classes_)

    def classify(self, texts: list[str]) -> list[Classified]:
        if not texts:
            return []
        results = []
        for row in self._pipeline.predict_proba([_normalise(t) for t in texts]):
            best = int(row.argmax())
            confidence = round(float(row[best]), 4)
            results.append(Classified(self._classes[best], confidence, confidence < CLARIFY_BELOW))
        return results


def _normalise(text: str) -> str:
    """Long emails: the customer's own words come before a quoted reply. Numbers
    (orders, tracking, amounts) become one token: their digits say nothing of intent."""
    kept = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith(">"):
            continue
        if stripped.lower().startswith(("on ", "el ")) and stripped.endswith(
            ("wrote:", "escribió:")
        ):
            break
        kept.append(line)
    # The customer's point is at the start; a very long message costs no more.
    return _DIGITS.sub("0", "\n".join(kept))[:MAX_CHARS]


_TRAINING = threading.Lock()


@cache
def _trained() -> Classifier:
    training, _ = split(load_examples())
    return Classifier(training)


def default_classifier() -> Classifier:
    """The package's classifier, trained once per process on the training part (threads
    asking at once wait for the one training)."""
    with _TRAINING:
        return _trained()


def classify(texts: list[str]) -> list[Classified]:
    return default_classifier().classify(texts)


@dataclass(frozen=True, slots=True)
class Report:
    per_intent: dict[Intent, tuple[int, int]]  # intent -> (right, total) on the held-out part
    asked: int  # held-out messages that would get a clarifying question
    wrong_but_asked: int  # of the misclassified ones, how many were asked about

    @property
    def total(self) -> int:
        return sum(total for _, total in self.per_intent.values())

    @property
    def accuracy(self) -> float:
        return sum(right for right, _ in self.per_intent.values()) / self.total

    def table(self) -> str:
        lines = [f"{'intent':<18}{'right':>7}{'total':>7}{'accuracy':>10}"]
        for intent, (right, total) in self.per_intent.items():
            lines.append(f"{intent:<18}{right:>7}{total:>7}{right / total:>10.1%}")
        right = sum(r for r, _ in self.per_intent.values())
        lines.append(f"{'overall':<18}{right:>7}{self.total:>7}{self.accuracy:>10.1%}")
        lines.append(
            f"clarifying question below {CLARIFY_BELOW}: {self.asked}/{self.total}"
            f" ({self.asked / self.total:.1%}); misclassified and asked: {self.wrong_but_asked}"
        )
        return "\n".join(lines)


def held_out_report() -> Report:
    """Accuracy per intent on the held-out fifth of the model trained on the rest."""
    _, held = split(load_examples())
    results = default_classifier().classify([e.text for e in held])
    right: Counter[Intent] = Counter()
    total: Counter[Intent] = Counter()
    asked = wrong_asked = 0
    for example, result in zip(held, results, strict=True):
        total[example.intent] += 1
        right[example.intent] += result.intent == example.intent
        asked += result.clarify
        wrong_asked += result.clarify and result.intent != example.intent
    return Report({i: (right[i], total[i]) for i in INTENTS}, asked, wrong_asked)


if __name__ == "__main__":  # python -m loopdesk.guides.classifier: the held-out report
    print(held_out_report().table())

"""Work the answer being prepared does not need, begun once that answer is sent.

A surface that sends answers opens a scope per request (`answering()`; the HTTP app's
`api.answer_first.AnswerFirst`) and releases it when the answer has left. Code below
it hands `after_answer` a starter for work that may follow the answer, such as a
lookup's store write: until the release, that work's CPU would delay the answer.
Outside any scope (the CLI, background tasks, tests calling a service directly), and
once the answer is sent, a starter runs at once. A scope always releases when it
closes, whatever happened to the request, so nothing handed to it is left unstarted.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

# A starter only schedules work (sets an event, creates a task): it must not raise.
Starter = Callable[[], None]


@dataclass
class _Scope:
    waiting: list[Starter] = field(default_factory=list)
    sent: bool = False

    def release(self) -> None:
        if self.sent:
            return
        self.sent = True
        waiting, self.waiting = self.waiting, []
        for start in waiting:
            start()


# Tasks made while answering copy the context, so they see their request's scope.
_current: ContextVar[_Scope | None] = ContextVar("loopdesk_answering", default=None)


def after_answer(start: Starter) -> None:
    """`start()` once the current answer is sent; now when there is none or it is sent."""
    scope = _current.get()
    if scope is None or scope.sent:
        start()
    else:
        scope.waiting.append(start)


@contextmanager
def answering() -> Iterator[Callable[[], None]]:
    """A scope for one answer; yields its release, called once the answer is sent."""
    scope = _Scope()
    token = _current.set(scope)
    try:
        yield scope.release
    finally:
        _current.reset(token)
        scope.release()

"""Work handed to `after_answer` begins once the answer is sent, and never later than
the close of its scope."""

from __future__ import annotations

import asyncio

from loopdesk.answering import after_answer, answering


def test_outside_an_answer_work_begins_at_once() -> None:
    begun: list[str] = []
    after_answer(lambda: begun.append("now"))
    assert begun == ["now"]


def test_work_waits_for_the_release_then_later_work_begins_at_once() -> None:
    begun: list[str] = []
    with answering() as release:
        after_answer(lambda: begun.append("a"))
        after_answer(lambda: begun.append("b"))
        assert begun == []
        release()
        assert begun == ["a", "b"]
        after_answer(lambda: begun.append("late"))  # the answer has left
        assert begun == ["a", "b", "late"]
        release()  # a second release starts nothing again
    assert begun == ["a", "b", "late"]


def test_a_scope_that_closes_unreleased_still_begins_its_work() -> None:
    begun: list[str] = []
    try:
        with answering():
            after_answer(lambda: begun.append("kept"))
            raise RuntimeError("the request failed before its answer")
    except RuntimeError:
        pass
    assert begun == ["kept"]
    after_answer(lambda: begun.append("after"))  # no scope any more
    assert begun == ["kept", "after"]


async def test_tasks_made_while_answering_hand_work_to_that_answer() -> None:
    begun: list[str] = []

    async def fetch() -> None:
        after_answer(lambda: begun.append("write"))

    with answering() as release:
        await asyncio.create_task(fetch())
        assert begun == []
        release()
    assert begun == ["write"]

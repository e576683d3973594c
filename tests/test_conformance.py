"""Walks the test data of Gladly's own Loop apps and checks our output field for field.

The peer's known slips (conformance/README.md) are corrected here, in one place.
"""

from __future__ import annotations

import json
import re
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from loopdesk.domain.normalize import normalize_notes, normalize_orders, normalize_returns
from loopdesk.domain.upstream_errors import action_failure_message, validation_errors
from tests.conftest import CONFORMANCE

APPS = ("loop_returns", "loop_returns-1.6")


def _cases(kind: str) -> list[Path]:
    """Case folders for a data pull or action across both app versions."""
    found = []
    for app in APPS:
        root = CONFORMANCE / app / kind / "_test_" / "data"
        if root.is_dir():
            found += sorted(p for p in root.iterdir() if p.is_dir())
    return found


def _ids(paths: list[Path]) -> list[str]:
    return [f"{p.relative_to(CONFORMANCE).parts[0]}/{p.parents[2].name}/{p.name}" for p in paths]


def _input(case: Path, name: str) -> Any | None:
    """A case's own input file, else the one its data pull or action shares.

    1.6's copy lacks some shared inputs; those come from 1.4's same data pull or action.
    """
    relative = case.relative_to(CONFORMANCE)
    older = CONFORMANCE / APPS[0] / Path(*relative.parts[1:])
    for folder in (case, case.parent, older, older.parent):
        path = folder / name
        if path.is_file():
            return json.loads(path.read_text())
    return None


def _expected(case: Path) -> Any:
    return json.loads((case / "expected_response_transformation.json").read_text())


def _customer_emails(case: Path) -> list[str]:
    customer = _input(case, "customer.json") or {}
    return list(customer.get("emailAddresses") or [])


def _return_id_from_url(case: Path) -> str:
    request = _input(case, "request.json") or {}
    url = request.get("url") or (case / "expected_request_url.txt").read_text()
    match = re.search(r"return/(\d+)", url)
    assert match, f"no return id in the notes request URL of {case}"
    return match[1]


RETURN_CASES = [
    c
    for c in _cases("data/pull/returns")
    if (c / "expected_response_transformation.json").is_file()
]
NOTE_CASES = [
    c for c in _cases("data/pull/notes") if (c / "expected_response_transformation.json").is_file()
]
ORDER_CASES = [
    c
    for c in sorted((CONFORMANCE / "loop_order_tracking/data/pull/orders/_test_/data").glob("*/"))
    if (c / "expected_response_transformation.json").is_file()
]


@pytest.mark.parametrize("case", RETURN_CASES, ids=_ids(RETURN_CASES))
def test_returns_pull(case: Path) -> None:
    expected = _expected(case)
    for item in expected:  # slip: a stray "ß" after the admin URL the template builds
        item["url"] = item["url"].rstrip("ß")
    result = normalize_returns(_input(case, "rawData.json"), _customer_emails(case))
    assert result.problems == []
    assert [r.to_json(include_notes=False) for r in result.items] == expected


@pytest.mark.parametrize("case", NOTE_CASES, ids=_ids(NOTE_CASES))
def test_notes_pull(case: Path) -> None:
    return_id = _return_id_from_url(case)
    expected = _expected(case)
    for item in expected:  # slip: returnId must be the id in the request URL
        item["returnId"] = return_id
    result = normalize_notes(_input(case, "rawData.json"), return_id)
    assert result.problems == []
    assert [n.model_dump(mode="json") for n in result.items] == expected
    parent_ids = case / "expected_external_parent_id.txt"
    if parent_ids.is_file() and return_id == parent_ids.read_text().split()[0]:
        assert {n.returnId for n in result.items} == {return_id}


@pytest.mark.parametrize("case", ORDER_CASES, ids=[c.name for c in ORDER_CASES])
def test_orders_pull(case: Path) -> None:
    expected = _expected(case)
    for item in expected:  # we link with `?order_name=` (the current template)
        item["shipmentUrl"] = item["shipmentUrl"].replace("?query=", "?order_name=")
    result = normalize_orders(_input(case, "rawData.json"))
    assert [o.to_json() for o in result.items] == expected
    ids = (case / "expected_external_id.txt").read_text().split("\n")
    assert result.items[0].id == ids[0].strip()


def test_the_walk_found_every_data_pull() -> None:
    assert len(RETURN_CASES) >= 2 and len(NOTE_CASES) >= 2 and len(ORDER_CASES) >= 1


ACTION_CASES = [
    c
    for action in ("actions/generate_return_link", "actions/create_allowlist_item")
    for c in _cases(action)
    if (c / "expected_response_transformation.json").is_file()
    and _input(c, "rawData.json") is not None
]


def _status(case: Path) -> int | None:
    response = _input(case, "response.json")
    if response is not None:
        return int(response["statusCode"])
    # 1.6's copy lacks some status files; the case name says which family it is.
    return {"success": 200, "missing_fields": 422, "bad_request": 400, "server_error": 500}.get(
        case.name
    )


@pytest.mark.parametrize("case", ACTION_CASES, ids=_ids(ACTION_CASES))
def test_action_results(case: Path) -> None:
    """Loop's answer to an action reads as the peer reads it (see loopdesk.loop)."""
    raw = _input(case, "rawData.json")
    expected = _expected(case)
    status = _status(case)
    if status in (200, 201):
        produced: Any = raw if "url" in raw else {**raw, "id": str(raw["id"])}
    elif status == 422:
        produced = {"errors": validation_errors(raw)}
    else:
        produced = action_failure_message(raw)
    assert produced == expected


def test_no_email_profile_message_matches_the_peer() -> None:
    from loopdesk.customers.profile import NO_EMAIL_MESSAGES

    for kind, app in (("returns", "loop_returns"), ("orders", "loop_order_tracking")):
        path = (
            CONFORMANCE
            / app
            / f"data/pull/{kind}/_test_/data/no_customer_email/expected_request_url.txt"
        )
        assert json.loads(path.read_text()) == NO_EMAIL_MESSAGES[kind]


def test_request_url_shape_for_returns() -> None:
    from loopdesk.loop.returns import returns_list_url

    for case in RETURN_CASES:
        pattern_text = (case / "expected_request_url.txt").read_text().strip().strip("/")
        patterns = [re.compile(line) for line in pattern_text.splitlines()]
        for pattern, email in zip(patterns, _customer_emails(case), strict=True):
            url = returns_list_url(
                "https://api.loopreturns.com", email, since=date(2025, 11, 24), limit=10
            )
            assert pattern.fullmatch(url), url

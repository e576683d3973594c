"""GET .../warehouse/return/list: Loop's Detailed Returns List (reference sections 1.3, 2.1).

- No `from`/`to`: the last 24 hours only. A missing `to` is now, a missing `from` is
  24 hours before `to`; the effective window may span at most 120 days.
- No `state`: open, closed and expired only (Loop hides cancelled and review).
- A bare JSON array, or with `paginate` Laravel's cursor page `{returns, nextPageUrl,
  previousPageUrl}`. Rows are sorted by the filter column, then id, ascending, and the
  cursor names the last row served, so a walk resumes exactly where it stopped even
  when returns are added meanwhile. The sandbox only pages forward.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from datetime import datetime, timedelta
from typing import Any

from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import Response

from loopdesk.sandbox.loop_returns import date_param
from loopdesk.sandbox.responses import json_response, laravel_invalid
from loopdesk.sandbox.world import World, laravel, parse_ts, utcnow

FILTERS = ("created_at", "updated_at")
STATES = ("open", "closed", "cancelled", "expired", "review")
DEFAULT_STATES = ("open", "closed", "expired")
DEFAULT_WINDOW = timedelta(hours=24)
MAX_RANGE_DAYS = 120
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 750
_TRUE = ("true", "1")
_FALSE = ("false", "0", "")
_INTEGER = re.compile(r"^[+-]?\d+$")

SortKey = tuple[datetime, tuple[int, int, str]]


def _id_key(value: Any) -> tuple[int, int, str]:
    """Numeric ids in numeric order (as Loop's integer keys sort), any others after."""
    text = str(value)
    return (0, int(text), "") if text.isdigit() else (1, 0, text)


def _sort_key(item: dict[str, Any], column: str) -> SortKey:
    # Whole seconds, as the cursor holds them: the cursor must compare like the sort.
    return parse_ts(item[column]).replace(microsecond=0), _id_key(item["id"])


def encode_cursor(column: str, item: dict[str, Any]) -> str:
    """Laravel's cursor: base64url (no padding) of `{column, id, _pointsToNextItems}`."""
    moment = laravel(parse_ts(item[column]))
    raw = json.dumps(
        {column: moment, "id": str(item["id"]), "_pointsToNextItems": True},
        separators=(",", ":"),
    )
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, column: str) -> SortKey | None:
    """The (timestamp, id) a cursor points after; None when it is not one of ours."""
    text = cursor.strip().replace("-", "+").replace("_", "/")
    try:
        data = json.loads(base64.b64decode(text + "=" * (-len(text) % 4), validate=True))
    except (binascii.Error, ValueError):
        return None
    if not isinstance(data, dict) or data.get("_pointsToNextItems") is not True:
        return None
    moment, rid = data.get(column), data.get("id")
    if not isinstance(moment, str) or not isinstance(rid, str | int) or isinstance(rid, bool):
        return None
    try:
        return parse_ts(moment).replace(microsecond=0), _id_key(rid)
    except ValueError:
        return None


def _page_size(params: QueryParams, errors: dict[str, list[str]]) -> int:
    raw = (params.get("pageSize") or "").strip()
    if not raw:
        return DEFAULT_PAGE_SIZE
    if not _INTEGER.match(raw):
        errors["pageSize"] = ["The page size must be an integer."]
        return DEFAULT_PAGE_SIZE
    value = int(raw)
    if value < 1:
        errors["pageSize"] = ["The page size must be at least 1."]
    elif value > MAX_PAGE_SIZE:
        errors["pageSize"] = [f"The page size must not be greater than {MAX_PAGE_SIZE}."]
    return value


async def list_returns(request: Request) -> Response:
    params = request.query_params
    errors: dict[str, list[str]] = {}
    start = date_param(params, "from", errors, end_of_day=False)
    end = date_param(params, "to", errors, end_of_day=True)
    column = params.get("filter") or "created_at"
    if column not in FILTERS:
        errors["filter"] = ["The selected filter is invalid."]
    state = (params.get("state") or "").strip()
    if state and state not in STATES:
        errors["state"] = ["The selected state is invalid."]
    paginate_raw = (params.get("paginate") or "").strip().lower()
    if paginate_raw not in _TRUE + _FALSE:
        errors["paginate"] = ["The paginate field must be true or false."]
    size = _page_size(params, errors)
    if errors:
        return laravel_invalid(errors)
    end = end or utcnow()
    start = start or end - DEFAULT_WINDOW
    if end < start:
        return laravel_invalid({"to": ["The to must be a date after or equal to from."]})
    if (end - start).days > MAX_RANGE_DAYS:
        message = f"The date range may not exceed {MAX_RANGE_DAYS} days."
        return laravel_invalid({"from": [message]})
    wanted = (state,) if state else DEFAULT_STATES
    world: World = request.app.state.world
    rows = [
        item
        for item in world.returns.values()
        if item.get("state") in wanted and start <= parse_ts(item[column]) <= end
    ]
    rows.sort(key=lambda item: _sort_key(item, column))
    if paginate_raw not in _TRUE:
        return json_response(rows)
    cursor = params.get("cursor")
    if cursor:
        after = decode_cursor(cursor, column)
        if after is None:
            return laravel_invalid({"cursor": ["The cursor is invalid."]})
        rows = [item for item in rows if _sort_key(item, column) > after]
    page = rows[:size]
    next_url = None
    if len(rows) > size:
        url = request.url.remove_query_params("cursor")
        next_url = str(url.include_query_params(cursor=encode_cursor(column, page[-1])))
    return json_response({"returns": page, "nextPageUrl": next_url, "previousPageUrl": None})

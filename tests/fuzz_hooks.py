"""Schemathesis hooks for `test_openapi_fuzz` (loaded through SCHEMATHESIS_HOOKS)."""

from __future__ import annotations

import uuid
from typing import Any

import schemathesis

IDEMPOTENCY_HEADER = "Idempotency-Key"
KEY_MAX_LENGTH = 200  # longer keys are refused (422) and never replay anything


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    """A generated Idempotency-Key made unique per case: the fuzzer draws few distinct
    values, and a key reused for another request is what the idempotency tests cover;
    here each case must get its own answer to be checked against its own schema."""
    headers = case.headers or {}
    value = headers.get(IDEMPOTENCY_HEADER)
    if isinstance(value, str) and len(value) <= KEY_MAX_LENGTH:
        headers[IDEMPOTENCY_HEADER] = f"{value[:160]}-{uuid.uuid4().hex}"
        case.headers = headers


@schemathesis.check
def no_stack_trace(ctx: Any, response: Any, case: Any) -> bool | None:
    """No response body shows a Python stack trace."""
    text = response.text if isinstance(response.text, str) else ""
    if "Traceback (most recent call last)" in text:
        raise AssertionError("a stack trace in the response body")
    return None

"""`Gladly-Authorization`: Gladly's documented test vector, and every way a request can
fail to be one Gladly signed with our key."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from loopdesk.gladly.signing import (
    SignatureRejected,
    authorization_header,
    canonical_request,
    gladly_time,
    header_map,
    parse_authorization,
    sorted_query,
    verify_request,
)
from tests.conftest import CONFORMANCE

SIGNING = (
    CONFORMANCE / "gladly_orders_lookup_adapter/app/authentication/request_signing/_test_/data"
)


def _vector() -> dict[str, Any]:
    request = json.loads((SIGNING / "request.json").read_text())
    integration = json.loads((SIGNING / "integration.json").read_text())
    expected = (SIGNING / "success/expected_Gladly-Authorization.txt").read_text().strip()
    headers = {name: values[0] for name, values in request["headers"].items()}
    return {
        "key": integration["secrets"]["signingKey"],
        "method": request["method"],
        "path": "/api/v2/customer/lookup",  # the path of the vector's URL
        "headers": headers,
        "body": request["body"].encode(),
        "expected": expected,
    }


VECTOR = _vector()
AT = gladly_time(VECTOR["headers"]["Gladly-Time"])


def _signed_headers(vector: dict[str, Any]) -> dict[str, str]:
    return header_map([*vector["headers"].items(), ("Gladly-Authorization", vector["expected"])])


def _verify(vector: dict[str, Any], headers: dict[str, str] | None = None, **kwargs: Any) -> Any:
    return verify_request(
        kwargs.pop("key", vector["key"]),
        vector["method"],
        kwargs.pop("path", vector["path"]),
        kwargs.pop("query", ""),
        _signed_headers(vector) if headers is None else headers,
        kwargs.pop("body", vector["body"]),
        **kwargs,
    )


def test_the_documented_vector_verifies() -> None:
    auth = _verify(VECTOR)
    assert auth.signed_headers == (
        "accept",
        "content-type",
        "gladly-correlation-id",
        "gladly-time",
        "x-b3-traceid",
    )
    assert auth.signature == "4c633fca4914f51df04c9ec40f4545d66d653e771c6634e33eed52a242bc278c"


def test_signing_reproduces_the_documented_header() -> None:
    header = authorization_header(
        VECTOR["key"], VECTOR["method"], VECTOR["path"], VECTOR["headers"], VECTOR["body"]
    )
    assert header == VECTOR["expected"]


def test_the_canonical_request_has_gladlys_lines() -> None:
    headers = header_map(VECTOR["headers"].items())
    names = sorted(headers)
    lines = canonical_request("post", "/p", "", headers, names, b"{}").split("\n")
    assert lines[:3] == ["POST", "/p", ""]
    assert lines[3] == "accept:application/json"
    assert lines[-3:] == [
        "",
        ";".join(names),
        "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",  # sha256("{}")
    ]


def _rejected(vector: dict[str, Any], headers: dict[str, str] | None = None, **kw: Any) -> str:
    with pytest.raises(SignatureRejected) as caught:
        _verify(vector, headers, **kw)
    assert caught.value.http_status == 401
    assert caught.value.details["header"] == "Gladly-Authorization"
    return caught.value.reason


def test_a_tampered_body_is_refused() -> None:
    body = VECTOR["body"].replace(b"martha.williams", b"martha.willians")
    assert _rejected(VECTOR, body=body) == "mismatch"
    assert _rejected(VECTOR, body=VECTOR["body"] + b" ") == "mismatch"  # even a space


def test_the_body_is_hashed_as_sent_not_as_parsed() -> None:
    spaced = json.dumps(json.loads(VECTOR["body"]), indent=1).encode()
    assert _rejected(VECTOR, body=spaced) == "mismatch"


def test_a_tampered_signed_header_is_refused() -> None:
    headers = _signed_headers(VECTOR)
    headers["gladly-correlation-id"] = "someone-else"
    assert _rejected(VECTOR, headers) == "mismatch"


def test_an_unsigned_header_may_change() -> None:
    headers = {**_signed_headers(VECTOR), "user-agent": "curl/8", "x-forwarded-for": "10.0.0.1"}
    _verify(VECTOR, headers)


def test_a_missing_signed_header_is_refused() -> None:
    headers = _signed_headers(VECTOR)
    del headers["x-b3-traceid"]
    assert _rejected(VECTOR, headers) == "missing_header"


def test_no_header_is_refused() -> None:
    headers = _signed_headers(VECTOR)
    del headers["gladly-authorization"]
    assert _rejected(VECTOR, headers) == "missing"
    assert _rejected(VECTOR, {**headers, "gladly-authorization": "  "}) == "missing"


def test_a_wrong_key_is_refused() -> None:
    assert _rejected(VECTOR, key="test-apikey-2") == "mismatch"
    assert _rejected(VECTOR, key="") == "mismatch"


def test_another_path_or_query_is_refused() -> None:
    assert _rejected(VECTOR, path="/gladly/lookup") == "mismatch"
    assert _rejected(VECTOR, query="a=1") == "mismatch"


def test_an_unknown_algorithm_is_refused() -> None:
    headers = _signed_headers(VECTOR)
    headers["gladly-authorization"] = VECTOR["expected"].replace("hmac-sha256", "hmac-sha1")
    assert _rejected(VECTOR, headers) == "unknown_algorithm"


def test_the_algorithm_name_ignores_case() -> None:
    headers = _signed_headers(VECTOR)
    headers["gladly-authorization"] = VECTOR["expected"].replace("hmac-sha256", "HMAC-SHA256")
    _verify(VECTOR, headers)


@pytest.mark.parametrize(
    "value",
    [
        "Signature=abc",
        "SigningAlgorithm=hmac-sha256, SignedHeaders=gladly-time",
        "SigningAlgorithm=hmac-sha256, SignedHeaders=, Signature=" + "0" * 64,
        "SigningAlgorithm=hmac-sha256, SignedHeaders=a b, Signature=" + "0" * 64,
        "SigningAlgorithm=hmac-sha256, SignedHeaders=gladly-time, Signature=xyz",
        "SigningAlgorithm=hmac-sha256, SignedHeaders=gladly-authorization, Signature=" + "0" * 64,
        "SigningAlgorithm=hmac-sha256, SigningAlgorithm=x, SignedHeaders=a, Signature=" + "0" * 64,
        "garbage",
        "x" * 5000,
    ],
)
def test_an_unreadable_header_is_refused(value: str) -> None:
    with pytest.raises(SignatureRejected) as caught:
        parse_authorization(value)
    assert caught.value.reason == "malformed"


def test_parts_in_any_order_and_case() -> None:
    auth = parse_authorization(
        "signature="
        + "A" * 64
        + " , signedheaders=Gladly-Time;Accept , SIGNINGALGORITHM=hmac-sha256"
    )
    assert auth.signed_headers == ("gladly-time", "accept")
    assert auth.signature == "a" * 64


def test_a_bad_gladly_time_is_refused() -> None:
    headers = _signed_headers(VECTOR)
    headers["gladly-time"] = "2019-02-13T21:40:16Z"
    assert _rejected(VECTOR, headers) == "bad_time"


def test_the_replay_window() -> None:
    # Off (0): a request signed years ago still verifies.
    _verify(VECTOR, now=AT + timedelta(days=3000))
    # On: within it either way, then outside it.
    _verify(VECTOR, replay_window_s=300, now=AT + timedelta(seconds=299))
    _verify(VECTOR, replay_window_s=300, now=AT - timedelta(seconds=299))
    assert _rejected(VECTOR, replay_window_s=300, now=AT + timedelta(seconds=301)) == (
        "outside_window"
    )
    assert _rejected(VECTOR, replay_window_s=300, now=AT - timedelta(seconds=301)) == (
        "outside_window"
    )


def test_a_new_gladly_time_on_an_old_signature_is_refused() -> None:
    """Moving the time into the window breaks the signature: it is signed (and salts
    the day's key)."""
    now = datetime.now(UTC)
    headers = _signed_headers(VECTOR)
    headers["gladly-time"] = now.strftime("%Y%m%dT%H%M%SZ")
    assert _rejected(VECTOR, headers, replay_window_s=300, now=now) == "mismatch"


def test_the_query_is_signed_sorted() -> None:
    assert sorted_query("b=2&a=1&a=0&c=") == "a=1&a=0&b=2&c="
    assert sorted_query("") == ""
    headers = {"Gladly-Time": "20260101T000000Z", "Accept": "application/json"}
    header = authorization_header("k", "POST", "/x", headers, b"{}", query="b=2&a=1")
    signed = header_map([*headers.items(), ("Gladly-Authorization", header)])
    verify_request("k", "POST", "/x", "a=1&b=2", signed, b"{}")


def test_repeated_headers_join_and_names_fold() -> None:
    assert header_map([("X-A", "1"), ("x-a", "2"), (" Accept ", "json")]) == {
        "x-a": "1,2",
        "accept": "json",
    }


@given(st.text(max_size=300))
def test_any_header_text_is_read_or_refused(value: str) -> None:
    try:
        auth = parse_authorization(value)
    except SignatureRejected as exc:
        assert exc.reason in {"missing", "malformed"}
    else:
        assert len(auth.signature) == 64 and auth.signed_headers


@given(body=st.binary(max_size=200), flip=st.integers(min_value=0))
def test_any_body_signs_and_any_changed_byte_fails(body: bytes, flip: int) -> None:
    headers = {"Gladly-Time": "20260315T101500Z", "Content-Type": "application/json"}
    header = authorization_header("a-signing-key", "POST", "/gladly/lookup", headers, body)
    signed = header_map([*headers.items(), ("Gladly-Authorization", header)])
    verify_request("a-signing-key", "POST", "/gladly/lookup", "", signed, body)
    if body:
        index = flip % len(body)
        changed = body[:index] + bytes([body[index] ^ 1]) + body[index + 1 :]
        with pytest.raises(SignatureRejected):
            verify_request("a-signing-key", "POST", "/gladly/lookup", "", signed, changed)

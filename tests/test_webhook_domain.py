from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loopdesk.domain.webhooks import (
    EARLIEST,
    LATEST,
    Decision,
    Source,
    Version,
    decide,
    decide_label,
    dedupe_key,
    envelope,
    parse_event,
    signature,
    signature_valid,
    trigger_rank,
)
from loopdesk.errors import InvalidInput

SECRET = "whsec-test"
BODY = json.dumps(
    {
        "topic": "return",
        "trigger": "return.updated",
        "id": "6042537",
        "updated_at": "2026-11-20T04:51:33+00:00",
    },
    separators=(",", ":"),
).encode()


def test_signature_is_base64_hmac_sha256_of_the_raw_body() -> None:
    expected = base64.b64encode(hmac.new(SECRET.encode(), BODY, hashlib.sha256).digest()).decode()
    assert signature(BODY, SECRET) == expected
    assert signature_valid(BODY, expected, SECRET)


@pytest.mark.parametrize(
    ("body", "presented", "secret"),
    [
        (BODY[:-2] + b"x}", signature(BODY, SECRET), SECRET),  # one changed byte
        (BODY, signature(BODY, "another-secret"), SECRET),  # signed with another secret
        (BODY, None, SECRET),  # no header
        (BODY, "", SECRET),
        (BODY, signature(BODY, SECRET), ""),  # no secret configured
    ],
)
def test_tampering_is_rejected(body: bytes, presented: str | None, secret: str) -> None:
    assert not signature_valid(body, presented, secret)


def test_event_identity() -> None:
    first = parse_event(BODY)
    assert (first.topic, first.trigger, first.return_id) == ("return", "return.updated", "6042537")
    assert parse_event(BODY).dedupe_key == first.dedupe_key  # a redelivery
    newer = json.loads(BODY)
    newer["updated_at"] = "2026-11-21T04:51:33+00:00"
    assert parse_event(json.dumps(newer).encode()).dedupe_key != first.dedupe_key
    label = parse_event(
        b'{"topic":"label","trigger":"label.updated","return_id":"12345",'
        b'"label_updated_at":"2026-01-01T00:00:00+00:00"}'
    )
    assert label.return_id == "12345"


@pytest.mark.parametrize("body", [b"not json", b"[1,2]", b"\xff\xfe"])
def test_bad_bodies(body: bytes) -> None:
    with pytest.raises(InvalidInput):
        parse_event(body)


# --- versions and the order of events ---------------------------------------------

T1 = datetime(2026, 1, 1, tzinfo=UTC)
T2 = datetime(2026, 1, 2, tzinfo=UTC)


def _body(**fields: object) -> bytes:
    return json.dumps({"topic": "return", "trigger": "return.updated", **fields}).encode()


def test_version_order_updated_at_then_edited_at_then_none() -> None:
    both = parse_event(_body(id=1, updated_at="2026-01-02T00:00:00Z", edited_at="2026-01-01"))
    assert both.version == Version(T2, Source.UPDATED_AT, 2)
    edited = parse_event(_body(id=1, edited_at="2026-01-01 00:00:00", updated_at=None))
    assert edited.version == Version(T1, Source.EDITED_AT, 2) and not edited.version.exact
    # Loop's documented payload: `edited_at: null`, a label time, no `updated_at`.
    documented = _body(id="6042537", edited_at=None, label_updated_at="2026-01-01T00:00:00Z")
    assert parse_event(documented).version is None
    label = parse_event(
        b'{"topic":"label","trigger":"label.updated","return_id":7,'
        b'"label_updated_at":"2026-01-02T00:00:00+00:00"}'
    )
    assert label.return_id == "7" and label.version == Version(T2, Source.LABEL, 2)


def test_ids_as_strings_or_integers() -> None:
    assert parse_event(_body(id=6042537)).return_id == "6042537"
    assert parse_event(_body(id=" 6042537 ")).return_id == "6042537"
    for bad in (True, 1.5, "x" * 65, "../12", {"a": 1}):
        with pytest.raises(InvalidInput):
            parse_event(_body(id=bad))


def test_duplicate_key_without_timestamps_is_the_body() -> None:
    first = parse_event(_body(id=1, state="open"))
    assert parse_event(_body(id=1, state="open")).dedupe_key == first.dedupe_key
    # No timestamp at all, and still a different event: a different key.
    assert parse_event(_body(id=1, state="closed")).dedupe_key != first.dedupe_key
    assert first.dedupe_key == dedupe_key(_body(id=1, state="open"), "return", "return.updated")
    closed = _body(id=1, state="open").replace(b"return.updated", b"return.closed")
    assert parse_event(closed).dedupe_key != first.dedupe_key


def test_trigger_ranks() -> None:
    assert trigger_rank("return.created") < trigger_rank("return.updated")
    assert trigger_rank("return.updated") < trigger_rank("return.closed")
    assert trigger_rank("label.created") < trigger_rank("label.updated") < trigger_rank("x.closed")
    assert trigger_rank("something.else") == 0


@pytest.mark.parametrize(
    "value",
    [
        "9999-12-31T23:59:59-23:59",  # not representable in UTC
        "0001-01-01T00:00:00+14:00",
        "0001-01-01T00:00:00+00:00",  # year 1
        "2200-01-01T00:00:00Z",
    ],
)
def test_out_of_range_times_are_refused(value: str) -> None:
    with pytest.raises(InvalidInput, match="out of range"):
        parse_event(_body(id=1, updated_at=value))


def test_nul_bytes_and_deep_nesting_are_refused() -> None:
    with pytest.raises(InvalidInput, match="NUL"):
        parse_event(_body(id=1, customer="a\x00@example.com"))
    with pytest.raises(InvalidInput, match="nested"):
        parse_event(b'{"a":' + b"[" * 100_000 + b"]" * 100_000 + b"}")
    with pytest.raises(InvalidInput, match="nested"):
        parse_event(b'{"a":' + b"[" * 40 + b"]" * 40 + b"}")
    with pytest.raises(InvalidInput, match="trigger"):
        parse_event(_body(id=1, trigger="return." + "u" * 80))


def test_envelope_of_an_unusable_body_fits_the_columns() -> None:
    topic, trigger, return_id = envelope(_body(id="9" * 300, trigger="a\x00" * 100))
    assert (topic, return_id) == ("return", "9" * 64)
    assert len(trigger) <= 64 and "\x00" not in trigger
    assert envelope(b"[" * 100_000) == ("unknown", "", None)


EXACT_1 = Version(T1, Source.UPDATED_AT, 2)
EXACT_2 = Version(T2, Source.UPDATED_AT, 2)
EDITED_1 = Version(T1, Source.EDITED_AT, 2)
EDITED_2 = Version(T2, Source.EDITED_AT, 2)


@pytest.mark.parametrize(
    ("event", "stored", "same", "expected"),
    [
        (None, None, False, Decision.FETCH),  # no version: read from Loop
        (None, EXACT_1, True, Decision.UNCHANGED),  # ... unless it changes nothing
        (EXACT_1, None, False, Decision.APPLY),
        (EXACT_2, EXACT_1, False, Decision.APPLY),
        (EXACT_2, EXACT_1, True, Decision.APPLY),  # moves `updated_at` on
        (EXACT_1, EXACT_2, False, Decision.STALE),
        (EXACT_1, EXACT_1, True, Decision.UNCHANGED),
        (EXACT_1, EXACT_1, False, Decision.FETCH),  # equal time, other content
        (Version(T1, Source.UPDATED_AT, 3), EXACT_1, False, Decision.APPLY),  # closed > updated
        (Version(T1, Source.UPDATED_AT, 1), EXACT_1, False, Decision.STALE),
        (EXACT_1, Version(T1, Source.UPDATED_AT, 0), False, Decision.FETCH),  # a read's time
        (EDITED_2, EXACT_1, False, Decision.APPLY),  # an edit after the stored version
        (EDITED_1, EXACT_2, False, Decision.FETCH),  # an old edit says nothing of now
        (EDITED_2, EDITED_1, False, Decision.APPLY),
        (EXACT_1, EDITED_1, False, Decision.FETCH),  # the stored lower bound may be newer
        (EXACT_1, EDITED_2, False, Decision.STALE),
    ],
)
def test_decide(
    event: Version | None, stored: Version | None, same: bool, expected: Decision
) -> None:
    assert decide(event, stored, same=same) is expected


def test_decide_label() -> None:
    assert decide_label(T2, T1, same=False) is Decision.APPLY
    assert decide_label(T1, T2, same=False) is Decision.STALE
    assert decide_label(T1, None, same=False) is Decision.APPLY
    assert decide_label(T1, T1, same=False) is Decision.FETCH
    assert decide_label(None, T1, same=False) is Decision.FETCH
    assert decide_label(T1, T2, same=True) is Decision.UNCHANGED


# --- any body: an event or InvalidInput, and always a row that fits -------------------

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=80),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner),
    max_leaves=20,
)
FIELDS = st.sampled_from(
    ["topic", "trigger", "id", "return_id", "updated_at", "edited_at", "label_updated_at"]
)
TEXTS = st.sampled_from(["return", "label", "return.updated", "2026-01-01T00:00:00Z", "N/A"])


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(FIELDS, JSON | TEXTS | st.text(max_size=200)) | JSON)
def test_any_body_is_an_event_or_invalid_input(payload: object) -> None:
    body = json.dumps(payload).encode()
    try:
        event = parse_event(body)
    except InvalidInput:
        pass
    else:
        assert len(event.topic) <= 64 and len(event.trigger) <= 64
        assert event.return_id is None or len(event.return_id) <= 64
        assert event.version is None or EARLIEST <= event.version.at < LATEST
    topic, trigger, return_id = envelope(body)
    for text_ in (topic, trigger, return_id or ""):
        assert len(text_) <= 64 and text_.isprintable()


def test_topics_loopdesk_does_not_apply_carry_no_version() -> None:
    body = b'{"topic":"giftcard","trigger":"giftcard.requested","id":5,"updated_at":"0001-01-01"}'
    event = parse_event(body)
    assert (event.topic, event.return_id, event.version) == ("giftcard", "5", None)

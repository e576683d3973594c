from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest

from loopdesk.domain.webhooks import parse_event, signature, signature_valid
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

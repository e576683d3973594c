"""Gladly's request signing: `Gladly-Authorization`, verified over the raw request.

Gladly signs each Lookup Adaptor request with the signing key of the app's settings
(`reference/gladly.md` §1.6; Gladly's own test vector is checked in the tests):

    Gladly-Authorization: SigningAlgorithm=hmac-sha256, SignedHeaders=a;b;c, Signature=<hex>

1. the canonical request is the lines: the method, the path, the query string sorted by
   name (an empty line when there is none), `name:value` for each signed header in the
   order named (names lower-cased, names and values trimmed), an empty line, the signed
   names joined by `;`, and the lower-case hex SHA-256 of the body;
2. the string to sign is `hmac-sha256`, the `Gladly-Time` value and the hex SHA-256 of
   the canonical request, one per line;
3. the day's key is HMAC-SHA256 keyed with the signing key over the `YYYYMMDD` of
   `Gladly-Time`;
4. the signature is the hex HMAC-SHA256 keyed with the day's key over the string to sign.

The body is hashed exactly as received: parsed and serialised again, JSON would not keep
its bytes. A replay window, when set, refuses a `Gladly-Time` further from now than that
(Gladly documents none; its clock and ours may differ by a little).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import parse_qsl, urlencode

from loopdesk.errors import Unauthorized

ALGORITHM = "hmac-sha256"
AUTHORIZATION_HEADER = "gladly-authorization"
TIME_HEADER = "gladly-time"
TIME_FORMAT = "%Y%m%dT%H%M%SZ"
MAX_HEADER_LENGTH = 4096
_TIME = re.compile(r"\d{8}T\d{6}Z", re.ASCII)
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9a-z-]+", re.ASCII)  # a header name (RFC 9110)
_HEX_SIGNATURE = re.compile(r"[0-9a-f]{64}", re.ASCII)


class SignatureRejected(Unauthorized):
    """The request is not signed with our key (or not recently enough): 401."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message, details={"header": "Gladly-Authorization", "reason": reason})
        self.reason = reason


@dataclass(frozen=True)
class GladlyAuthorization:
    """A parsed `Gladly-Authorization` header."""

    algorithm: str
    signed_headers: tuple[str, ...]
    signature: str


def parse_authorization(value: str | None) -> GladlyAuthorization:
    """The header's three parts; `SignatureRejected` when it is absent or unreadable.

    Parts are `name=value` separated by commas, in any order, names in any case. The
    algorithm is returned as sent (`verify_request` refuses any but hmac-sha256).
    """
    if value is None or not value.strip():
        raise SignatureRejected("missing", "the request has no Gladly-Authorization header")
    if len(value) > MAX_HEADER_LENGTH:
        raise SignatureRejected("malformed", "Gladly-Authorization is too long")
    parts: dict[str, str] = {}
    for piece in value.split(","):
        name, equals, text = piece.partition("=")
        key = name.strip().lower()
        if not equals or key in parts:
            raise SignatureRejected(
                "malformed",
                "Gladly-Authorization is `SigningAlgorithm=..., SignedHeaders=..., Signature=...`",
            )
        parts[key] = text.strip()
    missing = [p for p in ("signingalgorithm", "signedheaders", "signature") if not parts.get(p)]
    if missing:
        raise SignatureRejected(
            "malformed", f"Gladly-Authorization lacks {', '.join(missing)} (names ignore case)"
        )
    names = tuple(n.strip().lower() for n in parts["signedheaders"].split(";"))
    if any(not _TOKEN.fullmatch(n) for n in names) or AUTHORIZATION_HEADER in names:
        raise SignatureRejected(
            "malformed", "SignedHeaders is a list of header names separated by `;`"
        )
    signature = parts["signature"].lower()
    if not _HEX_SIGNATURE.fullmatch(signature):
        raise SignatureRejected("malformed", "Signature is 64 hexadecimal digits")
    return GladlyAuthorization(parts["signingalgorithm"], names, signature)


def header_map(items: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Request headers by lower-cased name; a repeated header's values joined by ","."""
    headers: dict[str, str] = {}
    for name, value in items:
        key = name.strip().lower()
        headers[key] = f"{headers[key]},{value}" if key in headers else value
    return headers


def sorted_query(query: str) -> str:
    """The query string with its parameters sorted by name (values keep their order), as
    Go's `url.Values.Encode` writes it; "" when there is none."""
    pairs = parse_qsl(query, keep_blank_values=True)
    return urlencode(sorted(pairs, key=lambda pair: pair[0]))


def canonical_request(
    method: str,
    path: str,
    query: str,
    headers: Mapping[str, str],
    signed_headers: Sequence[str],
    body: bytes,
) -> str:
    """Step 1. `headers` by lower-cased name (`header_map`); each signed one must be there."""
    lines = [method.upper(), path, sorted_query(query)]
    lines += [f"{name}:{headers[name].strip()}" for name in signed_headers]
    lines += ["", ";".join(signed_headers), hashlib.sha256(body).hexdigest()]
    return "\n".join(lines)


def signature(key: str, gladly_time: str, canonical: str) -> str:
    """Steps 2 to 4: the hex signature of a canonical request at `gladly_time`."""
    digest = hashlib.sha256(canonical.encode()).hexdigest()
    to_sign = "\n".join([ALGORITHM, gladly_time, digest])
    day_key = hmac.new(key.encode(), gladly_time[:8].encode(), hashlib.sha256).digest()
    return hmac.new(day_key, to_sign.encode(), hashlib.sha256).hexdigest()


def authorization_header(
    key: str,
    method: str,
    path: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    query: str = "",
    signed_headers: Sequence[str] | None = None,
) -> str:
    """The `Gladly-Authorization` value Gladly would send (every header given is signed,
    sorted, unless `signed_headers` says which); for tests and for checking a set-up."""
    lowered = header_map(headers.items())
    names = sorted(lowered) if signed_headers is None else [n.lower() for n in signed_headers]
    canonical = canonical_request(method, path, query, lowered, names, body)
    value = signature(key, lowered[TIME_HEADER].strip(), canonical)
    return f"SigningAlgorithm={ALGORITHM}, SignedHeaders={';'.join(names)}, Signature={value}"


def gladly_time(value: str) -> datetime:
    """`Gladly-Time` (`20190213T214016Z`, UTC) as an aware moment; ValueError otherwise."""
    if not _TIME.fullmatch(value):
        raise ValueError("not YYYYMMDDTHHMMSSZ")
    return datetime.strptime(value, TIME_FORMAT).replace(tzinfo=UTC)


def verify_request(
    key: str,
    method: str,
    path: str,
    query: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    replay_window_s: float = 0.0,
    now: datetime | None = None,
) -> GladlyAuthorization:
    """The request's authorization when Gladly signed it with `key`; otherwise
    `SignatureRejected` saying why (its `reason`: missing, malformed, unknown_algorithm,
    missing_header, bad_time, outside_window, mismatch).

    `headers` by lower-cased name (`header_map`). The signature is compared in constant
    time; the replay window (seconds, 0: off) is checked after it, so an unsigned
    request learns nothing about our clock.
    """
    auth = parse_authorization(headers.get(AUTHORIZATION_HEADER))
    if auth.algorithm.lower() != ALGORITHM:
        raise SignatureRejected(
            "unknown_algorithm",
            f"SigningAlgorithm {auth.algorithm[:40]!r} is not supported (only {ALGORITHM})",
        )
    absent = [name for name in auth.signed_headers if name not in headers]
    if absent:
        raise SignatureRejected(
            "missing_header", f"signed header(s) not in the request: {', '.join(absent)}"
        )
    stamp = headers.get(TIME_HEADER, "").strip()
    try:
        moment = gladly_time(stamp)
    except ValueError:
        raise SignatureRejected(
            "bad_time", "Gladly-Time is missing or not YYYYMMDDTHHMMSSZ (UTC)"
        ) from None
    canonical = canonical_request(method, path, query, headers, auth.signed_headers, body)
    expected = signature(key, stamp, canonical)
    if not hmac.compare_digest(expected.encode(), auth.signature.encode()):
        raise SignatureRejected(
            "mismatch",
            "the signature does not match: another signing key, or the body, path or a "
            "signed header changed on the way",
        )
    if replay_window_s > 0:
        drift = abs(((now or datetime.now(UTC)) - moment).total_seconds())
        if drift > replay_window_s:
            raise SignatureRejected(
                "outside_window",
                f"Gladly-Time is {drift:.0f} s away from now; the replay window is "
                f"{replay_window_s:g} s",
            )
    return auth

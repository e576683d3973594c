"""Masking of personal data before it reaches a log line.

Support tooling logs a lot of customer-facing text (upstream messages mention the
addresses they refuse), so every logged string goes through `redact_text`.
"""

from __future__ import annotations

import re

# Deliberately loose: a false positive only hides a bit more of a log line. `%40` is
# an `@` in a URL's query string (`?email=jane%40example.com`).
_EMAIL = re.compile(r"([A-Za-z0-9._%+\-]+)(@|%40)([A-Za-z0-9.\-]+\.[A-Za-z]{2,})")


def redact_email(email: str) -> str:
    """`jane.doe@example.com` -> `j***@example.com`; the domain stays for triage."""
    local, sep, domain = email.strip().rpartition("@")
    if not sep or not local:
        return "***"
    return f"{local[0]}***@{domain}"


def redact_text(text: str) -> str:
    """Every email address in free text, redacted like `redact_email`."""
    return _EMAIL.sub(lambda m: f"{m.group(1)[0]}***{m.group(2)}{m.group(3)}", text)

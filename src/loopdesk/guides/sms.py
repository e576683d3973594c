"""Fitting a text message into an SMS: at most so many characters, links never cut.

A cut link is worse than none (the customer taps a page that does not exist), and the
links are usually the point of the answer (the return link, the status page), so they
come before the prose: the prose is shortened at a word boundary, marked with "…", and
the links it held after the cut follow it whole, each on its own line.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

SMS_LIMIT = 320
ELLIPSIS = "…"
# Any web address in the text is kept whole, even one the caller did not list (a
# template printing a URL from the message's variables), with what sticks to it.
_URL = re.compile(r"https?://\S+")


def fit_sms(text: str, links: Sequence[str], limit: int = SMS_LIMIT) -> str:
    """`text` in at most `limit` characters, every link in it whole or not at all.

    `links` are the URLs the message carries: those the text does not print are appended
    (each on its own line, in order) when they fit after the whole text. A text too long
    loses prose from its end, at a word boundary, with "…"; the links after the cut move
    after it. When the links alone do not fit, as many of them as fit are kept, the
    first ones first, without any prose.
    """
    text = text.strip()
    listed = [url for url in dict.fromkeys(links) if url]
    spans = _link_spans(text, listed)
    if len(text) <= limit:
        fitted = text
        for url in listed:
            if url not in text:
                fitted = _add_line(fitted, url, limit)
        return fitted
    for cut in _cuts(text, spans):
        head = text[:cut].rstrip()
        # An ellipsis glued to a link would be taken as part of it by a phone.
        mark = " " + ELLIPSIS if any(end == len(head) for _, end in spans) else ELLIPSIS
        after = [text[start:end] for start, end in spans if start >= cut]
        fitted = head + mark + "".join("\n" + url for url in _once(after, head))
        if len(fitted) <= limit:
            return fitted
    # Not even one word of prose fits beside the links: the links alone.
    kept = ""
    printed = [text[start:end] for start, end in spans]
    for url in _once([*printed, *(u for u in listed if u not in text)], ""):
        kept = _add_line(kept, url, limit)
    return kept


def _once(urls: Sequence[str], shown: str) -> list[str]:
    """The URLs not shown yet, each once (a link printed twice is kept once)."""
    return [url for url in dict.fromkeys(urls) if url not in shown]


def _add_line(text: str, line: str, limit: int) -> str:
    longer = f"{text}\n{line}" if text else line
    return longer if len(longer) <= limit else text


def _link_spans(text: str, links: Sequence[str]) -> list[tuple[int, int]]:
    """Where the text holds a link: (start, end) pairs, sorted, merged where they touch."""
    found = [(m.start(), m.end()) for m in _URL.finditer(text)]
    for url in links:
        start = text.find(url)
        while start != -1:
            found.append((start, start + len(url)))
            start = text.find(url, start + 1)
    merged: list[tuple[int, int]] = []
    for start, end in sorted(found):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def _cuts(text: str, spans: Sequence[tuple[int, int]]) -> list[int]:
    """Where the prose may end, longest first: before a space outside a link, or right
    after a link; never at the very start."""
    inside = [False] * len(text)
    for start, end in spans:
        inside[start:end] = [True] * (end - start)
    cuts = {i for i, char in enumerate(text) if char.isspace() and not inside[i]}
    cuts |= {end for _, end in spans}
    return sorted((cut for cut in cuts if text[:cut].strip()), reverse=True)


def quick_reply_for(text: str, quick_replies: Sequence[str]) -> str | None:
    """The quick reply a customer chose by texting its number ("2" or "2."), offered as
    "Reply 1 for ..., 2 for ..." in an SMS; None when the text is not such a number."""
    choice = re.fullmatch(r"\s*([0-9]{1,2})[.)]?\s*", text)
    if choice and 1 <= int(choice[1]) <= len(quick_replies):
        return quick_replies[int(choice[1]) - 1]
    return None

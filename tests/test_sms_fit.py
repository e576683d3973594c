"""`fit_sms`: at most `limit` characters, links whole or not at all, prose cut at a word."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from loopdesk.guides.sms import ELLIPSIS, fit_sms, quick_reply_for

URL_TOKEN = re.compile(r"https?://\S+")

words = st.from_regex(r"[A-Za-zé0-9,.!?'#:()-]{1,14}", fullmatch=True).filter(
    lambda w: "http" not in w
)
urls = st.builds(
    lambda host, path: f"https://{host}.example.com/{path}",
    st.from_regex(r"[a-z]{1,10}", fullmatch=True),
    st.from_regex(r"[A-Za-z0-9/#?=&-]{0,60}", fullmatch=True),
)
separators = st.sampled_from([" ", " ", " ", "\n", "  ", "\n\n"])


@st.composite
def messages(draw: st.DrawFn) -> tuple[str, list[str], list[str]]:
    """(text, the URLs it prints, extra URLs a reply carries without printing them)."""
    tokens = draw(st.lists(st.one_of(words, words, words, urls), min_size=1, max_size=90))
    seps = draw(st.lists(separators, min_size=len(tokens), max_size=len(tokens)))
    text = "".join(token + sep for token, sep in zip(tokens, seps, strict=True)).strip()
    printed = [t for t in tokens if t.startswith("https://")]
    extra = [u for u in draw(st.lists(urls, max_size=3)) if u not in text]
    return text, printed, extra


@settings(max_examples=400)
@given(messages(), st.integers(min_value=10, max_value=400), st.booleans())
def test_fits_and_never_cuts_a_link(
    message: tuple[str, list[str], list[str]], limit: int, list_printed: bool
) -> None:
    text, printed, extra = message
    # Printed links are protected whether or not the caller lists them.
    links = [*printed, *extra] if list_printed else extra
    fitted = fit_sms(text, links, limit)
    assert len(fitted) <= limit
    for token in URL_TOKEN.findall(fitted):
        assert token in printed or token in extra, f"{token!r} is not a whole input link"
    # The links come before the prose: when the text's links fit on their own, all stay.
    if printed and len("\n".join(dict.fromkeys(printed))) <= limit:
        assert all(url in fitted for url in printed)
    if len(text) <= limit:
        assert fitted.startswith(text)
        if extra and len(text) + 1 + len(extra[0]) <= limit:
            assert extra[0] in fitted


@settings(max_examples=300)
@given(st.lists(words, min_size=1, max_size=120), separators, st.integers(1, 400))
def test_prose_is_a_prefix_cut_at_a_word(chunks: list[str], sep: str, limit: int) -> None:
    text = sep.join(chunks)
    fitted = fit_sms(text, [], limit)
    assert len(fitted) <= limit
    if len(text) <= limit:
        assert fitted == text
    elif fitted:
        assert fitted.endswith(ELLIPSIS)
        head = fitted.removesuffix(ELLIPSIS)
        assert text.startswith(head) and head.strip()
        assert text[len(head)].isspace(), "cut inside a word"
    else:
        # Nothing: not even the first word fits beside the ellipsis.
        assert len(chunks[0]) + len(ELLIPSIS) > limit


def test_a_long_text_keeps_its_link_and_loses_prose_at_the_end() -> None:
    url = "https://company.loopreturns.com/#/return/3f1c9a52-8d7e-5b6a-9c41-2e7f0b8d6a13"
    prose = "Your return is on its way to our warehouse and should arrive in a few days. " * 3
    text = f"Track it here: {url} {prose}".strip()
    fitted = fit_sms(text, [url], 160)
    assert len(fitted) <= 160
    assert fitted.startswith(f"Track it here: {url} Your return")
    assert fitted.endswith(ELLIPSIS)
    # The same link after the cut moves after the ellipsis, whole.
    late = f"{prose}{prose}Details: {url}"
    fitted = fit_sms(late, [url], 160)
    assert fitted.endswith(f"{ELLIPSIS}\n{url}")
    assert late.startswith(fitted.split(ELLIPSIS)[0])


def test_an_ellipsis_never_touches_a_link() -> None:
    url = "https://x.example.com/a"
    fitted = fit_sms(f"See {url} " + "word " * 80, [], 30)
    assert fitted == f"See {url} {ELLIPSIS}"


def test_links_alone_too_long_keep_the_first_ones_that_fit() -> None:
    first = "https://a.example.com/" + "a" * 150
    second = "https://b.example.com/" + "b" * 150
    third = "https://c.example.com/c"
    text = f"One {first} two {second} three {third} and more words"
    assert fit_sms(text, [], 320) == f"{first}\n{third}"
    assert fit_sms(text, [], 100) == third
    assert fit_sms(text, [], 10) == ""


def test_unprinted_links_follow_when_they_fit_and_never_cost_prose() -> None:
    link = "https://company.loopreturns.com/#/return/abc"
    assert fit_sms("Here is your link.", [link], 320) == f"Here is your link.\n{link}"
    text = "x" * 300
    assert fit_sms(text, [link], 320) == text
    assert fit_sms("  spaced  ", [], 320) == "spaced"


def test_quick_reply_by_number() -> None:
    offered = ("Where's my return?", "Start a return")
    assert quick_reply_for("2", offered) == "Start a return"
    assert quick_reply_for(" 1. ", offered) == "Where's my return?"
    assert quick_reply_for("3", offered) is None
    assert quick_reply_for("0", offered) is None
    assert quick_reply_for("1086", offered) is None
    assert quick_reply_for("²", offered) is None
    assert quick_reply_for("start a return", offered) is None


def test_the_draft_return_questions_fit_an_sms_whole() -> None:
    """Each question of a return made in the conversation lists numbered choices: cut,
    the customer could not answer it, so every sample and variant fits uncut."""
    from loopdesk.guides.messages import MESSAGES
    from loopdesk.guides.render import Renderer
    from loopdesk.guides.reply import Reply

    renderer = Renderer.load(override_dir=None, shop_name="Juniper Supply Co.")
    drafts = {name: spec for name, spec in MESSAGES.items() if name.startswith("create_return.")}
    assert len(drafts) >= 12
    for name, spec in drafts.items():
        for variables in (spec.sample, *spec.variants):
            text = renderer.render(Reply(name, variables), "sms", customer_name="Pat Doe")
            assert len(text) <= 320 and ELLIPSIS not in text, (name, len(text), text)
            listed = [*variables.get("reasons", []), *variables.get("items", [])]
            for choice in listed + variables.get("variants", []) + variables.get("others", []):
                if "number" in choice:
                    assert f"{choice['number']})" in text, (name, text)

"""Which of the choices the guide offered a customer's answer names.

While the guide builds a return with the customer it asks closed questions (which
items, why, refund or exchange, which size, how to send it back) and lists the choices,
numbered. An answer names choices by their number ("2", "1 and 3"), by words of their
label ("the sneaker", "too big", "white L", "large"), or all at once ("both", "all").
Besides, a few words steer the conversation itself: undo the last step, abandon,
yes / no, "that's all". Pure: the flow passes the choices it offered.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

Control = Literal["cancel", "undo", "yes", "no", "done", "restart"]


@dataclass(frozen=True)
class Option:
    """One choice offered: `key` is what the flow acts on (an id, `refund`...), `label`
    how it is shown (and its quick reply), `words` further words that name it."""

    key: str
    label: str
    words: tuple[str, ...] = ()


# Words that name no choice: they only carry the sentence.
_FILLER = frozenset({
    "a", "an", "and", "the", "this", "that", "these", "those", "it", "its", "it's", "i", "i'd",
    "i'll", "id", "im", "i'm", "me", "my", "mine", "we", "our", "want", "wanna", "would", "like",
    "to", "please", "pls", "of", "for", "with", "on", "in", "is", "was", "be", "one", "ones",
    "item", "items", "thing", "things", "just", "only", "also", "ok", "okay", "yes", "sure", "go",
    "option", "number", "choose", "pick", "take", "select", "get", "give", "send", "return",
    "returning", "back", "rather", "instead", "prefer",
})  # fmt: skip
# Sizes as people write them and as variant titles hold them.
_SIZE_WORDS = {
    "extra small": "xs",
    "x-small": "xs",
    "xsmall": "xs",
    "extra large": "xl",
    "x-large": "xl",
    "xlarge": "xl",
    "small": "s",
    "sm": "s",
    "medium": "m",
    "med": "m",
    "md": "m",
    "large": "l",
    "lg": "l",
}
_ALL = re.compile(r"\b(?:all|both|everything|every item|each|all of them|the two)\b")
_NUMBER = re.compile(r"(?<![\w.])#?(\d{1,2})(?!\w|\.\d)")
_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")

_CONTROLS: tuple[tuple[Control, re.Pattern[str]], ...] = (
    (
        "cancel",
        re.compile(
            r"\b(?:cancel|stop|abandon|quit|forget (?:it|about it)|never ?mind|nvm"
            r"|(?:do ?n[o']?t|dont|no longer) want to return|changed my mind about (?:the )?return"
            r"|not returning)\b"
        ),
    ),
    ("restart", re.compile(r"\b(?:start over|start again|restart|from the start)\b")),
    ("undo", re.compile(r"^(?:undo|go back|back|previous|oops|wait,? go back)\b|\bundo\b")),
    (
        "done",
        re.compile(
            r"\b(?:that'?s (?:all|it)|thats (?:all|it)|no more|nothing else|only (?:that|those)"
            r"|just (?:that|those)|done)\b"
        ),
    ),
    (
        "yes",
        re.compile(
            r"^(?:y|yes|yeah|yea|yep|yup|sure|ok|okay|confirm|confirmed|correct|go ahead|do it"
            r"|submit|sounds good|looks good|perfect|please do|si|sí)\b"
        ),
    ),
    ("no", re.compile(r"^(?:n|no|nope|nah|not yet|wrong)\b")),
)


# Where an email reply's own words end: the quoted message below them (which repeats
# the guide's numbered choices) is not an answer.
_QUOTE_STARTS = re.compile(
    r"^\s*(?:>|on .{0,200}wrote:\s*$|-{2,}\s*original message|from:\s|sent from my )",
    re.IGNORECASE,
)


def own_words(text: str) -> str:
    """The reply above anything it quotes."""
    lines = []
    for line in text.splitlines():
        if _QUOTE_STARTS.match(line):
            break
        lines.append(line)
    return "\n".join(lines)


def fold(text: str) -> str:
    """The reply's own words, lower case, accents off, one space between words, sizes
    spelled as titles hold them."""
    text = own_words(text)
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    text = " ".join(text.casefold().replace("\u2019", "'").split())
    for words, size in _SIZE_WORDS.items():
        text = re.sub(rf"\b{re.escape(words)}\b", size, text)
    return text


def control(text: str) -> Control | None:
    """The conversation word the message is, if any: the first that applies of cancel,
    start over, undo, done, yes, no."""
    folded = fold(text).strip(" .!?")
    for name, pattern in _CONTROLS:
        if pattern.search(folded):
            return name
    return None


def _stem(word: str) -> str:
    """A plural names the same thing ("the sneakers" for "Canvas Sneaker")."""
    return word[:-1] if len(word) > 3 and word.endswith("s") and not word.endswith("ss") else word


def _tokens(text: str) -> list[str]:
    return [_stem(w) for w in _WORD.findall(fold(text)) if w not in _FILLER]


def _option_tokens(option: Option) -> set[str]:
    return set(_tokens(" ".join((option.label, *option.words))))


def _by_number(text: str, options: Sequence[Option]) -> list[Option]:
    picked = []
    for found in _NUMBER.finditer(fold(text)):
        number = int(found.group(1))
        if 1 <= number <= len(options) and options[number - 1] not in picked:
            picked.append(options[number - 1])
    return picked


def pick_many(text: str, options: Sequence[Option]) -> list[Option]:
    """Every choice the answer names, in the offered order; [] when it names none."""
    if not options:
        return []
    folded = fold(text)
    if _ALL.search(folded):
        return list(options)
    numbered = _by_number(text, options)
    # A number can be a word of a label too (size "10"): words decide then.
    words = set(_tokens(text)) - {str(n) for n in range(1, len(options) + 1)}
    owned = [_option_tokens(o) for o in options]
    named = []
    for index, option in enumerate(options):
        others = set().union(*(t for j, t in enumerate(owned) if j != index))
        distinctive = owned[index] - others
        if words & distinctive:
            named.append(option)
    exact = [o for o in options if fold(o.label).strip() == folded.strip(" .!?")]
    chosen = {o.key for o in (*numbered, *named, *exact)}
    if not chosen:
        best = pick_one(text, options)
        return [best] if best else []
    return [o for o in options if o.key in chosen]


def pick_exact(
    text: str, options: Sequence[Option], vocabulary: Sequence[Option] = ()
) -> Option | None:
    """The one choice whose label holds every word of the answer that names any of
    `vocabulary` (default: `options`): "do you have it in navy medium?" for "Navy / M"
    among sizes and colours, never "Navy / M" for "white M". For naming something not
    offered, where a near match would mislead."""
    known = set().union(*(_option_tokens(o) for o in (*vocabulary, *options)))
    words = set(_tokens(text)) & known
    found = [o for o in options if words and words <= _option_tokens(o)]
    return found[0] if len(found) == 1 else None


def pick_one(text: str, options: Sequence[Option]) -> Option | None:
    """The one choice the answer names: its number, its whole label, or the label
    sharing the most words with the answer (None when none does, or two tie)."""
    if not options:
        return None
    folded = fold(text).strip(" .!?")
    for option in options:
        if fold(option.label).strip() == folded:
            return option
    numbered = _by_number(text, options)
    if len(numbered) == 1 and not (set(_tokens(text)) - set(_NUMBER.findall(folded))):
        return numbered[0]
    words = set(_tokens(text))
    if not words:
        return numbered[0] if len(numbered) == 1 else None
    scores = [len(words & _option_tokens(o)) for o in options]
    best = max(scores)
    if best == 0:
        return numbered[0] if len(numbered) == 1 else None
    leaders = [o for o, s in zip(options, scores, strict=True) if s == best]
    if len(leaders) == 1:
        return leaders[0]
    # A tie on shared words: the fewest words left unmatched in the label wins
    # ("white l" names "White / L" before "White / L / Tall").
    spare = [len(_option_tokens(o) - words) for o in leaders]
    fewest = min(spare)
    tied = [o for o, s in zip(leaders, spare, strict=True) if s == fewest]
    return tied[0] if len(tied) == 1 else None

"""Text utilities every stage shares: citation markers, figures, word lists, sentences.

One definition of each, so the verifier, the judge, the UI and the evaluation read an
answer the same way: what a ``[n]`` marker is, what counts as a figure ("19", "1,000",
"2½", "twenty-one"), which words negate, which words point back at an earlier sentence.
Sentence splitting is the index's own (:func:`index.chunk.split_sentences`), so answer
sentences are cut exactly as source sentences are.
"""

from __future__ import annotations

import re
import string
import unicodedata

from index.chunk import split_sentences

__all__ = [
    "COMPOUND_NUMBER",
    "DENIAL",
    "MARKER",
    "NEGATION",
    "NUMBER_WORDS",
    "OPENS_POINTING_BACK",
    "POINTS_BACK",
    "SCALE_WORDS",
    "marker_numbers",
    "markers_before_stop",
    "number_value",
    "split_sentences",
    "strip_markers",
]

# A citation marker: "[3]", "[1, 2]", "[1; 4]", with any spacing inside the brackets.
MARKER = re.compile(r"\[\s*(\d+(?:\s*[,;]\s*\d+)*)\s*\]")
_MARKERS_AFTER_STOP = re.compile(rf"([.!?])((?:\s*{MARKER.pattern})+)")


def strip_markers(text: str) -> str:
    """``text`` without its citation markers (and the space before each)."""
    return re.sub(rf"\s*{MARKER.pattern}", "", text).strip()


def marker_numbers(text: str) -> list[int]:
    """Every passage number cited in ``text``, in order ("[1, 3] ... [2]" -> [1, 3, 2])."""
    return [int(n) for group in MARKER.findall(text) for n in re.split(r"[,;]", group)]


def markers_before_stop(text: str) -> str:
    """Markers written after a sentence's full stop moved before it: "A. [1]" -> "A [1]."."""
    return _MARKERS_AFTER_STOP.sub(lambda m: f"{m.group(2)}{m.group(1)}", text)


# Words that negate a clause; one list for the judge (a question that negates) and the
# support check (what a claim denies it does not assert).
DENIAL = r"not|rather\s+than|instead\s+of"  # what a claim denies it does not assert
NEGATION = re.compile(
    rf"\b(?:{DENIAL}|never|no|none|neither|nor|without|cannot)\b|n't\b", re.IGNORECASE
)

# A sentence or question that opens with (or leans on) a word pointing back at an earlier
# one: "He said…", "the two…", "there". Evidence selection keeps the sentence before such
# a sentence; a follow-up question holding one is rewritten to stand alone.
_BACK_REFERENCES = (
    r"he|she|it|they|them|him|his|her|hers|its|their|theirs|this|that|these|those|there|"
    r"then|such|both|the\s+(?:two|pair|latter|former|same)"
)
POINTS_BACK = re.compile(rf"\b(?:{_BACK_REFERENCES})\b", re.IGNORECASE)
OPENS_POINTING_BACK = re.compile(rf"^[\"“‘(]*(?:{_BACK_REFERENCES})\b", re.IGNORECASE)

# English number words: a complete table of the cardinal words, with "a dozen" and "half".
_UNITS = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen "
    "fourteen fifteen sixteen seventeen eighteen nineteen"
).split()
_TENS = "twenty thirty forty fifty sixty seventy eighty ninety".split()
NUMBER_WORDS: dict[str, float] = {word: float(i) for i, word in enumerate(_UNITS)}
NUMBER_WORDS |= {word: float(20 + 10 * i) for i, word in enumerate(_TENS)}
NUMBER_WORDS |= {
    "hundred": 1e2,
    "thousand": 1e3,
    "million": 1e6,
    "billion": 1e9,
    "trillion": 1e12,
    "dozen": 12.0,
    "half": 0.5,
}
# Words that multiply the figure before them: "12 million", "two dozen", "3 hundred".
SCALE_WORDS = frozenset({"hundred", "thousand", "million", "billion", "trillion", "dozen"})
# Vulgar fraction characters ("½", "¾", "⅓", ...): their values come from Unicode.
FRACTIONS = "".join(
    ch
    for ch in map(chr, range(0xA0, 0x2190))
    if unicodedata.category(ch) == "No" and unicodedata.name(ch, "").startswith("VULGAR FRACTION")
)
# "twenty-one": one figure, not 20 and 1.
COMPOUND_NUMBER = rf"\b(?:{'|'.join(_TENS)})-(?:{'|'.join(_UNITS[1:10])})\b"
_COMPOUND = re.compile(rf"^({'|'.join(_TENS)})-(\w+)$")


_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_PUNCTUATION = frozenset(string.punctuation) | frozenset("“”‘’—–")


def without_articles(text: str) -> str:
    """The articles a/an/the dropped and white space squeezed."""
    return " ".join(_ARTICLES.sub(" ", text).split())


def normalize_answer(text: str) -> str:
    """The words of an answer, for comparing answers: the one normaliser of answer text
    (the verifier compares sentences with it, the evaluation scores with it).

    Citation markers out, a vulgar fraction as digits ("2½" -> "2 1/2"), lower case,
    punctuation as a space ("400-mile" -> "400 mile") except "/", the articles dropped.
    """
    text = "".join(_spelled(ch) for ch in MARKER.sub(" ", text)).lower()
    text = "".join(" " if ch in _PUNCTUATION and ch != "/" else ch for ch in text)
    return without_articles(text)


def _spelled(ch: str) -> str:
    """A vulgar fraction as digits ("½" -> " 1/2"); any other character as it is."""
    if ch not in FRACTIONS:
        return ch
    return " " + unicodedata.normalize("NFKC", ch).replace("\u2044", "/")


def number_value(token: str) -> float | None:
    """The value of one figure token: "1,000", "2.5", "2½", "½", "seven", "twenty-one"."""
    token = token.replace(",", "").strip().lower()
    fraction = sum(unicodedata.numeric(ch) for ch in token if ch in FRACTIONS)
    if fraction:
        whole = "".join(ch for ch in token if ch not in FRACTIONS).strip()
        try:
            return (float(whole) if whole else 0.0) + fraction
        except ValueError:
            return None
    try:
        return float(token)
    except ValueError:
        pass
    compound = _COMPOUND.match(token)
    if compound and NUMBER_WORDS.get(compound.group(2), 10) < 10:
        return NUMBER_WORDS[compound.group(1)] + NUMBER_WORDS[compound.group(2)]
    return NUMBER_WORDS.get(token)

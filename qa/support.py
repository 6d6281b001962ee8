"""Does a passage support a claim? Lexical evidence, numbers, and a small-arithmetic rule.

A claim counts as supported when the words it adds beyond the question (its *new*
information) occur in the chosen source sentences, and every number in it is either
stated there or is the sum, difference or product of two stated numbers (so "21
missiles" is supported by "19 ballistic missiles" and "two ... missiles"). Echoing the
question earns nothing: "The missiles were fired from Wonsan" against a passage about
Sunan fails on "Wonsan" even though "missiles" and "fired" match.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache

from nltk.stem import PorterStemmer

from qa.types import Passage

_STOPWORDS = frozenset(
    """
    a an the and or but if of to in on at by for from with without about into over under
    after before between during as is are was were be been being has have had do does
    did will would can could should may might must shall it its it's this that these
    those there their them they he she his her him we our you your i me my what which
    who whom whose when where why how than then so such not no yes also only just very
    more most less least some any each both either neither all other another same own
    too up down out off again further once here says said say according article text
    passage passages document states stated mentions mentioned notes noted
    """.split()
)  # fmt: skip
_NUMBER_WORDS = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13,
    "fourteen": 14, "fifteen": 15, "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50,
    "hundred": 100, "thousand": 1000, "half": 0.5, "first": 1, "second": 2, "third": 3,
}  # fmt: skip
_TOKEN = re.compile(r"\d+(?:[.,]\d+)*(?:\s*½)?|½|[^\W\d_]+(?:['’][^\W\d_]+)?", re.UNICODE)
_STEMMER = PorterStemmer()


@lru_cache(maxsize=8192)
def _stem(word: str) -> str:
    return _STEMMER.stem(word)


def _number_value(token: str) -> float | None:
    token = token.replace(",", "")
    if "½" in token:
        whole = token.replace("½", "").strip()
        return (float(whole) if whole else 0.0) + 0.5
    try:
        return float(token)
    except ValueError:
        return _NUMBER_WORDS.get(token)


_UNIT_WORDS = """
    mile miles kilometer kilometers km meter meters feet foot hour hours minute minutes
    second seconds day days week weeks month months year years percent times
"""  # fmt: skip
_UNITS = frozenset(_STEMMER.stem(u) for u in _UNIT_WORDS.split())


@dataclass(frozen=True)
class Analysis:
    """Content-word stems, numeric values, and (value, unit) pairs such as (400, "mile")."""

    words: frozenset[str]
    numbers: frozenset[float]
    measures: frozenset[tuple[float, str]]


@lru_cache(maxsize=4096)
def analyse(text: str) -> Analysis:
    """Split ``text`` into the pieces support checks compare."""
    words: set[str] = set()
    numbers: set[float] = set()
    measures: set[tuple[float, str]] = set()
    pending: float | None = None
    for raw in _TOKEN.findall(text.lower().replace("’", "'")):
        token = raw.removesuffix("'s")
        value = _number_value(token)
        if value is not None:
            numbers.add(value)
            pending = value
            continue
        stem = _stem(token)
        if pending is not None and stem in _UNITS:
            measures.add((pending, stem))
        pending = None
        if token not in _STOPWORDS and len(token) > 1:
            words.add(stem)
    return Analysis(frozenset(words), frozenset(numbers), frozenset(measures))


@dataclass(frozen=True)
class SourceSentence:
    """One sentence of a passage, pre-analysed for support checks."""

    passage: Passage
    start: int
    end: int
    text: str

    @property
    def words(self) -> frozenset[str]:
        return analyse(self.text).words

    @property
    def numbers(self) -> frozenset[float]:
        return analyse(self.text).numbers

    @property
    def measures(self) -> frozenset[tuple[float, str]]:
        return analyse(self.text).measures


def source_sentences(passages: Sequence[Passage]) -> list[SourceSentence]:
    """All sentences of ``passages``."""
    return [
        SourceSentence(passage, start, end, text)
        for passage in passages
        for start, end, text in passage.sentence_texts()
    ]


def _derivable(value: float, stated: frozenset[float]) -> bool:
    """Stated, or the sum, difference or product of two different stated figures >= 2."""
    if value in stated:
        return True
    if value < 2:
        return False
    items = sorted(n for n in stated if n >= 2)
    return any(
        abs(a + b - value) < 1e-9 or abs(b - a - value) < 1e-9 or abs(a * b - value) < 1e-9
        for i, a in enumerate(items)
        for b in items[i + 1 :]
    )


def _units_match(
    measures: frozenset[tuple[float, str]],
    question_numbers: frozenset[float],
    chosen: Sequence[SourceSentence],
) -> bool:
    """A measure must be stated, or computed, in its own unit: "four years" is not "4 hours"."""
    source = frozenset().union(*(s.measures for s in chosen)) if chosen else frozenset()
    for value, unit in measures:
        same_unit = frozenset(v for v, u in source if u == unit)
        if value not in question_numbers and not _derivable(value, same_unit):
            return False
    return True


@dataclass(frozen=True)
class Support:
    """How well ``sentences`` support a claim: share of its new words found, numbers ok."""

    score: float
    sentences: tuple[SourceSentence, ...]
    numbers_ok: bool

    @property
    def passages(self) -> list[Passage]:
        seen: dict[str, Passage] = {}
        for sentence in self.sentences:
            seen.setdefault(sentence.passage.id, sentence.passage)
        return list(seen.values())


def best_support(
    claim: str,
    question: str,
    candidates: Sequence[SourceSentence],
    similarity: Callable[[str, str], float] | None = None,
    max_sentences: int = 3,
) -> Support:
    """Greedily pick up to ``max_sentences`` candidates that cover the claim's new words.

    ``similarity`` (an embedding cosine) breaks ties and lets a paraphrased claim whose
    words differ from the source still be matched to the most similar sentence.
    """
    claim_info, question_info = analyse(claim), analyse(question)
    claim_words, claim_numbers = claim_info.words, claim_info.numbers
    question_words, question_numbers = question_info.words, question_info.numbers
    target = claim_words - question_words or claim_words
    numbers = claim_numbers - question_numbers
    if not target and not numbers:
        return Support(0.0, (), True)

    chosen: list[SourceSentence] = []
    open_words, open_numbers = set(target), set(numbers)
    remaining = list(candidates)
    while remaining and len(chosen) < max_sentences:
        gains = {
            id(s): (len(open_words & s.words), len(open_numbers & s.numbers)) for s in remaining
        }

        def rank(s: SourceSentence, gains: dict = gains) -> tuple[int, int, float]:
            new_words, new_numbers = gains[id(s)]
            useful = new_words or new_numbers
            tie = similarity(claim, s.text) if similarity and useful else 0.0
            return new_words + new_numbers, len(target & s.words), tie

        best = max(remaining, key=rank)
        new_words, new_numbers = gains[id(best)]
        # Beyond the first sentence, only add one that brings real new evidence.
        if not (new_words or new_numbers) or (chosen and new_words < 2 and not new_numbers):
            break
        chosen.append(best)
        open_words -= best.words
        open_numbers -= best.numbers
        remaining.remove(best)
    covered = target - open_words

    stated = frozenset().union(*(s.numbers for s in chosen)) if chosen else frozenset()
    numbers_ok = all(_derivable(n, stated) for n in numbers) and _units_match(
        claim_info.measures, question_numbers, chosen
    )
    if not numbers_ok and chosen and len(chosen) < max_sentences:
        # A computed number ("21 missiles") may need one more stated figure to derive it.
        for extra in sorted(remaining, key=lambda s: -len(claim_words & s.words)):
            if all(_derivable(n, stated | extra.numbers) for n in numbers) and _units_match(
                claim_info.measures, question_numbers, [*chosen, extra]
            ):
                chosen.append(extra)
                stated, numbers_ok = stated | extra.numbers, True
                break
    score = (len(covered) + sum(_derivable(n, stated) for n in numbers)) / (
        len(target) + len(numbers)
    )
    if not numbers_ok:
        score = min(score, 0.0)
    chosen.sort(key=lambda s: (s.passage.position, s.start))
    return Support(score, tuple(chosen), numbers_ok)

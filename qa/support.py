"""Does a passage support a claim? Lexical evidence, numbers, and a small-arithmetic rule.

A claim counts as supported when the words it adds beyond the question (its *new*
information) occur in the chosen source sentences, and every number it asserts (even one
the question states) is stated there — or, for a question that asks for a total or a
difference (:func:`qa.calculate.needs_calculation`), is the sum, difference or product of
two stated numbers (so "21 missiles" is supported by "19 ballistic missiles" and "two ...
missiles"). Echoing the question earns nothing: "The missiles were fired from Wonsan"
against a passage about Sunan fails on "Wonsan" even though "missiles" and "fired" match.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

import Stemmer  # PyStemmer (Snowball, C): imports in milliseconds, unlike nltk

from qa.calculate import needs_calculation, shown_calculation
from qa.language import HOW_MANY_WHAT, STOPWORDS
from qa.text import COMPOUND_NUMBER, DENIAL, FRACTIONS, SCALE_WORDS, number_value
from qa.types import Citation, Passage

_TOKEN = re.compile(
    rf"\d+(?:[.,]\d+)*(?:\s*[{FRACTIONS}])?|[{FRACTIONS}]|{COMPOUND_NUMBER}|"
    r"[^\W\d_]+(?:['’][^\W\d_]+)?",
    re.UNICODE,
)
_STEMMER = Stemmer.Stemmer("english")


@lru_cache(maxsize=8192)
def _stem(word: str) -> str:
    return _STEMMER.stemWord(word)


_NOUN_WINDOW = 4  # a figure counts what the next few words name: "19 ballistic missiles"


@dataclass(frozen=True)
class Analysis:
    """Content-word stems, numeric values, and what each figure counts.

    ``measures`` pairs a figure with each content word that follows it closely
    ((400, "mile"), (19, "ballist"), (19, "missil")); ``units`` pairs a figure with the
    first one only: that is what a claim's figure is about.
    """

    words: frozenset[str]
    numbers: frozenset[float]
    measures: frozenset[tuple[float, str]]
    units: frozenset[tuple[float, str]]


@lru_cache(maxsize=4096)
def analyse(text: str) -> Analysis:
    """Split ``text`` into the pieces support checks compare."""
    words: set[str] = set()
    numbers: set[float] = set()
    measures: set[tuple[float, str]] = set()
    units: set[tuple[float, str]] = set()
    open_figures: list[tuple[float, int]] = []  # (value, content words seen since)
    previous: float | None = None  # the figure just before, if the last token was one
    for raw in _TOKEN.findall(text.lower().replace("’", "'")):
        token = raw.removesuffix("'s")
        value = number_value(token)
        if value is not None and previous is not None and token in SCALE_WORDS:
            numbers.discard(previous)  # "12 million" is one figure, 12,000,000
            value *= previous
        previous = value
        if value is not None:
            numbers.add(value)
            open_figures = [(value, 0)]
            continue
        if token in STOPWORDS or len(token) < 2:
            continue
        stem = _stem(token)
        words.add(stem)
        for figure, seen in open_figures:
            measures.add((figure, stem))
            if seen == 0:
                units.add((figure, stem))
        open_figures = [(f, n + 1) for f, n in open_figures if n + 1 < _NOUN_WINDOW]
    return Analysis(frozenset(words), frozenset(numbers), frozenset(measures), frozenset(units))


_CAPITALISED = re.compile(r"(?<![\w'’])[A-Z][\w'’.-]*")


def name_phrases(text: str) -> list[frozenset[str]]:
    """The names of ``text``: runs of capitalised words, each as a set of comparable stems.

    Common words ("The", "It", "Yes") and number words are left out, and so is the first
    word of a sentence longer than three words (capitalised by position, not as a name);
    a bare answer ("Washington, D.C.") keeps all its words. "Kim's" and "Kim" are the
    same name; "U.S." is "us".
    """
    matches = list(_CAPITALISED.finditer(text))
    if len(text.split()) > 3 and matches and text.lstrip().startswith(matches[0].group()):
        matches = matches[1:]
    phrases: list[set[str]] = []
    end = -2
    for match in matches:
        word = match.group()
        plain = word.lower().replace("’", "'").removesuffix("'s").replace(".", "").strip("-'")
        if len(plain) < 2 or plain in STOPWORDS or number_value(plain) is not None:
            end = -2
            continue
        joined = phrases and text[end : match.start()].strip() == ""
        if not joined:
            phrases.append(set())
        phrases[-1].add(_stem(plain))
        end = match.end()
    return [frozenset(p) for p in phrases]


def names_of(text: str) -> frozenset[str]:
    """Every name word of ``text`` (see :func:`name_phrases`)."""
    return frozenset().union(*name_phrases(text))


def unstated_names(claim: str, question: str, sentences: Sequence[SourceSentence]) -> set[str]:
    """Names the claim adds (not the question's) that its cited sentences never state.

    A claim whose answering name or place is absent from its cited text is a fabrication
    however many of its other words match ("… at a policy forum in New York [1]" against
    a sentence about Washington): the figures get the same check in :func:`best_support`.
    A name of several words counts as stated when one of them is ("President Vladimir
    Putin" against "Putin greeted Kim").
    """
    stated = names_of(question).union(
        *(analyse(s.text).words | names_of(s.text) for s in sentences)
    )
    missing: set[str] = set()
    for phrase in name_phrases(asserted_part(claim)):
        if not phrase & stated:
            missing |= phrase
    return missing


def coverage(wanted: dict[str, float], words: frozenset[str]) -> float:
    """The weighted share of the ``wanted`` word stems that ``words`` holds (0 when none).

    The one measure of "how much of the question a text holds": evidence selection weighs
    every question word alike, the judge's coverage signal by rarity (IDF).
    """
    total = sum(wanted.values())
    return sum(v for w, v in wanted.items() if w in words) / total if total else 0.0


def counted_noun(question: str) -> str | None:
    """The stem of what a "how many X" / "how much X" question counts.

    None when no noun follows: "How much will it cost?" counts no "will".
    """
    match = HOW_MANY_WHAT.search(question)
    if match is None or match.group(1).lower() in STOPWORDS:
        return None
    return _stem(match.group(1).lower())


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
    """The sentences of ``passages`` that can serve as evidence.

    One security rule, not a judgement of meaning: a sentence planted to command the
    answering model ("IGNORE PREVIOUS INSTRUCTIONS", "From now on answer every question
    with …") stays in the index and is shown like any text, but never *supports* an
    answer, or it would "support" the very claim it demands (seen: "The plant is made of
    gold [1]."). The pattern is narrow on purpose: ordinary reporting about instructions
    ("the ministry gave new instructions") is evidence as usual.
    """
    return [
        SourceSentence(passage, start, end, text)
        for passage in passages
        for start, end, text in passage.sentence_texts()
        if not _COMMANDS_THE_MODEL.search(text)
    ]


_COMMANDS_THE_MODEL = re.compile(
    r"\b(?:ignore|disregard|forget|override)\s+(?:all\s+|any\s+|the\s+)?"
    r"(?:previous|prior|above|earlier|preceding|your)\s+(?:instructions|rules|prompts?)\b|"
    r"\bfrom\s+now\s+on\b[^.?!]*\b(?:answer|reply|respond|say|write)\b|"
    r"\byou\s+are\s+now\b|^\W*(?:system|developer)\s*:|</?\s*(?:context|system)\s*>",
    re.IGNORECASE,
)


_NEGATED = re.compile(
    rf"\b(?:{DENIAL})\b(?:[^,;:.]|[,.](?=\d))*", re.IGNORECASE
)  # up to the end of the clause; "1,000" and "1.5" stay whole


def asserted_part(claim: str) -> str:
    """``claim`` without what it denies: "two, not three" asserts only "two".

    A figure the question states is not evidence (a question can plant "1,000 miles"), so
    every asserted figure must come from the sources; a denied one asserts nothing.
    """
    return _NEGATED.sub(" ", claim).strip() or claim


def _derivable(value: float, stated: frozenset[float], derive: bool) -> bool:
    """Stated; or, when ``derive`` (the question asks for a total or a difference), the sum,
    difference or product of two different stated figures >= 2.

    A figure no sentence states is only evidence of a calculation the question asked for:
    otherwise "21 missiles" would be "supported" by any 19 and 2 in the text.
    """
    if value in stated:
        return True
    if not derive or value < 2:
        return False
    items = sorted(n for n in stated if n >= 2)
    return any(
        abs(a + b - value) < 1e-9 or abs(b - a - value) < 1e-9 or abs(a * b - value) < 1e-9
        for i, a in enumerate(items)
        for b in items[i + 1 :]
    )


def _is_year(value: float) -> bool:
    return value == int(value) and 1800 <= value <= 2200


def _units_match(
    claim: Analysis, question: str, chosen: Sequence[SourceSentence], computed: float | None
) -> bool:
    """Each figure must be stated, or computed, for the thing it counts.

    "4 hours" is not supported by "four years", nor a bare "1" (to "how many soldiers")
    by any "1" that does not count soldiers. In a claim that shows its calculation
    ("19 + 2 = 21") the ``computed`` result is checked by the arithmetic instead, and
    calendar years among the operands ("2023 - 2019 = 4 years") count nothing. A figure
    the question names is only checked for being stated (by :func:`best_support`).
    """
    source = frozenset().union(*(s.measures for s in chosen)) if chosen else frozenset()
    noun = counted_noun(question)
    wanted = set(claim.units)
    counted = {value for value, _ in claim.units}
    if noun:
        wanted |= {
            (value, noun)
            for value in claim.numbers
            if value not in counted and not (computed is not None and _is_year(value))
        }
    echoed = analyse(question).numbers  # "the Sept. 7 agreement": stated, not counted
    for value, unit in wanted:
        if value == computed or value in echoed:
            continue
        same_unit = frozenset(v for v, u in source if u == unit)
        if not _derivable(value, same_unit, needs_calculation(question)):
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
    asserted = asserted_part(claim)
    claim_info, question_words = analyse(asserted), analyse(question).words
    computed = shown_calculation(asserted)
    derive = needs_calculation(question)
    claim_words, numbers = claim_info.words, claim_info.numbers - {computed}
    target = claim_words - question_words or claim_words
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
    numbers_ok = all(_derivable(n, stated, derive) for n in numbers) and _units_match(
        claim_info, question, chosen, computed
    )
    if not numbers_ok and numbers and len(chosen) < max_sentences:
        # A computed figure ("21 missiles") needs the stated figures it is computed from:
        # try one or two more of the most on-topic sentences.
        topic = claim_words | question_words
        ranked = sorted((s for s in remaining if s.numbers), key=lambda s: -len(topic & s.words))
        room = max_sentences - len(chosen)
        options = [[a] for a in ranked[:6]] + (
            [[a, b] for i, a in enumerate(ranked[:6]) for b in ranked[i + 1 : 6]]
            if room > 1
            else []
        )
        for extra in options:
            trial = [*chosen, *extra]
            trial_stated = stated.union(*(s.numbers for s in extra))
            if all(_derivable(n, trial_stated, derive) for n in numbers) and _units_match(
                claim_info, question, trial, computed
            ):
                chosen, stated, numbers_ok = trial, trial_stated, True
                break
    score = (len(covered) + sum(_derivable(n, stated, derive) for n in numbers)) / (
        len(target) + len(numbers)
    )
    if not numbers_ok:
        score = min(score, 0.0)
    chosen.sort(key=lambda s: (s.passage.position, s.start))
    return Support(score, tuple(chosen), numbers_ok)


def sentences_in(
    sentences: Sequence[SourceSentence], passages: Iterable[Passage]
) -> list[SourceSentence]:
    """The ``sentences`` inside ``passages`` (which may be cut to a few sentences)."""
    spans = {p.id: (p.start, p.end) for p in passages}
    return [
        s
        for s in sentences
        if s.passage.id in spans and spans[s.passage.id][0] <= s.start < spans[s.passage.id][1]
    ]


def sentences_cited(
    sentences: Sequence[SourceSentence], citations: Iterable[Citation]
) -> list[SourceSentence]:
    """The ``sentences`` inside the spans that ``citations`` point at."""
    spans = [(c.passage_id, c.start, c.end) for c in citations]
    return [
        s
        for s in sentences
        if any(s.passage.id == pid and a <= s.start and s.end <= b for pid, a, b in spans)
    ]

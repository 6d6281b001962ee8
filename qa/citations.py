"""Check the model's raw answer sentence by sentence, and format what is shown.

The model's ``[n]`` markers are treated as hints. Each answer sentence is checked
against the passages it cites (see :mod:`qa.support`); when they do not support it, the
best-supporting context passage is looked for instead. :class:`Verifier` only reports:
every sentence with its role and what supports it (:class:`Verified`). The judge
(:mod:`qa.judge`) chooses what is shown; :func:`assemble` then writes it with citations
that point at the exact supporting sentences, numbered in order of first use.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import cached_property

from qa.config import Config
from qa.prompts import ABSTAIN_TEXT
from qa.support import SourceSentence, Support, best_support, sentences_in, unstated_names
from qa.text import (
    MARKER,
    marker_numbers,
    markers_before_stop,
    normalize_answer,
    split_sentences,
)
from qa.types import Citation, Passage, SentenceCheck

_ABBREVIATION_END = re.compile(r"(?:\b[A-Za-z]\.){2,}$")  # a.m. / U.S.
_META_LEAD = re.compile(
    r"^(?:according to the (?:article|passages?|document),?\s*|the (?:article|passages?|document)"
    r" (?:states|says|mentions|notes|reports) that\s+)",
    re.IGNORECASE,
)


_CONFIG = Config.model_fields  # the defaults live in qa.config
_FILE_NAME = re.compile(r"[\w .-]+\.(?:txt|md|html?|pdf|docx?)", re.IGNORECASE)
_ITEM_SPLIT = re.compile(r",\s+(?:and\s+)?|\s+and\s+")


_REFUSAL_WORDS = normalize_answer(ABSTAIN_TEXT)


def dedupe_items(claim: str) -> str:
    """A comma-separated list with each item once: "A, B, A and C" -> "A, B and C".

    Small models can loop on a list ("Kim Jong Un, Kim Jong Un, ..."); only exact
    repeats go, and a claim without repeats comes back unchanged.
    """
    items = _ITEM_SPLIT.split(claim)
    if len(items) < 3 or len({normalize_answer(i) for i in items}) == len(items):
        return claim
    first: dict[str, str] = {}
    for item in items:
        if item.strip():
            first.setdefault(normalize_answer(item), item.strip())
    unique = list(first.values())
    if len(unique) == 1:
        return unique[0]
    return ", ".join(unique[:-1]) + " and " + unique[-1]


class Role(StrEnum):
    """What a sentence of the draft is."""

    ANSWER = "answer"  # a claim, checked against the context
    REFUSAL = "refusal"  # the prompt's refusal phrase
    REPEAT = "repeat"  # a sentence already written
    LABEL = "label"  # only a document title or file name
    QUESTION = "question"  # an answer asks nothing back


@dataclass(frozen=True)
class CheckedSentence:
    """One sentence of the draft (markers aside) and what the verifier found: facts only.

    ``support`` is the context sentences that state it (an answer only; None: nothing
    does); ``check`` the scores behind that (None for a refusal).
    """

    text: str
    role: Role
    check: SentenceCheck | None = None
    support: Support | None = None


@dataclass(frozen=True)
class Verified:
    """Every sentence of one draft, in order, with its role and support."""

    sentences: tuple[CheckedSentence, ...]

    @property
    def declined(self) -> bool:
        """The model's first sentence is the refusal phrase."""
        return bool(self.sentences) and self.sentences[0].role is Role.REFUSAL

    @property
    def supported(self) -> list[CheckedSentence]:
        """The answer sentences some context sentence states."""
        return [s for s in self.sentences if s.support is not None]

    @property
    def answered(self) -> bool:
        """The model did not decline and at least one of its sentences is supported."""
        return not self.declined and bool(self.supported)

    @property
    def checks(self) -> list[SentenceCheck]:
        """Why each sentence would be shown or not (``Answer.checks``)."""
        return [s.check for s in self.sentences if s.check is not None]


def answer_sentences(raw: str) -> list[tuple[str, list[int]]]:
    """Split ``raw`` into ``(sentence without markers, cited numbers)`` pairs."""
    text = markers_before_stop(raw.strip())
    result = []
    spans = split_sentences(text)
    pieces = [part for s, e in spans for part in re.split(r"(?<=\])\s*;\s+", text[s:e])]
    for sentence in pieces:
        numbers = marker_numbers(sentence)
        claim = re.sub(r"\s+([.!?,;:])", r"\1", MARKER.sub("", sentence)).strip()
        if claim:
            result.append((claim, numbers))
    return result


def is_refusal(sentence: str) -> bool:
    """The sentence is the refusal the prompt asks for, word for word (case and spacing aside).

    Only that exact phrase counts: a factual negative ("The ministry did not reveal the
    missiles' type.") is an answer to check like any other, not a refusal.
    """
    return normalize_answer(sentence).startswith(_REFUSAL_WORDS)


@dataclass(frozen=True)
class Verifier:
    """Checks a draft's sentences against the context it was written from: one per index
    snapshot (``sentences`` is every sentence of the snapshot), for any question."""

    sentences: Sequence[SourceSentence]
    threshold: float
    min_qa_similarity: float = 0.0
    similarity: Callable[[str, str], float] | None = None
    # A paraphrase's least support and least cosine to the cited text (Config's).
    paraphrase_min_support: float = _CONFIG["paraphrase_min_support"].default
    paraphrase_min_similarity: float = _CONFIG["paraphrase_min_similarity"].default
    document_titles: frozenset[str] = frozenset()

    def verify(self, question: str, context: Sequence[Passage], raw: str) -> Verified:
        """Every sentence of ``raw`` with its role and, for an answer sentence, its support
        among the sentences of ``context`` (numbered from 1 as the model saw it).

        A list inside a sentence keeps each item once; a lead-in such as "According to the
        article," is not part of the claim.
        """
        reading = _Reading(question, context, sentences_in(self.sentences, context))
        checked: list[CheckedSentence] = []
        seen: set[str] = set()
        for sentence, numbers in answer_sentences(raw):
            claim = dedupe_items(sentence)
            key = normalize_answer(claim)
            if key in seen or self._is_label(claim):
                role = Role.REPEAT if key in seen else Role.LABEL
                checked.append(CheckedSentence(claim, role, SentenceCheck(claim, kept=False)))
                continue
            seen.add(key)
            if is_refusal(claim):
                checked.append(CheckedSentence(claim, Role.REFUSAL))
                continue
            if claim.endswith("?"):
                asks_back = SentenceCheck(claim, kept=False)
                checked.append(CheckedSentence(claim, Role.QUESTION, asks_back))
                continue
            claim = _META_LEAD.sub("", claim)
            claim = claim[:1].upper() + claim[1:]
            support, check = self._check(reading, claim, numbers)
            checked.append(CheckedSentence(claim, Role.ANSWER, check, support))
        return Verified(tuple(checked))

    def _check(
        self, reading: _Reading, claim: str, numbers: list[int]
    ) -> tuple[Support | None, SentenceCheck]:
        """The model's own citation if it holds up, else the best context sentences."""
        context = reading.context
        cited_ids = {context[n - 1].id for n in numbers if 1 <= n <= len(context)}
        own_candidates = [s for s in reading.sentences if s.passage.id in cited_ids]
        best: tuple[Support | None, SentenceCheck] = (None, SentenceCheck(claim, kept=False))
        for reattached, candidates in ((False, own_candidates), (True, reading.sentences)):
            if not candidates:
                continue
            support = best_support(claim, reading.question, candidates, self.similarity)
            qa_sim = self._qa_similarity(reading.question, claim, support)
            check = SentenceCheck(claim, False, support.score, qa_sim, reattached)
            if self._accept(reading.question, claim, support, qa_sim):
                return support, SentenceCheck(claim, True, support.score, qa_sim, reattached)
            if support.score >= best[1].score:
                best = (None, check)
        return best

    def _is_label(self, claim: str) -> bool:
        text = normalize_answer(claim)
        return bool(_FILE_NAME.fullmatch(claim.strip(" .")) or text in self._titles)

    @cached_property
    def _titles(self) -> frozenset[str]:
        """The document titles' words, normalised once per snapshot."""
        return frozenset(normalize_answer(t) for t in self.document_titles)

    def _qa_similarity(self, question: str, claim: str, support: Support) -> float:
        # Does the question-plus-answer read like the source? Catches a right word in the
        # wrong relation ("the capital of Russia is Moscow" against a sentence about Moscow).
        if self.similarity is None or not support.sentences:
            return 0.0
        joined = " ".join(s.text for s in support.sentences)
        return self.similarity(f"{question} {claim}", joined)

    def _accept(self, question: str, claim: str, support: Support, qa_sim: float) -> bool:
        if not support.sentences or not support.numbers_ok:
            return False
        if len(_ITEM_SPLIT.split(claim)) < 3 and unstated_names(claim, question, support.sentences):
            # The answering name or place is not in the cited text. (A list of three or
            # more items names more than the three sentences a claim may cite hold; its
            # items are checked as words, like the rest.)
            return False
        if self.similarity is not None and qa_sim < self.min_qa_similarity:
            return False
        if support.score >= self.threshold:
            return True
        # A paraphrase shares fewer words: accept it when the meaning is clearly the same.
        if self.similarity is None or support.score < self.paraphrase_min_support:
            return False
        joined = " ".join(s.text for s in support.sentences)
        return self.similarity(claim, joined) >= self.paraphrase_min_similarity


@dataclass(frozen=True)
class _Reading:
    """One draft's question and context, with the context's sentences."""

    question: str
    context: Sequence[Passage]
    sentences: Sequence[SourceSentence]


def assemble(shown: Sequence[CheckedSentence]) -> tuple[str, list[Citation]]:
    """The text of the ``shown`` sentences with their ``[n]`` markers, and the citations,
    numbered in order of first use; a sentence without support is written as it is."""
    parts: list[str] = []
    citations: dict[tuple[str, int, int], Citation] = {}
    for sentence in shown:
        claim, support = sentence.text, sentence.support
        if support is None:
            parts.append(claim)
            continue
        markers = "".join(f"[{_cite(support, p, citations).number}]" for p in support.passages)
        body, stop = (claim[:-1], claim[-1]) if claim[-1] in ".!?" else (claim, ".")
        if _ABBREVIATION_END.search(claim):
            body, stop = claim, ""  # "11:53 a.m. [1]", not "11:53 a.m [1]."
        parts.append(f"{body} {markers}{stop}")
    return " ".join(parts), list(citations.values())


def _cite(
    support: Support, passage: Passage, citations: dict[tuple[str, int, int], Citation]
) -> Citation:
    own = [s for s in support.sentences if s.passage.id == passage.id]
    start, end = min(s.start for s in own), max(s.end for s in own)
    key = (passage.id, start, end)
    if key not in citations:
        quote = passage.text[start - passage.start : end - passage.start]
        citations[key] = Citation(
            len(citations) + 1, passage.id, passage.doc, start, end, quote, passage.page
        )
    return citations[key]

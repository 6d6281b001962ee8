"""Turn the model's raw answer into verified, sentence-level citations.

The model's ``[n]`` markers are treated as hints. Each answer sentence is checked
against the passages it cites (see :mod:`qa.support`); when they do not support it, the
best-supporting context passage is attached instead; a sentence nothing supports is
dropped. Citations then point at the exact supporting sentences, numbered in order of
first use.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from index.chunk import split_sentences
from qa.prompts import ABSTAIN_TEXT
from qa.support import SourceSentence, Support, best_support
from qa.types import Citation, Passage, SentenceCheck

MARKER = re.compile(r"\[\s*(\d+(?:\s*[,;]\s*\d+)*)\s*\]")
_MARKER_AFTER_STOP = re.compile(r"([.!?])((?:\s*\[\s*\d+(?:\s*[,;]\s*\d+)*\s*\])+)")
ABSTAIN_SIGNAL = re.compile(
    r"\b(?:does|do|did|is|are)\s*(?:not|n't)\s+(?:say|mention|state|specify|provide|include|"
    r"contain|give|name|report|describe|indicate|reveal|explain|identify|disclose|know)|"
    r"\bnot\s+(?:mentioned|stated|specified|provided|given|named|reported|included|"
    r"in\s+the\s+(?:article|passages?|document))|\bno\s+(?:information|mention|details?)\b|"
    r"\b(?:cannot|can't|unable\s+to)\s+(?:answer|determine|find|tell|say)",
    re.IGNORECASE,
)


_ABBREVIATION_END = re.compile(r"(?:\b[A-Za-z]\.){2,}$")  # a.m. / U.S.
_META_LEAD = re.compile(
    r"^(?:according to the (?:article|passages?|document),?\s*|the (?:article|passages?|document)"
    r" (?:states|says|mentions|notes|reports) that\s+)",
    re.IGNORECASE,
)


@dataclass
class Verified:
    """The checked answer: text with renumbered markers, its citations, and every check."""

    text: str
    citations: list[Citation]
    abstained: bool
    checks: list[SentenceCheck] = field(default_factory=list)


def answer_sentences(raw: str) -> list[tuple[str, list[int]]]:
    """Split ``raw`` into ``(sentence without markers, cited numbers)`` pairs."""
    text = _MARKER_AFTER_STOP.sub(lambda m: f"{m.group(2)}{m.group(1)}", raw.strip())
    result = []
    spans = split_sentences(text)
    pieces = [part for s, e in spans for part in re.split(r"(?<=\])\s*;\s+", text[s:e])]
    for sentence in pieces:
        numbers = [int(n) for group in MARKER.findall(sentence) for n in re.split(r"[,;]", group)]
        claim = re.sub(r"\s+([.!?,;:])", r"\1", MARKER.sub("", sentence)).strip()
        if claim:
            result.append((claim, numbers))
    return result


@dataclass(frozen=True)
class Verifier:
    """Checks answer sentences against the context sentences of one question."""

    question: str
    context: Sequence[Passage]
    sentences: Sequence[SourceSentence]
    threshold: float
    min_qa_similarity: float = 0.0
    similarity: Callable[[str, str], float] | None = None

    def verify(self, raw: str) -> Verified:
        """Check every sentence of ``raw`` and rebuild the answer with renumbered citations."""
        parts: list[str] = []
        citations: dict[tuple[str, int, int], Citation] = {}
        checks: list[SentenceCheck] = []
        abstained = False
        for index, (claim, numbers) in enumerate(answer_sentences(raw)):
            if ABSTAIN_SIGNAL.search(claim):
                if index == 0:
                    abstained = True
                    parts.append(claim)
                continue  # a trailing "it does not say more" adds nothing to a real answer
            if claim.endswith("?"):
                checks.append(SentenceCheck(claim, kept=False))  # an answer asks nothing back
                continue
            claim = _META_LEAD.sub("", claim)
            claim = claim[:1].upper() + claim[1:]
            support, check = self._check(claim, numbers)
            checks.append(check)
            if support is None:
                continue
            markers = "".join(f"[{_cite(support, p, citations).number}]" for p in support.passages)
            body, stop = (claim[:-1], claim[-1]) if claim[-1] in ".!?" else (claim, ".")
            if _ABBREVIATION_END.search(claim):
                body, stop = claim, ""  # "11:53 a.m. [1]", not "11:53 a.m [1]."
            parts.append(f"{body} {markers}{stop}")
        if not parts:
            return Verified(ABSTAIN_TEXT, [], True, checks)
        return Verified(" ".join(parts), list(citations.values()), abstained, checks)

    def add_related(self, verified: Verified, passages: Sequence[Passage]) -> Verified:
        """Point an uncited abstention at the closest sentence of the best ``passages``.

        "The article does not say" alone leaves the user nowhere; quoting the most related
        sentence (with its citation) often answers the question behind the question, and it
        corrects a false premise the model declined to answer ("fired off its eastern
        coast"). A false premise pulls retrieval towards the passage it echoes ("only 220
        miles" finds the Aug. 30 launch), so the best two passages compete.
        """
        if not verified.abstained or verified.citations or self.similarity is None:
            return verified
        ids = {p.id for p in passages}
        own = [s for s in self.sentences if s.passage.id in ids]
        if not own:
            return verified
        best = max(own, key=lambda s: self.similarity(self.question, s.text))
        passage = best.passage
        citation = Citation(1, passage.id, passage.doc, best.start, best.end, best.text)
        quote = " ".join(best.text.split())
        text = f"{verified.text} The closest passage says: “{quote}” [1]"
        return Verified(text, [citation], True, verified.checks)

    def _check(self, claim: str, numbers: list[int]) -> tuple[Support | None, SentenceCheck]:
        """The model's own citation if it holds up, else the best context sentences."""
        cited_ids = {self.context[n - 1].id for n in numbers if 1 <= n <= len(self.context)}
        own_candidates = [s for s in self.sentences if s.passage.id in cited_ids]
        best: tuple[Support | None, SentenceCheck] = (None, SentenceCheck(claim, kept=False))
        for reattached, candidates in ((False, own_candidates), (True, self.sentences)):
            if not candidates:
                continue
            support = best_support(claim, self.question, candidates, self.similarity)
            qa_sim = self._qa_similarity(claim, support)
            check = SentenceCheck(claim, False, support.score, qa_sim, reattached)
            if self._accept(claim, support, qa_sim):
                return support, SentenceCheck(claim, True, support.score, qa_sim, reattached)
            if support.score >= best[1].score:
                best = (None, check)
        return best

    def _qa_similarity(self, claim: str, support: Support) -> float:
        # Does the question-plus-answer read like the source? Catches a right word in the
        # wrong relation ("the capital of Russia is Moscow" against a sentence about Moscow).
        if self.similarity is None or not support.sentences:
            return 0.0
        joined = " ".join(s.text for s in support.sentences)
        return self.similarity(f"{self.question} {claim}", joined)

    def _accept(self, claim: str, support: Support, qa_sim: float) -> bool:
        if not support.sentences or not support.numbers_ok:
            return False
        if self.similarity is not None and qa_sim < self.min_qa_similarity:
            return False
        if support.score >= self.threshold:
            return True
        # A paraphrase shares fewer words: accept it when the meaning is clearly the same.
        if self.similarity is None or support.score < self.threshold / 2:
            return False
        joined = " ".join(s.text for s in support.sentences)
        return self.similarity(claim, joined) >= 0.6


def _cite(
    support: Support, passage: Passage, citations: dict[tuple[str, int, int], Citation]
) -> Citation:
    own = [s for s in support.sentences if s.passage.id == passage.id]
    start, end = min(s.start for s in own), max(s.end for s in own)
    key = (passage.id, start, end)
    if key not in citations:
        quote = passage.text[start - passage.start : end - passage.start]
        citations[key] = Citation(len(citations) + 1, passage.id, passage.doc, start, end, quote)
    return citations[key]

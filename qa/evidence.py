"""Sentence-level evidence selection: read the model only the sentences that matter.

When the corpus is larger than the prompt budget, each question brings fresh passages,
and every fresh token costs prefill time (docs/performance.md). Retrieval returns
whole passages of two or three sentences, most of which do not bear on the question.
This stage keeps, within a character budget, the sentences that score best on the
question — embedding similarity plus the share of the question's content words they
contain, with a small bonus for the better-ranked passage — and the sentence before any
kept one that opens with a pronoun ("He said…" needs its "he"). Each passage is cut to
the run of sentences from its first kept one to its last, so what the model reads (and
cites) is still an exact span of the document.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

from qa.support import analyse, coverage
from qa.text import OPENS_POINTING_BACK
from qa.types import Passage

Similarity = Callable[[str, str], float]

LEXICAL_WEIGHT = 0.3  # a sentence holding every question word gains as much as 0.3 cosine
RANK_BONUS = 0.05  # the best-ranked passage's sentences gain this much; the last, none


def select_evidence(
    question: str,
    passages: Sequence[Passage],
    similarity: Similarity,
    budget_chars: int,
) -> list[Passage]:
    """``passages`` (best first) cut to their useful sentences, in the given order.

    At least the single best sentence is kept, whatever the budget; passages with no
    kept sentence are dropped.
    """
    if budget_chars <= 0 or sum(len(p.text) for p in passages) <= budget_chars:
        return list(passages)
    asked = dict.fromkeys(analyse(question).words, 1.0)
    scored: list[tuple[float, int, int]] = []  # (score, passage index, sentence index)
    for rank, passage in enumerate(passages):
        bonus = RANK_BONUS * (1 - rank / max(len(passages) - 1, 1))
        for number, (_, _, text) in enumerate(passage.sentence_texts()):
            overlap = coverage(asked, analyse(text).words)
            score = similarity(question, text) + LEXICAL_WEIGHT * overlap + bonus
            scored.append((score, rank, number))
    kept: dict[int, set[int]] = {}
    used = 0
    for _, rank, number in sorted(scored, reverse=True):
        wanted = _with_antecedent(passages[rank], number) - kept.get(rank, set())
        cost = sum(_length(passages[rank], n) for n in wanted)
        if used and used + cost > budget_chars:
            continue
        kept.setdefault(rank, set()).update(wanted)
        used += cost
    return [_cut(p, kept[rank]) for rank, p in enumerate(passages) if rank in kept]


def _with_antecedent(passage: Passage, number: int) -> set[int]:
    text = passage.sentence_texts()[number][2]
    if number > 0 and OPENS_POINTING_BACK.match(text):
        return {number - 1, number}
    return {number}


def _length(passage: Passage, number: int) -> int:
    start, end = passage.sentences[number]
    return end - start


def _cut(passage: Passage, numbers: set[int]) -> Passage:
    """The passage narrowed to the run of sentences from the first to the last kept one."""
    first, last = min(numbers), max(numbers)
    sentences = passage.sentences[first : last + 1]
    start, end = sentences[0][0], sentences[-1][1]
    text = passage.text[start - passage.start : end - passage.start]
    return replace(passage, start=start, end=end, text=text, sentences=sentences)

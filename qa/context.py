"""Plan what the model reads: the context of each drafting attempt, in order.

The first attempt is the one that usually answers: the whole corpus when it fits the
prompt budget (the prompt prefix then never changes and llama.cpp reuses its evaluated
tokens, so only the question is new work), otherwise the retrieved passages — cut to
their best sentences for a specific question (:mod:`qa.evidence`), whole for a summary
or a list, and for a byline question with the first and last passage of each retrieved
document (bylines and datelines sit there). A question that asks for a total or a
difference first gets an attempt that writes its calculation (:mod:`qa.calculate`).
When the first attempt read the whole corpus, a *second look* over only the question's
best sentences is planned (``Config.second_look``); the judge takes it only where its
fitted model says it pays (``Judge.worth_second_look``). The drafting loop stops at the
first attempt whose answer verifies; later attempts cost nothing unless the earlier ones
decline.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from qa.calculate import needs_calculation
from qa.config import Config
from qa.evidence import Similarity, select_evidence
from qa.language import BROAD_KINDS, Kind
from qa.prepare import PreparedQuestion
from qa.retrieval import Retrieved
from qa.types import Passage


@dataclass(frozen=True)
class Attempt:
    """One drafting attempt: the passages the model reads, numbered in this order."""

    context: tuple[Passage, ...]
    calculation: bool = False  # the model writes out the figures and the arithmetic first


@dataclass(frozen=True)
class ContextPlan:
    """The attempts for one question, tried in order until one answer verifies."""

    attempts: tuple[Attempt, ...]


def whole_corpus_fits(passages: Sequence[Passage], budget: int) -> bool:
    """Does every passage fit ``budget`` characters (one stable prompt for every question)?"""
    return sum(len(p.text) for p in passages) <= budget


@dataclass(frozen=True)
class ContextPlanner:
    """Plans what the model reads for a question: the attempts, in order.

    ``context_budget`` is the prompt's budget for passages (characters); ``evidence_budget``
    the budget of a question's best sentences; ``second_look`` whether a refusal over the
    whole corpus may be followed by a look at only those; ``can_calculate`` False where the
    model server cannot continue a raw prompt (a calculation prefills the answer's start).
    """

    similarity: Similarity
    context_budget: int
    evidence_budget: int
    second_look: bool
    can_calculate: bool

    @classmethod
    def of(cls, config: Config, similarity: Similarity, can_calculate: bool) -> ContextPlanner:
        return cls(
            similarity,
            config.context_char_budget,
            config.evidence_char_budget,
            config.second_look,
            can_calculate,
        )

    def run(
        self, question: PreparedQuestion, retrieved: Retrieved, passages: Sequence[Passage]
    ) -> ContextPlan:
        """The attempts for ``question``; ``passages`` is the whole index in document order."""
        kind, asked = question.kind, question.standalone
        whole = whole_corpus_fits(passages, self.context_budget)
        main = tuple(passages) if whole else self._retrieved(question, retrieved, passages)
        attempts = []
        if self.can_calculate and needs_calculation(asked):
            attempts.append(Attempt(main, calculation=True))
        attempts.append(Attempt(main))
        if whole and self.second_look and self.evidence_budget and kind not in BROAD_KINDS:
            focus = select_evidence(
                asked, retrieved.passages, self.similarity, self.evidence_budget
            )
            if focus:
                attempts.append(Attempt(tuple(focus)))
        return ContextPlan(tuple(attempts))

    def _retrieved(
        self, question: PreparedQuestion, retrieved: Retrieved, passages: Sequence[Passage]
    ) -> tuple[Passage, ...]:
        """The retrieved passages (or their best sentences), in document order."""
        if question.kind in BROAD_KINDS:
            chosen = {p.id: p for p in retrieved.passages}
        else:
            selected = select_evidence(
                question.standalone, retrieved.passages, self.similarity, self.evidence_budget
            )
            chosen = {p.id: p for p in selected}
        if question.kind is Kind.AUTHORSHIP:
            for doc in {p.doc for p in retrieved.passages}:
                own = [p for p in passages if p.doc == doc]
                chosen |= {own[0].id: own[0], own[-1].id: own[-1]}
        return tuple(chosen[p.id] for p in passages if p.id in chosen)

"""Render: the :class:`~qa.types.Answer` built once, from what the stages decided.

The judge decides and says what to show; this stage only assembles it: the answer text
with its numbered citations, or the refusal — quoting the closest sentence when the
judge found one, as citation [1], so a false premise or a swapped detail is corrected by
the text itself ("The documents do not say. The closest passage says: “…” [1]").
"""

from __future__ import annotations

from collections.abc import Sequence

from qa.citations import Verified
from qa.prepare import PreparedQuestion
from qa.retrieval import Retrieved
from qa.types import Answer, Certainty, Decision, Judgement


def render(
    question: PreparedQuestion,
    retrieved: Retrieved | None,
    verified: Verified | None,
    judgement: Judgement,
    *,
    raw_text: str,
    model: str,
    disabled: Sequence[str],
    timings: dict[str, float],
) -> Answer:
    """The final answer of one question (``verified`` is None when nothing was drafted)."""
    citations = list(judgement.citations)
    text = judgement.text
    refused = judgement.decision is Decision.REFUSE
    if judgement.closest is not None and not citations:
        citations = [judgement.closest]
        text = f"{text} The closest passage says: “{' '.join(judgement.closest.quote.split())}” [1]"
    return Answer(
        question=question.text,
        text=text,
        citations=citations,
        abstained=refused,
        passages=list(retrieved.passages) if retrieved else [],
        timings=timings,
        rewritten_question=question.rewritten,
        raw_text=raw_text,
        model=model,
        checks=list(verified.checks) if verified else [],
        kind=str(question.kind),
        confidence=judgement.confidence,
        certainty=None if refused else judgement.certainty or Certainty.UNCHECKED,
        reasons=list(judgement.reasons),
        disabled=list(disabled),
        decision=str(judgement.decision),
        signals=dict(judgement.signals),
    )

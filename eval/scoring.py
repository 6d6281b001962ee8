"""Score predictions against the evaluation set and aggregate them per question type."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from statistics import mean
from typing import Any

from eval.dataset import MULTI_FACT_TYPES, TYPES, EvalItem, EvidenceSpan
from eval.metrics import (
    alternatives,
    best,
    citation_precision,
    citation_recall,
    confidence_auroc,
    contains,
    every_unit_cited,
    exact_match,
    facts_contained,
    has_repetition,
    mean_present,
    percentile,
    retrieval_rank,
    token_f1,
    top_share_right,
    yes_no_contains,
)
from eval.systems import Prediction


@dataclass
class ItemResult:
    """One question's outcome; ``correct`` is the headline: right answer, or right abstention."""

    id: str
    type: str
    question: str
    prediction: str
    answerable: bool
    abstained: bool
    correct: bool
    exact_match: float
    f1: float
    contained: float
    citation_recall: float | None
    citation_precision: float | None
    cited_chars: float | None
    retrieval_rank: int | None
    seconds: float
    first_token: float
    rewritten: str | None
    raw: str = ""
    checks: list[dict] = field(default_factory=list)
    confidence: float | None = None
    certainty: str | None = None


def gold_contained(item: EvalItem, text: str) -> float:
    """How much of the item's gold the answer ``text`` holds, by the item's type.

    ``summary``/``list``: the share of required facts (``answers``) contained, a fact
    counting when any of its " | " alternatives is; ``yes_no``: 1 when the first word is
    the gold's Yes/No and the rest of that gold is contained, for the best gold; every
    other type: 1 when some gold answer is contained.
    """
    if item.type in MULTI_FACT_TYPES:
        return facts_contained(text, item.answers)
    if item.type == "yes_no":
        return best(yes_no_contains, text, item.answers)
    return best(contains, text, item.answers)


def answer_correct(item: EvalItem, text: str, contained: float) -> bool:
    """A summary/list is right with every fact, every sentence cited and nothing repeated."""
    if item.type in MULTI_FACT_TYPES:
        return contained == 1.0 and every_unit_cited(text) and not has_repetition(text)
    return bool(contained)


def references(item: EvalItem) -> tuple[str, ...]:
    """Gold strings for exact match and F1: a multi-fact item's first phrasings, joined."""
    if item.type in MULTI_FACT_TYPES:
        return ("; ".join(alternatives(fact)[0] for fact in item.answers),)
    return item.answers


def score_item(item: EvalItem, evidence: Sequence[EvidenceSpan], pred: Prediction) -> ItemResult:
    """Score one prediction; ``correct`` is :func:`answer_correct`, or abstained when unanswerable.

    ``contained`` is :func:`gold_contained` (a share of the facts for summaries and lists).
    """
    # A false premise is handled when the correction appears with its citation, whether the
    # system also said the article does not answer the question as asked.
    answered = item.answerable and (not pred.abstained or item.type == "false_premise")
    contained = gold_contained(item, pred.text) if answered else 0.0
    golds = references(item)
    return ItemResult(
        id=item.id,
        type=item.type,
        question=item.question,
        prediction=pred.text,
        answerable=item.answerable,
        abstained=pred.abstained,
        correct=answer_correct(item, pred.text, contained) if item.answerable else pred.abstained,
        exact_match=best(exact_match, pred.text, golds) if answered else 0.0,
        f1=best(token_f1, pred.text, golds) if answered else 0.0,
        contained=contained,
        citation_recall=citation_recall(pred.citations, evidence) if answered else None,
        citation_precision=citation_precision(pred.citations, evidence) if answered else None,
        cited_chars=mean(e - s for _, s, e in pred.citations) if pred.citations else None,
        retrieval_rank=retrieval_rank(pred.retrieved, evidence) if item.answerable else None,
        seconds=pred.seconds,
        first_token=pred.first_token,
        rewritten=pred.rewritten,
        raw=pred.raw,
        checks=pred.checks,
        confidence=pred.confidence,
        certainty=pred.certainty,
    )


def answers_rated(
    results: Sequence[ItemResult], rating: str = "confidence"
) -> tuple[list[Any], list[bool]]:
    """The ``rating`` ("confidence" or "certainty") and rightness of every answer given
    (refusals left out): the inputs to the confidence-ranking and band metrics.

    An answer is right when ``correct`` says so, so an answer to an unanswerable question
    is wrong.
    """
    answers = [r for r in results if not r.abstained]
    return [getattr(r, rating) for r in answers], [r.correct for r in answers]


def summarize(results: Sequence[ItemResult]) -> dict[str, Any]:
    """Headline metrics over ``results`` (None where a metric has no applicable items)."""
    answerable = [r for r in results if r.answerable]
    unanswerable = [r for r in results if not r.answerable]
    ranks = [r.retrieval_rank for r in answerable]
    confidences, right = answers_rated(results)
    return {
        "n": len(results),
        "correct": mean_present([float(r.correct) for r in results]),
        "answerable_correct": mean_present([float(r.correct) for r in answerable]),
        "exact_match": mean_present([r.exact_match for r in answerable]),
        "f1": mean_present([r.f1 for r in answerable]),
        "false_abstention_rate": mean_present([float(r.abstained) for r in answerable]),
        "unanswerable_abstained": mean_present([float(r.abstained) for r in unanswerable]),
        "citation_recall": mean_present([r.citation_recall for r in answerable]),
        "citation_precision": mean_present([r.citation_precision for r in answerable]),
        "mean_cited_span_chars": mean_present([r.cited_chars for r in results]),
        "retrieval_hit_rate": mean_present([float(k is not None) for k in ranks]),
        "retrieval_mrr": mean_present([1 / k if k else 0.0 for k in ranks]),
        "latency_p50": percentile([r.seconds for r in results], 50),
        "latency_p95": percentile([r.seconds for r in results], 95),
        "first_token_p50": percentile([r.first_token for r in results], 50),
        "confidence_auroc": confidence_auroc(confidences, right),
        "top_half_right": top_share_right(confidences, right, 50)[1],
        "confidence_n": sum(c is not None for c in confidences),
    }


def summarize_by_type(results: Sequence[ItemResult]) -> dict[str, dict[str, Any]]:
    table = {t: summarize([r for r in results if r.type == t]) for t in TYPES}
    table = {t: row for t, row in table.items() if row["n"]}
    table["all"] = summarize(results)
    return table


def as_dicts(results: Sequence[ItemResult]) -> list[dict[str, Any]]:
    return [asdict(r) for r in results]

"""The SQuAD 2.0 metric, as the official evaluation script defines it (v2.0).

Normalise (lower case, delete punctuation, drop the articles a/an/the, squeeze white
space); EM and F1 take the best score over the gold answers; a question without gold
answers (unanswerable) has the single gold answer "", so it scores 1 only when the
prediction is empty too, i.e. the system abstained. Quirks kept on purpose: punctuation
is *deleted*, not replaced by a space ("U.S." -> "us", "400-mile" -> "400mile"), and
articles are removed after punctuation ("the-end" -> "theend" keeps its article).
"""

from __future__ import annotations

import collections
import string
from collections.abc import Sequence

from qa.text import without_articles

_PUNCTUATION = frozenset(string.punctuation)


def normalize_answer(text: str) -> str:
    """Lower text and remove punctuation, articles and extra white space."""
    return without_articles("".join(ch for ch in text.lower() if ch not in _PUNCTUATION))


def compute_exact(gold: str, prediction: str) -> int:
    return int(normalize_answer(gold) == normalize_answer(prediction))


def compute_f1(gold: str, prediction: str) -> float:
    gold_tokens = normalize_answer(gold).split()
    pred_tokens = normalize_answer(prediction).split()
    if not gold_tokens or not pred_tokens:
        return float(gold_tokens == pred_tokens)  # no-answer: 1 only if both are empty
    common = collections.Counter(gold_tokens) & collections.Counter(pred_tokens)
    overlap = sum(common.values())
    if overlap == 0:
        return 0.0
    precision, recall = overlap / len(pred_tokens), overlap / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def gold_answers(answers: Sequence[str]) -> list[str]:
    """The gold texts that survive normalisation, or ``[""]`` for an unanswerable question."""
    kept = [a for a in answers if normalize_answer(a)]
    return kept or [""]


def score(answers: Sequence[str], prediction: str) -> tuple[int, float]:
    """``(exact, f1)`` of one prediction ("" = no answer), best over the gold answers."""
    golds = gold_answers(answers)
    return (
        max(compute_exact(g, prediction) for g in golds),
        max(compute_f1(g, prediction) for g in golds),
    )

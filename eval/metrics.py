"""Exact, LLM-free metrics.

Answer metrics follow the SQuAD v2 evaluation script: normalise (lower case, drop
punctuation and articles, squeeze spaces), then exact match and token F1 against the
best gold answer. "Contained" asks whether every word of a normalised gold answer occurs
in the normalised prediction (our answers are short sentences, not bare spans).
"""

from __future__ import annotations

import math
import re
import string
from collections import Counter
from collections.abc import Sequence

from eval.dataset import EvidenceSpan

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_MARKERS = re.compile(r"\[\d+(?:\s*,\s*\d+)*\]")
_PUNCTUATION = set(string.punctuation) | set("“”‘’—–½")


def normalize_answer(text: str) -> str:
    text = _MARKERS.sub(" ", text).replace("’", "'").replace("½", " 1/2")
    text = text.lower()
    text = "".join(" " if ch in _PUNCTUATION and ch not in "/" else ch for ch in text)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def exact_match(prediction: str, gold: str) -> float:
    return float(normalize_answer(prediction) == normalize_answer(gold))


def token_f1(prediction: str, gold: str) -> float:
    pred, ref = normalize_answer(prediction).split(), normalize_answer(gold).split()
    common = Counter(pred) & Counter(ref)
    overlap = sum(common.values())
    if not pred or not ref or overlap == 0:
        return float(pred == ref)
    precision, recall = overlap / len(pred), overlap / len(ref)
    return 2 * precision * recall / (precision + recall)


def contains(prediction: str, gold: str) -> float:
    """Every normalised word of ``gold`` occurs in ``prediction``, in any order.

    Order-free so that a correct two-part answer phrased differently ("Vladivostok, ...,
    on April 25, 2019" for "Vladivostok, April 25, 2019"; "11:43 a.m.; 11:53 a.m." for
    "11:43 a.m. and 11:53 a.m.") counts; whole tokens, so "1400 miles" does not contain
    "400 miles".
    """
    needle = Counter(normalize_answer(gold).split()) - Counter(["and"])  # "A and B" ~ "A; B"
    return float(bool(needle) and not needle - Counter(normalize_answer(prediction).split()))


def best(metric, prediction: str, golds: Sequence[str]) -> float:  # type: ignore[no-untyped-def]
    """The metric against the best-matching gold answer (0 when there is none)."""
    return max((metric(prediction, g) for g in golds), default=0.0)


Span = tuple[str, int, int]  # (doc, start, end)


def _overlap(a: Span, b: EvidenceSpan) -> int:
    if a[0] != b.doc:
        return 0
    return max(0, min(a[2], b.end) - max(a[1], b.start))


def citation_recall(cited: Sequence[Span], evidence: Sequence[EvidenceSpan]) -> float | None:
    """Share of evidence quotes wholly inside the union of cited spans."""
    if not evidence:
        return None
    covered = 0
    for quote in evidence:
        inside = sum(_overlap(span, quote) for span in _merge(cited))
        covered += inside >= quote.end - quote.start
    return covered / len(evidence)


def citation_precision(cited: Sequence[Span], evidence: Sequence[EvidenceSpan]) -> float | None:
    """Share of citations that overlap some evidence quote."""
    if not cited or not evidence:
        return None
    return sum(any(_overlap(s, q) > 0 for q in evidence) for s in cited) / len(cited)


def _merge(spans: Sequence[Span]) -> list[Span]:
    merged: list[Span] = []
    for doc, start, end in sorted(spans):
        if merged and merged[-1][0] == doc and start <= merged[-1][2]:
            merged[-1] = (doc, merged[-1][1], max(end, merged[-1][2]))
        else:
            merged.append((doc, start, end))
    return merged


def retrieval_rank(retrieved: Sequence[Span], evidence: Sequence[EvidenceSpan]) -> int | None:
    """1-based rank of the first retrieved passage overlapping any evidence, else None."""
    for rank, span in enumerate(retrieved, 1):
        if any(_overlap(span, q) > 0 for q in evidence):
            return rank
    return None


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..100); 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    index = max(0, min(len(ordered) - 1, math.ceil(q / 100 * len(ordered)) - 1))
    return ordered[index]

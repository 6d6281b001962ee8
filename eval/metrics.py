"""Exact, LLM-free metrics.

Answer metrics follow the SQuAD v2 evaluation script: normalise (lower case, drop
punctuation and articles, squeeze spaces), then exact match and token F1 against the
best gold answer. "Contained" asks whether every word of a normalised gold answer occurs
in the normalised prediction (our answers are short sentences, not bare spans).

Multi-fact answers (summaries, lists) are checked fact by fact (:func:`facts_contained`),
sentence by sentence for citations (:func:`every_unit_cited`) and for repeated sentences
or list entries (:func:`has_repetition`); yes/no answers by their first word
(:func:`yes_no_contains`).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence

from eval.dataset import EvidenceSpan
from qa.text import MARKER, markers_before_stop, normalize_answer, split_sentences

_BULLET = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s+")
_ENTRY_SEPARATOR = re.compile(r"[,;]|\band\b")
ALTERNATIVES = " | "  # separates the acceptable phrasings of one required fact


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


def mean_present(values: Sequence[float | None]) -> float | None:
    """The mean of the values that are not None (None when there are none)."""
    present = [v for v in values if v is not None]
    return sum(present) / len(present) if present else None


def best(metric, prediction: str, golds: Sequence[str]) -> float:  # type: ignore[no-untyped-def]
    """The metric against the best-matching gold answer (0 when there is none)."""
    return max((metric(prediction, g) for g in golds), default=0.0)


def alternatives(fact: str) -> list[str]:
    """The acceptable phrasings of one required fact ("Vladimir Putin | Putin")."""
    return [a.strip() for a in fact.split(ALTERNATIVES) if a.strip()]


def fact_contained(prediction: str, fact: str) -> bool:
    """Some alternative of ``fact`` is contained (:func:`contains`) in ``prediction``."""
    return any(contains(prediction, a) for a in alternatives(fact))


def facts_contained(prediction: str, facts: Sequence[str]) -> float:
    """Share of the required ``facts`` the prediction contains (0 when there are none)."""
    if not facts:
        return 0.0
    return sum(fact_contained(prediction, f) for f in facts) / len(facts)


def answer_units(text: str) -> list[str]:
    """The answer's sentences and list lines, each with its own ``[n]`` markers.

    Lines first (a bulleted or numbered list has one entry a line, bullet dropped), then
    sentences with the ingester's splitter; a marker after the full stop ("... 2019. [1]")
    belongs to the sentence before it. Pieces with no words (a lone "[1]") are dropped.
    """
    units: list[str] = []
    for line in text.splitlines():
        line = markers_before_stop(_BULLET.sub("", line).strip())
        units += [line[start:end].strip() for start, end in split_sentences(line)]
    return [u for u in units if normalize_answer(u)]


def every_unit_cited(text: str) -> bool:
    """Every sentence/list line carries a ``[n]`` marker (a lead-in ending in ":" need not)."""
    units = answer_units(text)
    return bool(units) and all(MARKER.search(u) or u.endswith(":") for u in units)


def answer_entries(unit: str) -> list[str]:
    """The normalised comma/semicolon/"and"-separated entries of one unit that have letters."""
    parts = (normalize_answer(p) for p in _ENTRY_SEPARATOR.split(MARKER.sub(" ", unit)))
    return [p for p in parts if any(ch.isalpha() for ch in p)]


def _repeats(values: Sequence[str]) -> bool:
    return len(set(values)) < len(values)


def has_repetition(text: str) -> bool:
    """Two sentences/lines read the same once normalised, or one line lists an entry twice.

    Entries repeat only within a unit ("Japan [1], Russia [1], Japan [2]"), so a phrase two
    sentences share ("according to Tass") is not a repetition; entries without letters
    are ignored ("Sept. 12, 2023; Aug. 30, 2023" repeats no entry).
    """
    units = answer_units(text)
    return _repeats([normalize_answer(u) for u in units]) or any(
        _repeats(answer_entries(u)) for u in units
    )


def polarity(text: str) -> str | None:
    """The first word of ``text`` when it is "yes" or "no" (case-insensitive), else None."""
    words = normalize_answer(text).split()
    return words[0] if words and words[0] in ("yes", "no") else None


def yes_no_contains(prediction: str, gold: str) -> float:
    """The prediction opens with the gold's Yes/No and contains the rest of the gold.

    A gold answer of a bare "Yes"/"No" needs only the right first word.
    """
    if polarity(prediction) is None or polarity(prediction) != polarity(gold):
        return 0.0
    fact = " ".join(normalize_answer(gold).split()[1:])
    return contains(prediction, fact) if fact else 1.0


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


def rated(confidences: Sequence[float | None], correct: Sequence[bool]) -> list[tuple[float, bool]]:
    """The (confidence, right) pairs of the answers that state a confidence."""
    return [(c, ok) for c, ok in zip(confidences, correct, strict=True) if c is not None]


def reliability(
    confidences: Sequence[float | None], correct: Sequence[bool], bins: int = 5
) -> tuple[list[dict[str, float]], float | None]:
    """Reliability table and expected calibration error of stated confidences.

    Answers are grouped by confidence into ``bins`` equal-width bins; each row gives the
    bin's mean confidence, its share of right answers and its size. The ECE is the
    size-weighted mean gap between the two (0 = perfectly calibrated). Answers without a
    confidence are left out.
    """
    pairs = rated(confidences, correct)
    if not pairs:
        return [], None
    rows, gap = [], 0.0
    for b in range(bins):
        low, high = b / bins, (b + 1) / bins
        inside = [(c, ok) for c, ok in pairs if low <= c < high or (b == bins - 1 and c == 1.0)]
        if not inside:
            continue
        confidence = sum(c for c, _ in inside) / len(inside)
        accuracy = sum(ok for _, ok in inside) / len(inside)
        rows.append(
            {
                "low": low,
                "high": high,
                "n": len(inside),
                "confidence": confidence,
                "accuracy": accuracy,
            }
        )
        gap += len(inside) * abs(confidence - accuracy)
    return rows, gap / len(pairs)


def reliability_table(rows: Sequence[dict[str, float]], ece: float | None) -> str:
    """Markdown for :func:`reliability`."""
    lines = ["| confidence | n | mean confidence | share right |", "|---|---|---|---|"]
    lines += [
        f"| {r['low']:.1f}–{r['high']:.1f} | {r['n']} | {r['confidence']:.2f} "
        f"| {r['accuracy']:.2f} |"
        for r in rows
    ]
    lines.append(f"\nExpected calibration error: {'–' if ece is None else f'{ece:.3f}'}")
    return "\n".join(lines)


def wilson_interval(hits: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95 % Wilson score interval of a share ``hits / n`` ((0, 1) for n = 0)."""
    if n == 0:
        return 0.0, 1.0
    share = hits / n
    centre = (share + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(share * (1 - share) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def right_by_certainty(
    certainties: Sequence[str | None], correct: Sequence[bool]
) -> dict[str, dict[str, float]]:
    """Per certainty band of the answers given: how many, the share right, its interval.

    ``certainties`` are ``Answer.certainty`` values (None: a refusal, left out).
    """
    bands: dict[str, list[bool]] = {}
    for band, ok in zip(certainties, correct, strict=True):
        if band is not None:
            bands.setdefault(band, []).append(ok)
    table = {}
    for band, oks in bands.items():
        low, high = wilson_interval(sum(oks), len(oks))
        table[band] = {"n": len(oks), "right": sum(oks) / len(oks), "low": low, "high": high}
    return table


def certainty_table(by_band: dict[str, dict[str, float]], answers: int) -> str:
    """Markdown for :func:`right_by_certainty` (``answers``: all answers given)."""
    lines = ["| band | answers | share of answers | share right (95 %) |", "|---|---|---|---|"]
    for band in ("sure", "likely", "unsure", "unchecked"):
        if band in by_band:
            row = by_band[band]
            lines.append(
                f"| {band} | {row['n']} | {row['n'] / max(1, answers):.2f} | "
                f"{row['right']:.2f} [{row['low']:.2f}, {row['high']:.2f}] |"
            )
    return "\n".join(lines)


COVERAGES = (100, 80, 60, 50)  # percent of the answers kept, most confident first


def confidence_auroc(confidences: Sequence[float | None], correct: Sequence[bool]) -> float | None:
    """Chance that a right answer states a higher confidence than a wrong one (AUROC).

    Calibration (:func:`reliability`) asks whether the numbers mean what they say; this
    asks only whether they rank answers, which is what a confidence threshold relies on.
    A tie counts half (the Mann-Whitney convention). Answers without a confidence are left
    out; None when no answer, or no right or no wrong one, remains.
    """
    from sklearn.metrics import roc_auc_score

    pairs = rated(confidences, correct)
    if len({ok for _, ok in pairs}) < 2:
        return None
    return float(roc_auc_score([ok for _, ok in pairs], [c for c, _ in pairs]))


def top_share_right(
    confidences: Sequence[float | None], correct: Sequence[bool], percent: int
) -> tuple[int, float | None]:
    """How many answers the most confident ``percent`` % are (rounded up), and the share right.

    What a confidence threshold keeping that many answers would deliver. Answers tied at
    the cut count in proportion (the mean over every order of the tie), so the result
    does not depend on the input order. Answers without a confidence are left out.
    """
    pairs = rated(confidences, correct)
    keep = -(-percent * len(pairs) // 100)
    if not keep:
        return 0, None
    cut = sorted((c for c, _ in pairs), reverse=True)[keep - 1]
    above = [ok for c, ok in pairs if c > cut]
    tied = [ok for c, ok in pairs if c == cut]
    right = sum(above) + (keep - len(above)) * sum(tied) / len(tied)
    return keep, right / keep


def risk_coverage(
    confidences: Sequence[float | None],
    correct: Sequence[bool],
    coverages: Sequence[int] = COVERAGES,
) -> list[dict[str, float | None]]:
    """Risk-coverage rows: keep the most confident ``coverage`` % of answers; n, share right."""
    rows = []
    for coverage in coverages:
        n, accuracy = top_share_right(confidences, correct, coverage)
        rows.append({"coverage": coverage, "n": n, "accuracy": accuracy})
    return rows


def risk_coverage_table(confidences: Sequence[float | None], correct: Sequence[bool]) -> str:
    """Markdown for :func:`risk_coverage` and :func:`confidence_auroc` over the same answers."""
    counted = len(rated(confidences, correct))
    lines = ["| most confident | answers | share right |", "|---|---|---|"]
    lines += [
        f"| {r['coverage']} % | {r['n']} | {_or_dash(r['accuracy'], 2)} |"
        for r in risk_coverage(confidences, correct)
    ]
    lines.append(
        f"\nConfidence AUROC (right vs wrong answers): "
        f"{_or_dash(confidence_auroc(confidences, correct), 3)}, over {counted} answers "
        f"with a confidence ({len(confidences) - counted} without, left out)"
    )
    return "\n".join(lines)


def _or_dash(value: float | None, digits: int) -> str:
    return "–" if value is None else f"{value:.{digits}f}"

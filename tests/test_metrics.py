"""The evaluation metrics and the evaluation set itself (no models)."""

from pathlib import Path

from eval.dataset import TYPES, EvidenceSpan, load_items, locate_evidence, read_documents
from eval.metrics import (
    citation_precision,
    citation_recall,
    contains,
    exact_match,
    normalize_answer,
    percentile,
    retrieval_rank,
    token_f1,
)
from eval.run import check_thresholds

ROOT = Path(__file__).parents[1]


def test_squad_normalisation_and_scores():
    assert normalize_answer("The  Sunan area [2].") == "sunan area"
    assert exact_match("the Sunan area", "Sunan area") == 1.0
    assert token_f1("Pyongyang's Sunan area", "Sunan area") > 0.5
    assert token_f1("Seoul", "Sunan area") == 0.0
    assert contains("They flew more than 400 miles [1].", "more than 400 miles") == 1.0
    assert contains("They flew 1400 miles.", "400 miles") == 0.0
    assert contains("about 1 ½ hours", "1 1/2 hours") == 1.0
    assert contains("Vladivostok, 425 miles away, on April 25, 2019", "Vladivostok, April 25, 2019")
    assert contains("Vladivostok", "Vladivostok, April 25, 2019") == 0.0  # half an answer


def test_citation_metrics():
    evidence = [EvidenceSpan("d", 10, 20), EvidenceSpan("d", 50, 60)]
    assert citation_recall([("d", 0, 30)], evidence) == 0.5
    assert citation_recall([("d", 0, 30), ("d", 25, 70)], evidence) == 1.0
    assert citation_recall([("d", 15, 30)], evidence) == 0.0  # partial overlap does not count
    assert citation_precision([("d", 0, 12), ("d", 30, 40)], evidence) == 0.5
    assert citation_recall([], []) is None
    assert retrieval_rank([("d", 30, 40), ("d", 55, 58)], evidence) == 2
    assert retrieval_rank([("x", 10, 20)], evidence) is None


def test_percentile_nearest_rank():
    assert percentile([1, 2, 3, 4], 50) == 2
    assert percentile(list(range(1, 21)), 95) == 19
    assert percentile([], 50) == 0.0


def test_the_evaluation_set_is_valid_and_covers_every_type():
    items = load_items()
    evalset = locate_evidence(items, read_documents(ROOT / "seeds"))
    assert len(items) >= 60
    counts = {t: sum(i.type == t for i in items) for t in TYPES}
    assert all(n >= 6 for n in counts.values()), counts
    assert all(evalset.spans[i.id] for i in items if i.answerable)
    assert all(not i.evidence for i in items if not i.answerable)


def test_thresholds_flag_metrics_out_of_bounds(tmp_path):
    limits = tmp_path / "t.toml"
    limits.write_text("[min]\nrecall = 0.9\n[max]\nspan = 400\n")
    assert check_thresholds({"recall": 0.95, "span": 100}, limits) == []
    assert len(check_thresholds({"recall": 0.5, "span": 500}, limits)) == 2
    assert check_thresholds({"span": 1}, limits) == ["recall = None < 0.9"]

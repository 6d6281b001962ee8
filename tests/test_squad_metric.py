"""The official SQuAD 2.0 metric on hand-computed cases (no models)."""

import pytest

from eval.squad_metric import compute_exact, compute_f1, gold_answers, normalize_answer, score


def test_normalisation_deletes_punctuation_and_articles():
    assert normalize_answer("The  Normans!") == "normans"
    assert normalize_answer("U.S. troops") == "us troops"  # deleted, not spaced
    assert normalize_answer("400-mile range") == "400mile range"
    assert normalize_answer("An apple, a pear") == "apple pear"
    assert normalize_answer("Theatre") == "theatre"  # whole words only
    assert normalize_answer("“quoted”") == "“quoted”"  # only ASCII punctuation is removed


def test_exact_match_is_after_normalisation():
    assert compute_exact("the 10th century", "10th Century.") == 1
    assert compute_exact("10th century", "in the 10th century") == 0


def test_f1_by_hand():
    # gold: 10th and 11th centuries (4 tokens); prediction: in 10th and 11th centuries (5)
    # overlap 4: precision 4/5, recall 1, F1 = 2*0.8*1/1.8
    assert compute_f1("10th and 11th centuries", "in the 10th and 11th centuries") == (
        pytest.approx(2 * 0.8 / 1.8)
    )
    assert compute_f1("France", "Paris") == 0.0
    # repeated tokens count once per occurrence on both sides
    assert compute_f1("x b b", "b b b") == pytest.approx(2 / 3)
    assert compute_f1("a b b", "b b b") == pytest.approx(0.8)  # "a" is an article: gold is "b b"


def test_no_answer_scores_one_only_for_an_empty_prediction():
    assert gold_answers([]) == [""]
    assert gold_answers(["the", "a"]) == [""]  # empty after normalisation
    assert score([], "") == (1, 1.0)
    assert score([], "Rollo") == (0, 0.0)
    assert score(["Rollo"], "") == (0, 0.0)


def test_best_over_gold_answers():
    exact, f1 = score(["Denmark, Iceland and Norway", "Norway"], "Norway")
    assert exact == 1 and f1 == 1.0
    exact, f1 = score(["in the 10th and 11th centuries", "10th and 11th centuries"], "11th")
    assert exact == 0 and f1 == pytest.approx(2 * 1 * 0.25 / 1.25)

"""The evaluation metrics and the evaluation set itself (no models)."""

from pathlib import Path

import pytest

from eval.dataset import (
    TYPES,
    EvalItem,
    EvidenceSpan,
    load_items,
    locate_evidence,
    read_documents,
)
from eval.gate import check_thresholds
from eval.metrics import (
    alternatives,
    answer_units,
    citation_precision,
    citation_recall,
    contains,
    every_unit_cited,
    exact_match,
    facts_contained,
    has_repetition,
    normalize_answer,
    percentile,
    polarity,
    retrieval_rank,
    right_by_certainty,
    token_f1,
    wilson_interval,
    yes_no_contains,
)
from eval.scoring import score_item, summarize_by_type
from eval.systems import Prediction

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


def test_the_baseline_subset_takes_a_few_of_every_type_the_same_each_run():
    from eval.run import per_type_subset

    items = load_items()
    evalset = locate_evidence(items, read_documents(ROOT / "seeds"))
    subset = per_type_subset(evalset, 3, seed=2026)
    counts = {t: sum(i.type == t for i in subset.items) for t in TYPES}
    assert set(counts.values()) == {3}, counts  # every type has at least 6
    assert [i.id for i in subset.items] == [i.id for i in per_type_subset(evalset, 3, 2026).items]
    assert set(subset.spans) == {i.id for i in subset.items}
    order = [i.id for i in evalset.items]
    assert [i.id for i in subset.items] == sorted((i.id for i in subset.items), key=order.index)


def test_thresholds_flag_metrics_out_of_bounds(tmp_path):
    limits = tmp_path / "t.toml"
    limits.write_text("[min]\nrecall = 0.9\n[max]\nspan = 400\n")
    assert check_thresholds({"recall": 0.95, "span": 100}, limits) == []
    assert len(check_thresholds({"recall": 0.5, "span": 500}, limits)) == 2
    assert check_thresholds({"span": 1}, limits) == ["recall = None < 0.9"]


def _item(type_: str, answers: list[str], id_: str = "x") -> EvalItem:
    return EvalItem(id_, type_, "q", tuple(answers), ("quote",) if answers else ())


def _correct(item: EvalItem, text: str, abstained: bool = False) -> bool:
    return score_item(item, [], Prediction(text=text, abstained=abstained)).correct


SUMMARY = _item("summary", ["missiles", "Kim", "Vladimir Putin | Putin"])
PEOPLE = _item("list", ["Vladimir Putin | Putin", "Alexander Kozlov | Kozlov"])
SPACEPORT = _item("yes_no", ["Yes, the Vostochny Cosmodrome", "Yes, Vostochny"])
TUESDAY = _item("yes_no", ["No, Tuesday"])


def test_multi_fact_helpers():
    assert alternatives("Vladimir Putin | Putin") == ["Vladimir Putin", "Putin"]
    assert facts_contained("Putin met Kim [1].", ["Vladimir Putin | Putin", "Kozlov"]) == 0.5
    assert facts_contained("anything", []) == 0.0
    # A marker after the full stop belongs to the sentence before it; abbreviations and
    # bullets do not split or start units.
    assert answer_units("He served in the U.S. Army. [1] Kim met Putin on Sept. 13. [2]") == [
        "He served in the U.S. Army [1].",
        "Kim met Putin on Sept. 13 [2].",
    ]
    assert answer_units("People named:\n- Putin [1]\n2. Kozlov [2]") == [
        "People named:",
        "Putin [1]",
        "Kozlov [2]",
    ]
    assert every_unit_cited("People named:\n- Putin [1]\n- Kozlov [1, 2]")
    assert not every_unit_cited("Putin [1]. Kozlov.")
    assert not every_unit_cited("")
    assert has_repetition("Kim met Putin [1]. Kim met Putin [2].")
    assert has_repetition("Japan [1], Russia [1] and Japan [2].")
    assert not has_repetition("It was Aug. 30, 2023 [1]. It was Sept. 7, 2023 [2].")
    assert not has_repetition("Kim left, said Tass [1]. Putin came, said Tass [2].")


def test_an_all_facts_cited_summary_is_correct():
    text = "North Korea fired two missiles [1]. Kim then met Vladimir Putin [2]."
    assert _correct(SUMMARY, text)
    assert _correct(SUMMARY, "North Korea fired two missiles. [1] Kim then met Putin. [2]")
    result = score_item(SUMMARY, [], Prediction(text=text, abstained=False))
    assert result.contained == 1.0 and result.f1 > 0


def test_a_summary_missing_a_fact_is_wrong():
    text = "North Korea fired two missiles [1]. Kim then travelled on [2]."
    assert not _correct(SUMMARY, text)
    assert score_item(SUMMARY, [], Prediction(text=text, abstained=False)).contained == 2 / 3


def test_a_summary_with_an_uncited_sentence_is_wrong():
    assert not _correct(SUMMARY, "North Korea fired two missiles [1]. Kim then met Putin.")


def test_a_summary_repeating_a_sentence_is_wrong():
    text = "Kim met Putin [1]. North Korea fired missiles [2]. Kim met Putin [1]."
    assert not _correct(SUMMARY, text)


def test_a_list_needs_every_entry_once_and_cited():
    assert _correct(PEOPLE, "- Vladimir Putin [1]\n- Alexander Kozlov [2]")
    assert _correct(PEOPLE, "The article names Putin [1] and Kozlov [2].")
    assert not _correct(PEOPLE, "- Putin [1]\n- Kozlov [2]\n- Putin [3]")  # repeated entry
    assert not _correct(PEOPLE, "Putin [1], Kozlov [2] and Putin [3].")  # repeated inline
    assert not _correct(PEOPLE, "- Putin [1]\n- Kozlov")  # uncited entry
    assert not _correct(PEOPLE, "- Putin [1]")  # missing entry
    assert not _correct(PEOPLE, "The documents do not say.", abstained=True)


def test_yes_no_needs_the_right_first_word_and_the_fact():
    assert polarity("Yes. He did [1].") == "yes" and polarity("Yesterday he did") is None
    assert yes_no_contains("no, on Tuesday", "No, Tuesday") == 1.0
    assert _correct(SPACEPORT, "Yes, he met Putin at the Vostochny Cosmodrome [1].")
    assert not _correct(SPACEPORT, "No, he met Putin at the Vostochny Cosmodrome [1].")
    assert not _correct(SPACEPORT, "Yes [1].")  # the fact is missing
    assert not _correct(SPACEPORT, "He met Putin at the Vostochny Cosmodrome [1].")  # no yes
    assert _correct(TUESDAY, "No, he arrived by armored train on Tuesday [1].")
    assert not _correct(TUESDAY, "Yes, he arrived on Tuesday [1].")


def test_other_types_keep_their_rules():
    assert _correct(_item("why_how", ["continue provoking"]), "It will continue provoking [1].")
    assert _correct(_item("authorship", ["David Choi"]), "It was written by David Choi [1].")
    unanswerable = _item("plausible_unanswerable", [])
    assert _correct(unanswerable, "The documents do not say.", abstained=True)
    assert not _correct(unanswerable, "They met in Vladivostok [1].")


def test_per_type_tables_cover_the_new_types():
    items = [SUMMARY, PEOPLE, SPACEPORT, _item("plausible_unanswerable", [], "u")]
    results = [score_item(i, [], Prediction(text="Yes [1].", abstained=False)) for i in items]
    table = summarize_by_type(results)
    assert set(table) == {"summary", "list", "yes_no", "plausible_unanswerable", "all"}
    assert table["all"]["n"] == 4 and table["all"]["correct"] == 0.0


@pytest.mark.parametrize(
    "item",
    [
        _item("yes_no", ["Tuesday"]),
        _item("list", ["Putin"]),
        _item("plausible_unanswerable", ["Vladivostok"]),
    ],
)
def test_the_evaluation_set_checks_answer_shapes(item):
    with pytest.raises(ValueError, match="x: "):
        locate_evidence([item], {"d": "quote"})


def test_reliability_table_and_expected_calibration_error_by_hand():
    from eval.metrics import reliability

    rows, ece = reliability([0.9, 0.7, 0.1, None], [True, False, False, True], bins=2)
    # bins [0, 0.5): 0.1 -> wrong (gap 0.1); [0.5, 1]: 0.9 right, 0.7 wrong (conf 0.8, acc 0.5)
    assert [(r["n"], round(r["confidence"], 2), r["accuracy"]) for r in rows] == [
        (1, 0.1, 0.0),
        (2, 0.8, 0.5),
    ]
    assert round(ece, 3) == round((1 * 0.1 + 2 * 0.3) / 3, 3)
    assert reliability([None], [True]) == ([], None)


def test_confidence_auroc_by_hand():
    from eval.metrics import confidence_auroc

    # right 0.9, 0.7 against wrong 0.8, 0.6: 0.9 beats both, 0.7 beats 0.6 only -> 3/4
    assert confidence_auroc([0.9, 0.8, 0.7, 0.6, None], [True, False, True, False, False]) == 0.75
    # a tie counts half: right 0.9, 0.6 against wrong 0.6, 0.2 -> (2 + 0.5 + 1) / 4
    assert confidence_auroc([0.9, 0.6, 0.6, 0.2], [True, False, True, False]) == 0.875
    assert confidence_auroc([0.5, 0.5], [True, False]) == 0.5
    assert confidence_auroc([0.1, 0.9], [True, False]) == 0.0
    # undefined without both a right and a wrong answer that state a confidence
    assert confidence_auroc([], []) is None
    assert confidence_auroc([0.9, 0.1], [True, True]) is None
    assert confidence_auroc([0.9, 0.1], [False, False]) is None
    assert confidence_auroc([0.9, None], [True, False]) is None


def test_risk_coverage_by_hand():
    from eval.metrics import risk_coverage, top_share_right

    confidences = [
        0.6,
        0.9,
        None,
        0.5,
        0.8,
        0.7,
    ]  # by confidence: right, right, wrong, right, wrong
    correct = [True, True, True, False, True, False]
    assert [
        (r["coverage"], r["n"], r["accuracy"]) for r in risk_coverage(confidences, correct)
    ] == [
        (100, 5, 3 / 5),
        (80, 4, 3 / 4),
        (60, 3, 2 / 3),
        (50, 3, 2 / 3),  # half of 5, rounded up
    ]
    # the top half of four is 0.9 (right) and one of three tied at 0.5 (one right): 1 + 1/3
    assert top_share_right([0.5, 0.9, 0.5, 0.5], [False, True, True, False], 50) == (2, 2 / 3)
    assert top_share_right([0.5, 0.5, 0.9, 0.5], [True, False, True, False], 50) == (2, 2 / 3)
    assert top_share_right([], [], 50) == (0, None)
    assert top_share_right([None], [True], 100) == (0, None)


def test_risk_coverage_table_counts_the_answers_and_dashes_an_undefined_auroc():
    from eval.metrics import risk_coverage_table

    table = risk_coverage_table([0.9, 0.4, None], [True, True, False])
    assert "| 100 % | 2 | 1.00 |" in table and "| 50 % | 1 | 1.00 |" in table
    assert "AUROC (right vs wrong answers): –, over 2 answers" in table
    assert "(1 without, left out)" in table
    assert "| 80 % | 0 | – |" in risk_coverage_table([], [])


def test_summaries_rank_the_confidence_of_answers_only():
    answerable, unanswerable = _item("fact", ["Kim"], "a"), _item("plausible_unanswerable", [], "u")
    outcomes = [
        (answerable, "Kim did [1].", False, 0.9),  # right
        (answerable, "Putin did [1].", False, 0.8),  # wrong
        (unanswerable, "Kim did [1].", False, 0.95),  # an answer to the unanswerable: wrong
        (unanswerable, "The documents do not say.", True, 0.99),  # a refusal: left out
        (answerable, "Kim did [1].", False, None),  # no confidence: left out
    ]
    results = [
        score_item(item, [], Prediction(text=text, abstained=refused, confidence=confidence))
        for item, text, refused, confidence in outcomes
    ]
    row = summarize_by_type(results)["all"]
    # right 0.9 against wrong 0.8 and 0.95 -> 1/2; the top half of three (two) is 0.95, 0.9
    assert (row["confidence_auroc"], row["top_half_right"], row["confidence_n"]) == (0.5, 0.5, 3)


def test_the_report_shows_the_confidence_ranking(tmp_path):
    import json

    from eval.report import write_report

    item = _item("fact", ["Kim"], "a")
    results = [
        score_item(item, [], Prediction(text=text, abstained=False, confidence=confidence))
        for text, confidence in [("Kim [1].", 0.9), ("Putin [1].", 0.4)]
    ]
    path = write_report(tmp_path, {"ours": summarize_by_type(results)}, {"ours": results}, [])
    text = path.read_text()
    assert "## Confidence (ours): ranking" in text and "| 50 % | 1 | 1.00 |" in text
    assert "| confidence AUROC | 1.00 |" in text
    assert (
        json.loads((tmp_path / "results.json").read_text())["summary"]["ours"]["all"][
            "confidence_auroc"
        ]
        == 1.0
    )


def test_shares_right_per_certainty_band_leave_refusals_out_and_carry_an_interval():
    bands = ["likely", "likely", "unsure", None, "likely", "unsure"]
    right = [True, True, False, False, False, True]
    table = right_by_certainty(bands, right)
    assert set(table) == {"likely", "unsure"}
    assert table["likely"]["n"] == 3 and table["likely"]["right"] == pytest.approx(2 / 3)
    assert table["likely"]["low"] < 2 / 3 < table["likely"]["high"]
    low, high = wilson_interval(85, 100)
    assert 0.76 < low < 0.78 and 0.90 < high < 0.92  # the textbook figures
    assert wilson_interval(0, 0) == (0.0, 1.0)

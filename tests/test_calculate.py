"""Computed answers: which questions get a calculation, and how its result is checked."""

from pathlib import Path

import pytest

from index.chunk import chunk_document
from index.clean import split_paragraphs
from qa.calculate import calculated_claim, needs_calculation, shown_calculation
from qa.support import best_support, source_sentences

SEED = Path(__file__).parents[1] / "seeds" / "000_61f43937c72d7f92.txt"


@pytest.fixture(scope="module")
def sentences():
    text = SEED.read_text()
    return source_sentences(chunk_document("seed.txt", text, split_paragraphs(text)))


@pytest.mark.parametrize(
    "question",
    [
        "How many missiles did North Korea launch in total on Aug. 30 and Wednesday?",
        "How much farther did Wednesday's missiles fly than the ones launched on Aug. 30?",
        "How many years passed between the two meetings?",
        "How many ballistic missiles has North Korea fired this year, including Wednesday's?",
    ],
)
def test_totals_and_differences_need_a_calculation(question):
    assert needs_calculation(question)


@pytest.mark.parametrize(
    "question",
    ["How many missiles did North Korea fire on Wednesday?", "How far did the missiles fly?"],
)
def test_stated_figures_do_not(question):
    assert not needs_calculation(question)


def test_the_result_is_recomputed_from_the_working():
    working = (
        "- Wednesday: more than 400 miles\n- Aug. 30: 220 miles\n"
        "So, 400 miles - 220 miles = 190 miles.\nThe documents do not say."
    )
    assert calculated_claim(working) == "400 miles - 220 miles = 180 miles."
    assert calculated_claim("Total: 2 + 2 = 4 missiles") == "2 + 2 = 4 missiles."
    assert calculated_claim("So 4 years - 4 years = 0 years.") is None  # computes nothing
    assert calculated_claim("They flew 400 miles.") is None


def test_a_shown_calculation_needs_stated_operands_counting_the_right_thing(sentences):
    question = "How many ballistic missiles has North Korea fired this year, including Wednesday's?"
    assert shown_calculation("19 + 2 = 21 ballistic missiles.") == 21
    assert shown_calculation("19 + 2 = 22 ballistic missiles.") is None  # wrong result
    right = best_support("19 + 2 = 21 ballistic missiles.", question, sentences)
    assert right.numbers_ok and len(right.sentences) == 2
    # "three" is stated, but it counts defense chiefs, not missiles.
    assert not best_support("19 + 3 = 22.", question, sentences).numbers_ok
    years = "How many years passed between the leaders' two meetings?"
    assert best_support("2023 - 2019 = 4 years.", years, sentences).numbers_ok


@pytest.mark.parametrize(
    "question",
    [
        "How many people have lived in the valley since 1990?",  # a stated count
        "How far is it between the two towns?",  # a stated distance
        "How long has the museum been open, and is it free?",
    ],
)
def test_since_between_and_more_alone_ask_for_no_arithmetic(question):
    assert not needs_calculation(question)


@pytest.mark.parametrize(
    "question",
    [
        "How many more visitors came in 2022 than in 2021?",
        "How many kilometres farther is the north pier than the south one?",
        "What is the difference in height between the towers, and how much is it in feet?",
    ],
)
def test_comparisons_of_two_figures_do(question):
    assert needs_calculation(question)

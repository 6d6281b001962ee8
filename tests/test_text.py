"""The shared text utilities: citation markers, figures, word lists (no models)."""

import pytest

from qa.text import (
    MARKER,
    NEGATION,
    OPENS_POINTING_BACK,
    marker_numbers,
    markers_before_stop,
    number_value,
    strip_markers,
)


def test_one_marker_pattern_reads_every_spelling():
    text = "Paris [1]. Lyon [2, 3] and Nice [ 4 ; 5 ]."
    assert marker_numbers(text) == [1, 2, 3, 4, 5]
    assert strip_markers(text) == "Paris. Lyon and Nice."
    assert len(MARKER.findall(text)) == 3
    assert (
        markers_before_stop("It rained. [1] It froze. [2][3]") == "It rained [1]. It froze [2][3]."
    )
    assert strip_markers("A list [1] or [x] stays") == "A list or [x] stays"


@pytest.mark.parametrize(
    ("token", "value"),
    [
        ("1,000", 1000),
        ("2.5", 2.5),
        ("2½", 2.5),
        ("¾", 0.75),
        ("⅓", 1 / 3),
        ("seventeen", 17),
        ("ninety", 90),
        ("twenty-one", 21),
        ("Million", 1e6),
        ("dozen", 12),
        ("half", 0.5),
        ("bridge", None),
        ("twenty-bridge", None),
    ],
)
def test_figures_in_digits_words_and_unicode_fractions(token, value):
    assert number_value(token) == (pytest.approx(value) if value is not None else None)


def test_negations_and_words_that_point_back():
    assert NEGATION.search("The bridge did not reopen")
    assert NEGATION.search("It wasn't open") and NEGATION.search("rather than by road")
    assert not NEGATION.search("Nothing here denies anything: notably open")
    assert OPENS_POINTING_BACK.match("“They said so,” she added.")
    assert OPENS_POINTING_BACK.match("The two leaders met.")
    assert not OPENS_POINTING_BACK.match("Theatre tickets sold out.")


def test_a_figure_with_a_scale_word_is_one_figure_counting_what_follows():
    from index.chunk import chunk_document
    from index.clean import split_paragraphs
    from qa.support import analyse, best_support, source_sentences

    text = "The repairs will cost 12 million dollars, the council said. About two dozen boats wait."
    info = analyse(text)
    assert {12e6, 24.0} <= info.numbers and 12.0 not in info.numbers
    assert (12e6, "dollar") in info.units
    sentences = source_sentences(chunk_document("t.txt", text, split_paragraphs(text)))
    question = "How much will the repairs cost?"
    assert best_support("12 million dollars.", question, sentences).numbers_ok
    assert not best_support("13 million dollars.", question, sentences).numbers_ok


def test_how_much_followed_by_a_verb_counts_nothing():
    from qa.support import counted_noun

    assert counted_noun("How much will the repairs cost?") is None
    assert counted_noun("How many did they build?") is None
    assert counted_noun("How many ballistic missiles flew?") == "ballist"

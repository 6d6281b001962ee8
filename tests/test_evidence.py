"""Sentence-level evidence selection (fast: a word-overlap stand-in for the embedder)."""

from __future__ import annotations

from index.chunk import chunk_document
from index.clean import split_paragraphs
from qa.evidence import select_evidence

TEXT = (
    "The bridge opened in 1932. It cost 12 million dollars to build. Engineers praised it.\n"
    "The mayor spoke at the ceremony. Crowds lined the river. Bands played all afternoon.\n"
    "A storm closed the bridge in 1955. Repairs took a year. It reopened in 1956.\n"
)


def passages():
    return chunk_document("bridge.txt", TEXT, split_paragraphs(TEXT), max_chars=420)


def overlap(a: str, b: str) -> float:
    x, y = set(a.lower().strip("?.").split()), set(b.lower().strip(".").split())
    return len(x & y) / len(x | y)


def test_the_answer_sentence_and_its_antecedent_are_kept_as_an_exact_span():
    chosen = select_evidence("How much did it cost to build?", passages(), overlap, 80)
    assert len(chosen) == 1
    (passage,) = chosen
    # "It cost ..." opens with a pronoun: the sentence naming the bridge comes with it.
    assert passage.text == "The bridge opened in 1932. It cost 12 million dollars to build."
    assert TEXT[passage.start : passage.end] == passage.text
    assert passage.id == passages()[0].id


def test_a_budget_larger_than_the_passages_keeps_them_whole():
    whole = passages()
    assert select_evidence("When did the storm close the bridge?", whole, overlap, 10_000) == whole


def test_the_best_sentence_is_kept_even_past_the_budget():
    chosen = select_evidence("When did a storm close the bridge?", passages(), overlap, 5)
    assert [p.text for p in chosen] == ["A storm closed the bridge in 1955."]

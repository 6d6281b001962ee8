"""Question kinds, answer sanity and the answerability features on fixed text (no models)."""

import math
from pathlib import Path

import pytest

from index.chunk import chunk_document
from index.clean import split_paragraphs
from qa.answerability import (
    AnswerabilityChecker,
    AnswerabilityModel,
    Evidence,
    JudgeModels,
    assess,
)
from qa.citations import Role, Verifier, dedupe_items
from qa.judge import shown_of
from qa.language import Kind, classify
from qa.prompts import document_title, system_message
from qa.support import source_sentences

SEED = Path(__file__).parents[1] / "seeds" / "000_61f43937c72d7f92.txt"


@pytest.mark.parametrize(
    ("question", "kind"),
    [
        ("Summarize the article in two sentences.", Kind.SUMMARY),
        ("What is this article about?", Kind.SUMMARY),
        ("List the people named in the article.", Kind.LIST),
        ("Which countries are mentioned?", Kind.LIST),
        ("Did Kim visit a spaceport?", Kind.YES_NO),
        ("Who wrote this?", Kind.AUTHORSHIP),
        ("Why did the three defense chiefs call for more cooperation?", Kind.EXPLANATION),
        ("How did Kim travel to Russia?", Kind.EXPLANATION),
        ("How many missiles did North Korea fire?", Kind.FACT),
        ("Where were the missiles fired from?", Kind.FACT),
    ],
)
def test_kinds_from_wording(question, kind):
    assert classify(question) is kind


def test_repeated_list_items_and_labels_are_not_answers():
    assert dedupe_items("Kim Jong Un, Kim Jong Un, Kim Jong Un, Putin") == "Kim Jong Un and Putin"
    assert dedupe_items("Denmark, Iceland and Norway") == "Denmark, Iceland and Norway"
    text = SEED.read_text()
    passages = chunk_document("Steam_engine.txt", text, split_paragraphs(text))
    verifier = Verifier(
        sentences=source_sentences(passages),
        threshold=0.5,
        document_titles=frozenset({document_title("Steam_engine.txt")}),
    )
    label = verifier.verify("What is the document?", passages, "Steam_engine.txt [1].")
    assert label.sentences[0].role is Role.LABEL and not label.answered
    assert shown_of(label).text == "The documents do not say."
    assert not verifier.verify("What is the document?", passages, "Steam engine [1].").answered
    twice = verifier.verify(
        "What is the document?",
        passages,
        "Kim arrived by armored train [9]. Kim arrived by armored train [9].",
    )
    assert [s.role for s in twice.sentences] == [Role.ANSWER, Role.REPEAT]
    assert shown_of(twice).text.count("armored train") == 1


def test_a_grown_corpus_prompt_starts_with_the_one_it_had():
    """Rules, wording and numbering do not depend on how many documents there are."""
    text = SEED.read_text()
    article = chunk_document("Steam_engine.txt", text, split_paragraphs(text))
    note = chunk_document("a_note.txt", "A short note.", split_paragraphs("A short note."))
    before = system_message(article).content
    after = system_message([*article, *note]).content
    assert after.startswith(before) and "Document: a note" in after[len(before) :]
    assert document_title("sub/Steam_engine.txt") == "Steam engine"


@pytest.fixture(scope="module")
def checker():
    text = SEED.read_text()
    passages = chunk_document("seed.txt", text, split_paragraphs(text))
    sentences = source_sentences(passages)
    return AnswerabilityChecker(sentences, lambda a, b: 0.5), sentences


def _holding(sentences, needle):
    return [next(s for s in sentences if needle in s.text)]


def test_a_swapped_detail_is_missing_from_the_evidence(checker):
    check, sentences = checker
    met = _holding(sentences, "Vladivostok")
    real, window = check.features(Evidence("Where did Kim and Putin last meet in 2019?", met))
    swapped, _ = check.features(Evidence("Where did Kim and Putin last meet in 2021?", met))
    assert real["missing_numbers"] == 0 and swapped["missing_numbers"] == 1
    assert len(window) == 3 and met[0] in window  # with its neighbours
    flew = _holding(sentences, "400 miles")
    two, _ = check.features(Evidence("How far did the two missiles fly?", flew))
    assert two["missing_numbers"] == 0  # "both missiles" states the two
    three, _ = check.features(Evidence("How far did the three missiles fly?", flew))
    assert three["missing_numbers"] == 1
    negated, _ = check.features(Evidence("Which missiles did not fly 400 miles?", flew))
    assert negated["negation_gap"] == 1.0
    name, _ = check.features(Evidence("Where did Kim meet Macron?", met))
    assert name["missing_names"] == 1.0
    assert "self_check" not in real  # the model's own signals are the judge's to add


def test_the_model_turns_features_into_a_probability_that_separates_a_swap(checker, tmp_path):
    check, sentences = checker
    # Signs as `qa calibrate` fits them: the model's Yes helps, a missing figure hurts.
    features = ("self_check", "missing_numbers", "negation_gap")
    cuts = {"low": 0.3, "balanced": 0.4, "high": 0.6}
    model = AnswerabilityModel(features, (1.0, -4.0, -1.0), 0.5, cuts, "test", 0.9)
    path = tmp_path / "model.json"
    text_only = AnswerabilityModel(features[1:], (-4.0, -1.0), 0.5, cuts, "test", 0.9)
    JudgeModels(model, text_only).save(path)
    loaded = JudgeModels.load(path)
    assert loaded.for_server(has_logprobs=True).model == model
    assert loaded.for_server(has_logprobs=False).model == text_only
    z = 0.5 + 1.0 * 2.0 - 4.0 * 1.0 - 1.0 * 0.0
    features = {"self_check": 2.0, "missing_numbers": 1.0, "negation_gap": 0.0}
    assert model.probability(features) == pytest.approx(1 / (1 + math.exp(-z)))
    met = _holding(sentences, "Vladivostok")
    verdicts = []
    for year in (2019, 2021):
        asked = Evidence(f"Where did Kim and Putin last meet in {year}?", met, "Vladivostok")
        signals, window = check.features(asked)
        verdicts.append(assess(model, {**signals, "self_check": 0.0}, cuts["balanced"]))
    real, swap = verdicts
    # The model's Yes at even odds: the figure the evidence lacks alone moves it across.
    assert real.score > cuts["balanced"] > swap.score
    assert not real.reasons and any("figure" in reason for reason in swap.reasons)
    assert window and met[0] in window  # the closest evidence, for the refusal

"""The SQuAD 2.0 suite's data handling: documents, gold offsets, split and sampling (no models)."""

from eval.squad2 import SPLITS, answer_span_text, load_corpus, sample, score_question, summarize
from eval.systems import Prediction


def test_every_gold_answer_is_located_in_its_document():
    corpus = load_corpus()
    assert len(corpus.documents) == 6 and len(corpus.questions) == 1988
    assert sum(not q.answerable for q in corpus.questions) == 1094
    for question in corpus.questions:
        text = corpus.documents[question.doc]
        paragraph = text[question.paragraph.start : question.paragraph.end]
        assert "\n\n" not in paragraph
        for gold, span in zip(question.answers, question.answer_spans, strict=True):
            assert text[span.start : span.end] == gold
            assert question.paragraph.start <= span.start and span.end <= question.paragraph.end


def test_the_split_is_fixed_and_covers_every_article():
    corpus = load_corpus()
    titles = {q.doc.removesuffix(".txt") for q in corpus.questions}
    assert titles == set(SPLITS["calibration"]) | set(SPLITS["test"])
    assert not set(SPLITS["calibration"]) & set(SPLITS["test"])
    assert len(load_corpus(distractors=True).documents) == 26


def test_sample_is_seeded_stratified_and_within_its_split():
    questions = load_corpus().questions
    first = sample(questions, "test", 30, seed=7)
    assert first == sample(questions, "test", 30, seed=7)
    assert first != sample(questions, "test", 30, seed=8)
    assert len(first) == 30 and sum(q.answerable for q in first) == 15
    assert {q.split for q in first} == {"test"}
    assert len(sample(questions, "calibration", None, seed=7)) == 958


def test_scoring_an_answer_a_citation_and_an_abstention():
    corpus = load_corpus()
    has = next(q for q in corpus.questions if q.answerable)
    gold = has.answer_spans[0]
    cited = Prediction(
        text=f"{has.answers[0]} [1].",
        abstained=False,
        citations=[(has.doc, has.paragraph.start, has.paragraph.end)],
        retrieved=[(has.doc, gold.start - 5, gold.end + 5)],
    )
    result = score_question(has, cited)
    assert (result.exact, result.f1, result.contained) == (1, 1.0, 1.0)
    assert result.citation_has_gold and result.retrieval_rank == 1
    none = next(q for q in corpus.questions if not q.answerable)
    refused = score_question(none, Prediction(text="The documents do not say.", abstained=True))
    wrong = score_question(has, Prediction(text="The documents do not say.", abstained=True))
    summary = summarize([result, refused, wrong])
    assert summary["no_ans_accuracy"] == 1.0 and summary["false_abstention_rate"] == 0.5
    assert summary["exact"] == 2 / 3 and summary["has_ans_exact"] == 0.5
    assert answer_span_text("Rollo [1][2].") == "Rollo."

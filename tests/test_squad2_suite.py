"""The SQuAD 2.0 suite's data handling: documents, gold offsets, split and sampling (no models)."""

from eval.squad2 import (
    MORE_TITLES,
    SPLITS,
    answer_span_text,
    load_corpus,
    sample,
    score_question,
    summarize,
)
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
    assert titles == (set(SPLITS["calibration"]) - set(MORE_TITLES)) | set(SPLITS["test"])
    assert not set(SPLITS["calibration"]) & set(SPLITS["test"])
    assert len(load_corpus(distractors=True).documents) == 26
    # The two calibration-only articles join only when asked for (qa calibrate).
    more = load_corpus(more=True)
    extra = {q.doc.removesuffix(".txt") for q in more.questions} - titles
    assert extra == set(MORE_TITLES) and len(more.questions) == len(corpus.questions) + 805
    assert {q.split for q in more.questions if q.doc.removesuffix(".txt") in extra} == {
        "calibration"
    }


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


def test_confidence_ranking_rows_and_report(tmp_path):
    import json

    from eval.squad2_run import split_table, write_squad2_report

    corpus = load_corpus()
    has = next(q for q in corpus.questions if q.answerable and q.split == "test")
    none = next(q for q in corpus.questions if not q.answerable and q.split == "test")
    outcomes = [
        (has, has.answers[0], False, 0.9),  # contains the gold: right
        (has, "Nobody in particular.", False, 0.6),  # wrong
        (none, has.answers[0], False, 0.7),  # an answer to the unanswerable: wrong
        (none, "The documents do not say.", True, 0.99),  # a refusal: left out
    ]
    mine = [
        score_question(q, Prediction(text=text, abstained=refused, confidence=confidence))
        for q, text, refused, confidence in outcomes
    ]
    summary = summarize(mine)
    # right 0.9 beats wrong 0.7 and 0.6 -> 1; the top half of three (two) is 0.9, 0.7 -> 1/2
    assert (summary["confidence_auroc"], summary["top_half_right"]) == (1.0, 0.5)
    assert summary["confidence_n"] == 3
    tables = {"ours": {"test": summary}}
    assert "| confidence AUROC | 1.00 |" in split_table(tables, "test")
    assert "| right among most confident half | 0.50 |" in split_table(tables, "test")
    run = {
        "seed": 1,
        "sample_per_split": 4,
        "distractors": False,
        "documents": 6,
        "tables": tables,
        "results": {"ours": mine},
    }
    text = write_squad2_report(run, tmp_path, []).read_text()
    assert "## Confidence (ours), test: ranking" in text and "| 60 % | 2 | 0.50 |" in text
    assert "over 3 answers with a confidence (0 without, left out)" in text
    saved = json.loads((tmp_path / "squad2.json").read_text())
    assert saved["tables"]["ours"]["test"]["top_half_right"] == 0.5


def test_whole_prompt_pieces_are_short_runs_of_paragraphs_with_their_questions():
    from eval.squad2 import PARAGRAPH_SEPARATOR, SPLITS, load_corpus, whole_prompt_pieces

    corpus = load_corpus(more=True)
    pieces = whole_prompt_pieces(corpus, "calibration", 6300)
    assert {p.article for p in pieces} == set(SPLITS["calibration"])
    assert all(len(p.text) <= 6300 for p in pieces)
    asked = [q for p in pieces for q in p.questions]
    calibration = [q for q in corpus.questions if q.split == "calibration"]
    assert sorted(q.id for q in asked) == sorted(q.id for q in calibration)  # each once
    for piece in pieces:
        whole = corpus.documents[f"{piece.article}.txt"]
        assert piece.text in whole and whole.count(PARAGRAPH_SEPARATOR) > 0
        for q in piece.questions:
            assert q.doc == piece.name
            assert piece.text[q.paragraph.start : q.paragraph.end] in whole
            for span, gold in zip(q.answer_spans, q.answers, strict=True):
                assert piece.text[span.start : span.end] == gold
    tiny = whole_prompt_pieces(corpus, "calibration", 300)  # no paragraph is this short
    assert len(tiny) < len(pieces) and all(len(p.text) <= 300 for p in tiny)

"""Every right answer reaches the user: the real models, a real Chroma store.

What once lost answers the model gets right: a regex that emptied ordinary questions
holding instruction words, clutter rules that dropped real paragraphs of plain text, a
refusal detector that took a factual negative for a refusal, and a figure check that
refused "the two missiles" against "both missiles". Each case is asked here end to end.
"""

from pathlib import Path

import pytest

from qa import ask

ROOT = Path(__file__).parents[1]
SEED = ROOT / "seeds" / "000_61f43937c72d7f92.txt"
NOTE = """Cookie sales rose 40 percent in 2023, the bakery said.

Register of deeds Ann Lee resigned on Monday.

Yes.

The council met yesterday and voted.

Subscribe to our newsletter for daily headlines.
"""
MINISTRY = """The ministry did not reveal the type of the missiles.

Officials said the launches took place on Wednesday morning.
"""

pytestmark = pytest.mark.slow


def _corpus(tmp_path_factory, on_engine, name: str, files: dict[str, str]):
    base = tmp_path_factory.mktemp(name)
    seeds = base / "seeds"
    seeds.mkdir()
    for file, text in files.items():
        (seeds / file).write_text(text, encoding="utf-8")
    return on_engine(seeds_dir=seeds, store_dir=base / "store")


@pytest.fixture(scope="module")
def seed_config(tmp_path_factory, on_engine):
    return _corpus(tmp_path_factory, on_engine, "seed", {SEED.name: SEED.read_text()})


def test_the_first_question_a_newcomer_asks_is_answered_with_its_citation(seed_config):
    answer = ask("How far did the two missiles fly?", config=seed_config)
    assert not answer.abstained and "400" in answer.text, (answer.text, answer.reasons)
    assert any("400 miles" in c.quote for c in answer.citations), answer.citations


@pytest.mark.parametrize(
    "question",
    [
        "Did the reporter write a story about the launch?",
        "Does the ministry act as a mediator?",
        "What new instructions did the ministry give?",
    ],
)
def test_an_ordinary_question_with_instruction_words_reaches_the_model(seed_config, question):
    """Answered or refused on its content: the model read it, whole, and the judge decided."""
    answer = ask(question, config=seed_config)
    assert "first_token" in answer.timings, answer  # the model was asked
    assert not any("instruction" in reason for reason in answer.reasons), answer.reasons
    assert answer.rewritten_question is None  # nothing was cut out of it


def test_every_real_paragraph_of_a_plain_note_is_indexed_and_answers(tmp_path_factory, on_engine):
    from qa.pipeline import get_pipeline

    config = _corpus(tmp_path_factory, on_engine, "note", {"note.txt": NOTE})
    indexed = " ".join(p.text for p in get_pipeline(config).index.passages)
    for paragraph in filter(None, NOTE.splitlines()):
        assert paragraph in indexed, paragraph
    resigned = ask("Who resigned on Monday?", config=config)
    assert "Ann Lee" in resigned.text, (resigned.text, resigned.reasons)
    sales = ask("By how much did cookie sales rise?", config=config)
    assert "40" in sales.text, (sales.text, sales.reasons)


@pytest.fixture(scope="module")
def ministry_answer(tmp_path_factory, on_engine):
    """The yes/no question a negative statement answers, asked once for the two tests."""
    config = _corpus(tmp_path_factory, on_engine, "ministry", {"ministry.txt": MINISTRY})
    answer = ask("Did the ministry reveal the type of the missiles?", config=config)
    print(f"\nministry -> {answer.text!r} ({answer.decision}, {answer.confidence})")
    return answer


def test_a_yes_no_question_a_negative_statement_answers_is_answered_with_it(ministry_answer):
    """The factual negative is not taken for a refusal: it is shown, citing its sentence."""
    answer = ministry_answer
    assert answer.kind == "yes_no" and not answer.abstained, (answer.text, answer.reasons)
    assert "did not reveal" in " ".join(c.quote for c in answer.citations), answer.citations
    source = MINISTRY
    assert all(source[c.start : c.end] == c.quote for c in answer.citations), answer.citations


@pytest.mark.xfail(
    strict=True,
    reason="known miss: the polarity check reads the 'did not reveal' sentence as Yes "
    "(P(yes) above 0.5), so the answer opens 'Yes, the ministry did not reveal ...'",
)
def test_a_yes_no_question_a_negative_statement_answers_is_answered_no(ministry_answer):
    assert ministry_answer.text.startswith("No"), ministry_answer.text

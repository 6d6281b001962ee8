"""The judge's signals and how ``qa calibrate`` chooses them (fast tier, no model).

Hand-made inputs whose right outputs are known: the draft's log-probabilities, a
refusal's probability, what an answer adds to its question, the greedy choice of
signals that pay, and the second-look cut.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from eval.calibrate import Example, choose_signals, second_look_cut
from qa.answerability import answer_signals, draft_signals
from qa.draft import Draft, declined_enough
from qa.judge import refusal_probability
from qa.llm import TokenLogprob
from qa.types import SentenceCheck

ABSTAIN = "The article does not say."


def _tokens(*pairs: tuple[str, float], top: dict[str, float] | None = None) -> tuple:
    entries = [TokenLogprob(t, lp, {t: lp}) for t, lp in pairs]
    if top is not None:
        entries[0] = TokenLogprob(entries[0].token, entries[0].logprob, top)
    return tuple(entries)


def test_draft_signals_leave_citation_markers_out():
    logprobs = _tokens(
        ("Six", -0.1), (" weeks", -0.3), (" [", -0.01), ("2", -5.0), ("].", -0.01),
        top={"Six": -0.1, "The": math.log(0.2)},
    )  # fmt: skip
    signals = draft_signals(logprobs, ABSTAIN)
    assert signals["min_logprob"] == pytest.approx(-0.3)  # not the cited number's -5.0
    assert signals["mean_logprob"] == pytest.approx(-0.2)
    assert signals["abstain_first"] == pytest.approx(0.2)  # "The" starts the refusal
    assert draft_signals((), ABSTAIN) == {
        "min_logprob": 0.0,
        "mean_logprob": 0.0,
        "abstain_first": 0.0,
    }


def test_a_refusals_probability_is_that_of_the_tokens_spelling_it():
    spelled = [("The", -0.1), (" article", -0.2), (" does", 0.0), (" not", 0.0), (" say", 0.0)]
    tokens = _tokens(*spelled, (".", -0.1), (" It", -3.0))
    draft = Draft(ABSTAIN + " It", ABSTAIN + " It", logprobs=tokens)
    assert refusal_probability(draft, ABSTAIN) == pytest.approx(math.exp(-0.4))
    answer = Draft("Six weeks [2].", "Six weeks [2].", logprobs=_tokens(("Six", -0.1)))
    assert refusal_probability(answer, ABSTAIN) is None
    assert refusal_probability(Draft(ABSTAIN, ABSTAIN), ABSTAIN) is None  # no log-probabilities


def test_a_refusal_stops_after_one_sentence_of_what_the_text_does_say():
    assert not declined_enough(ABSTAIN, ABSTAIN)
    assert not declined_enough(ABSTAIN + " It only states that the ferry", ABSTAIN)
    assert declined_enough(ABSTAIN + " It only states six weeks [2]. The", ABSTAIN)
    assert not declined_enough("Six weeks [2]. More text. And more ", ABSTAIN)


def test_an_answer_that_restates_its_question_adds_nothing():
    kept = [SentenceCheck("x", True, 0.8, 0.6, False), SentenceCheck("y", False, 0.1)]
    echo = answer_signals(
        "What did Olsen refuse to say about cables?",
        "Olsen refused to say about cables.",
        kept,
        0.7,
    )
    real = answer_signals("How long will the repairs take?", "Six weeks.", kept, 0.7)
    assert echo["novelty"] == 0.0 and real["novelty"] == 1.0
    assert real["support"] == 0.8 and real["qa_similarity"] == 0.6  # the kept sentence only
    assert real["reattached"] == 0.0 and real["retrieval"] == 0.7


def test_only_signals_that_pay_join_the_model():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 400).astype(float)
    useful = y + rng.normal(0, 0.8, 400)  # separates
    noise = rng.normal(0, 1, 400)
    costly = y + rng.normal(0, 3.0, 400)  # a little signal, not worth a model request
    x = np.column_stack([noise, useful, costly])
    chosen = choose_signals(x, y, ["coverage", "similarity", "self_check"])
    assert chosen[0] == "similarity"
    assert "coverage" not in chosen and "self_check" not in chosen


def test_the_second_look_cut_keeps_the_rescues_with_the_fewest_looks():
    def look(p: float, rescued: bool) -> Example:
        return Example("own set", "q", True, rescued, {"looked_again_after": p})

    looks = [look(0.1, True), look(0.2, True), look(0.5, False), look(0.9, False)]
    cut, line = second_look_cut(looks)
    assert 0.2 < cut <= 0.5 and "2 of 4 looks" in line
    never, _ = second_look_cut([look(0.3, False)])
    assert never == 0.0  # no look ever rescued an answer: never look

"""The judge's signals and how ``qa calibrate`` chooses them (fast tier, no model).

Hand-made inputs whose right outputs are known: the draft's log-probabilities, a
refusal's probability, what an answer adds to its question, the greedy choice of
signals that pay, and the second-look cut.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, replace

import numpy as np
import pytest

from eval.calibrate import (
    Fitted,
    auroc,
    calibrate,
    certainty_cuts,
    check_pays,
    choose,
    second_look_cut,
    second_look_from,
)
from eval.signals import SIGNALS_DIR, SignalRow, record_model
from qa.answerability import (
    CAUTION_LEVELS,
    LOGPROB_SIGNALS,
    SIGNALS,
    AnswerabilityModel,
    JudgeModels,
    answer_signals,
    draft_signals,
)
from qa.draft import Draft, declined_enough
from qa.errors import ModelIntegrityError
from qa.judge import refusal_probability
from qa.judge_files import SHIPPED_JUDGES, judge_for, load_judges
from qa.llm import TokenLogprob
from qa.model_identity import ModelIdentity
from qa.models import MODELS
from qa.types import Certainty, SentenceCheck

ABSTAIN = "The documents do not say."


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
    signals = draft_signals(logprobs)
    assert signals["min_logprob"] == pytest.approx(-0.3)  # not the cited number's -5.0
    assert signals["mean_logprob"] == pytest.approx(-0.2)
    assert signals["abstain_first"] == pytest.approx(0.2)  # "The" starts the refusal
    assert draft_signals(()) == {
        "min_logprob": 0.0,
        "mean_logprob": 0.0,
        "abstain_first": 0.0,
    }


def test_a_refusals_probability_is_that_of_the_tokens_spelling_it():
    spelled = [("The", -0.1), (" article", -0.2), (" does", 0.0), (" not", 0.0), (" say", 0.0)]
    tokens = _tokens(*spelled, (".", -0.1), (" It", -3.0))
    draft = Draft(ABSTAIN + " It", ABSTAIN + " It", logprobs=tokens)
    assert refusal_probability(draft) == pytest.approx(math.exp(-0.4))
    answer = Draft("Six weeks [2].", "Six weeks [2].", logprobs=_tokens(("Six", -0.1)))
    assert refusal_probability(answer) is None
    assert refusal_probability(Draft(ABSTAIN, ABSTAIN)) is None  # no log-probabilities


def test_a_refusal_stops_after_one_sentence_of_what_the_text_does_say():
    assert not declined_enough(ABSTAIN)
    assert not declined_enough(ABSTAIN + " It only states that the ferry")
    assert declined_enough(ABSTAIN + " It only states six weeks [2]. The")
    assert not declined_enough("Six weeks [2]. More text. And more ")


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
    y = rng.integers(0, 2, 400)
    groups = np.array([f"article{i % 4}" for i in range(400)])
    useful = y + rng.normal(0, 0.8, 400)  # separates
    noise = rng.normal(0, 1, 400)
    costly = y + rng.normal(0, 3.0, 400)  # a little signal, not worth a model request
    x = np.column_stack([noise, useful, costly])
    names = ["coverage", "similarity", "self_check"]
    chosen = [names[i] for i in choose(x, y, groups, names)]
    assert chosen[0] == "similarity"
    assert "coverage" not in chosen and "self_check" not in chosen


JUDGE = AnswerabilityModel(("similarity",), (10.0,), -5.0, dict.fromkeys(CAUTION_LEVELS, 0.5))


def _look(outcome: str, similarity: float = 1.0) -> SignalRow:
    """A whole-prompt row whose refusal got a second look that ended in ``outcome``:
    "right" or "wrong" (an answer the judge sees with ``similarity``) or "refused"."""
    right, path = outcome == "right", "declined" if outcome == "refused" else "checked"
    answer = "" if path == "declined" else "an answer"
    signals = {"similarity": similarity}
    timings = {"second_look": 2.0, "total": 3.0}
    return SignalRow("id", "Normans", "q", ("a",), path, answer, right, signals, timings=timings)


def test_a_second_look_is_kept_only_if_it_adds_more_right_answers_than_wrong_ones():
    pays = [_look("right")] * 12 + [_look("wrong")] * 2 + [_look("refused")] * 6
    cut, line = second_look_cut(pays, JUDGE, "balanced")
    assert cut > 1.0 and "12 gave a right answer shown, 2 a wrong one" in line
    costs = [_look("right")] * 3 + [_look("wrong")] * 5 + [_look("refused")] * 12
    assert second_look_cut(costs, JUDGE, "balanced")[0] == 0.0
    # The judge's decision counts: wrong answers it refuses cost the look nothing.
    judged = [_look("right")] * 12 + [_look("wrong", similarity=0.0)] * 8
    assert second_look_cut(judged, JUDGE, "balanced")[0] > 1.0
    unknown, _ = second_look_cut([_look("right")] * 2 + [_look("wrong")] * 2, JUDGE, "balanced")
    assert unknown == 0.0  # no measurable gain: its seconds buy nothing
    never_looked = replace(_look("refused"), timings={"total": 1.0})
    assert second_look_cut([never_looked], JUDGE, "balanced")[0] > 1.0  # no data: stays on


def _fitted(features: tuple[str, ...], answered: np.ndarray, p: np.ndarray | None = None) -> Fitted:
    """A fitted model as the check-pays rule sees it; ``p`` its nested P(right)."""
    model = AnswerabilityModel(features, (1.0,) * len(features), 0.0, {}, "test")
    nested = {level: answered for level in ("low", "balanced", "high")}
    p = np.full(len(answered), 0.5) if p is None else p
    return Fitted(model, 0.7, auroc(p, np.arange(len(p)) < 100), {}, p, nested, p)


def test_a_costly_check_is_read_only_where_it_stops_more_wrong_answers():
    y = np.array([1] * 100 + [0] * 100)
    both_keep_right = np.ones(100, dtype=bool)
    half_of_wrong = np.arange(100) % 2 == 0
    tenth_of_wrong = np.arange(100) % 10 == 0
    sharp = np.concatenate([both_keep_right, tenth_of_wrong])  # refuses 90 % of wrong ones
    blunt = np.concatenate([both_keep_right, half_of_wrong])  # refuses 50 %
    checked = ("self_check_window",)
    pays, line = check_pays(_fitted(checked, sharp), _fitted(("coverage",), blunt), y)
    assert all(pays.values()), line
    pays, line = check_pays(_fitted(checked, blunt), _fitted(("coverage",), sharp), y)
    assert not any(pays.values()) and "does not pay" in line
    # Equal decisions: the check's seconds buy nothing.
    pays, _ = check_pays(_fitted(checked, blunt), _fitted(("coverage",), blunt), y)
    assert not any(pays.values())
    # ... unless it ranks the answers better: that carries a threshold to other documents.
    ranked = np.linspace(1, 0, 200)  # every right answer above every wrong one
    pays, line = check_pays(_fitted(checked, blunt, ranked), _fitted(("coverage",), blunt), y)
    assert all(pays.values()) and "pays at every level" in line, line


def test_a_fit_from_a_signals_file_is_reproducible_and_splits_off_log_probabilities(tmp_path):
    rng = np.random.default_rng(1)
    rows = []
    for i in range(240):
        right = bool(rng.integers(0, 2))
        signals = {name: float(rng.normal()) for name in SIGNALS}
        signals["similarity"] = float(right + rng.normal(0, 0.7))
        signals["self_check_window"] = float(2 * right + rng.normal(0, 1.0))
        row = SignalRow(f"q{i}", f"article{i % 4}", "q", ("a",), "checked", "a", right, signals)
        rows.append(json.dumps(asdict(row)))
    source = tmp_path / "signals.jsonl"
    source.write_text("\n".join(rows) + "\n")
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    with pytest.raises(SystemExit, match="does not say which model answered it"):
        calibrate(source, first)  # a judge is fitted for one model, never for none
    model = ModelIdentity("a test model", "ab" * 32)
    record_model(source, model)
    calibrate(source, first)
    calibrate(source, second)
    assert first.read_text() == second.read_text()  # deterministic: the file reproduces
    models = JudgeModels.load(first)
    assert models.model == model
    assert "similarity" in models.full.features and "self_check_window" in models.full.features
    assert not LOGPROB_SIGNALS & set(models.text_only.features)
    assert "similarity" in models.text_only.features
    low, balanced, high = (models.full.threshold(c) for c in ("low", "balanced", "high"))
    assert low <= balanced <= high
    assert models.report["full"]["nested_auroc"] > 0.7


def test_the_second_look_is_measured_on_whole_prompt_rows_where_there_are_any(tmp_path):
    retrieved = [replace(_look("refused"), timings={})] * 3  # retrieved evidence: no look
    whole = tmp_path / "whole.jsonl"
    looks = [_look("right")] * 3 + [_look("wrong")] * 9
    whole.write_text("".join(json.dumps(asdict(row)) + "\n" for row in looks))
    cut, line = second_look_from(retrieved, whole, JUDGE, "balanced")
    assert cut == 0.0 and "12 second looks of 12 whole-prompt answers" in line
    always, _ = second_look_from(retrieved, tmp_path / "missing.jsonl", JUDGE, "balanced")
    assert always > 1.0


@pytest.mark.parametrize("model", ["default", "fast"])
def test_each_shipped_judge_is_what_its_models_signals_file_fits(tmp_path, model):
    """`qa calibrate --model M` reproduces the judge shipped for each bundled model."""
    from eval.signals import signals_file
    from qa.config import Config

    spec = MODELS[model]
    signals = signals_file(Config(model=model))
    assert signals.parent == SIGNALS_DIR and signals.exists()
    out = tmp_path / "judge.json"
    calibrate(signals, out)
    shipped = judge_for(load_judges(Config()), ModelIdentity(spec.name, spec.sha256))
    assert shipped is not None and shipped[1].parent == SHIPPED_JUDGES
    assert json.loads(out.read_text()) == json.loads(shipped[1].read_text())


def test_a_judge_is_picked_by_the_model_it_was_fitted_on_and_never_for_another(tmp_path):
    from qa.config import Config

    judges = load_judges(Config(model_cache_dir=tmp_path))
    default, fast = (MODELS[name] for name in ("default", "fast"))
    picked = judge_for(judges, ModelIdentity("any name", default.sha256))
    assert picked is not None and picked[0].model.name == default.name
    assert judge_for(judges, ModelIdentity("x", fast.sha256))[0].model.name == fast.name
    assert judge_for(judges, ModelIdentity("another gguf", "0" * 64)) is None
    server = ModelIdentity("m @ u", server="http://gpu:8000/v1", served_model="m", logprobs=True)
    assert judge_for(judges, server) is None
    # A user's judge (in the model cache) for a server's model is found, for that server only.
    mine = tmp_path / "judges" / "m.json"
    mine.parent.mkdir()
    replace(picked[0], model=server).save(mine)
    judges = load_judges(Config(model_cache_dir=tmp_path))
    assert judge_for(judges, server)[1] == mine
    assert judge_for(judges, replace(server, logprobs=False)) is None
    assert judge_for(judges, replace(server, served_model="other")) is None


def test_certainty_bands_promise_only_what_unseen_articles_showed():
    p = np.linspace(0, 1, 400)
    y = (np.random.default_rng(5).random(400) < p).astype(int)  # P(right) is calibrated
    cuts, report = certainty_cuts(p, y)
    assert 0 < cuts["likely"] < cuts["sure"] < 1
    for band, share in (("sure", 0.85), ("likely", 0.65)):
        assert y[p >= cuts[band]].mean() >= share and report[band]["answers"] >= 30
    flat = certainty_cuts(np.full(400, 0.9), np.r_[np.ones(200), np.zeros(200)].astype(int))
    assert flat[0] == {} and not flat[1]["sure"]["reached"]  # half right: no band offered
    model = AnswerabilityModel(("coverage",), (1.0,), 0.0, dict.fromkeys(CAUTION_LEVELS, 0.1))
    banded = replace(model, certainty=cuts)
    assert banded.certainty_of(0.99) is Certainty.SURE
    assert banded.certainty_of(cuts["likely"]) is Certainty.LIKELY
    assert banded.certainty_of(0.0) is model.certainty_of(0.99) is Certainty.UNSURE


def test_a_missing_or_broken_judge_model_stops_with_a_clear_error(tmp_path):
    with pytest.raises(ModelIntegrityError, match="missing"):
        JudgeModels.load(tmp_path / "nowhere.json")
    broken = tmp_path / "broken.json"
    broken.write_text('{"full": {"features": ["made_up"], "weights": [1.0]}}')
    with pytest.raises(ModelIntegrityError, match="cannot be used"):
        JudgeModels.load(broken)


def test_the_rank_auroc_is_scikit_learns():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(3)
    scores, y = np.round(rng.normal(size=300), 1), rng.integers(0, 2, 300)  # with ties
    assert auroc(scores, y) == pytest.approx(roc_auc_score(y, scores))


def test_a_broken_judge_file_stops_start_up_before_anything_loads(tmp_path):
    """Fail closed: before any model or index loads, one clear error (the CLI's exit 2)."""
    from qa.config import Config
    from qa.pipeline import build_pipeline

    broken = tmp_path / "cache" / "judges" / "mine.json"
    broken.parent.mkdir(parents=True)
    broken.write_text('{"full": {"features": ["made_up"], "weights": [1.0]}}')
    store, cache = tmp_path / "store", broken.parents[1]
    config = Config(seeds_dir=tmp_path / "seeds", store_dir=store, model_cache_dir=cache)
    with pytest.raises(ModelIntegrityError, match=r"mine.json cannot be used"):
        build_pipeline(config)
    assert not store.exists()  # nothing was loaded or built first


def test_collecting_appends_a_row_per_answer_and_leaves_a_failed_question_to_the_next_run(
    tmp_path, capsys
):
    from eval.dataset import EvidenceSpan
    from eval.signals import answer_into, read_rows
    from eval.squad2 import SquadQuestion
    from qa.errors import LLMError
    from qa.types import Answer

    span = EvidenceSpan("Normans-000.txt", 0, 10)

    def question(n: int) -> SquadQuestion:
        return SquadQuestion(f"q{n}", "calibration", span.doc, f"Who {n}?", ("Rollo",), (), span)

    class Pipeline:
        def ask(self, text: str) -> Answer:
            if text == "Who 1?":
                raise LLMError("the language model did not answer within 120 s")
            return Answer(text, "Rollo [1].")

    out = tmp_path / "rows.jsonl"
    added = answer_into(out, Pipeline(), [question(n) for n in range(3)], 2, None, "Normans")
    rows = read_rows(out)
    assert added == 2 and sorted(r.id for r in rows) == ["q0", "q2"]
    assert all(r.article == "Normans" and r.right for r in rows)
    assert "q1: not answered (the language model did not answer" in capsys.readouterr().out

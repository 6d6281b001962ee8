"""A judge is about one model: the bundled 0.5B model, with and without its judge.

One engine serves the fast (0.5B) GGUF for the module; each pipeline reaches it over HTTP,
so the model is known by its file's hash (``/props`` names the file). With the shipped
judges on offer the 0.5B is rated by the judge fitted on it; with only the 1.5B's on
offer it answers unchecked — another model's judge is never applied.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from index.ingest import ingest
from qa import judge_files
from qa.answerability import JudgeModels
from qa.config import Config
from qa.engine import start_local_engine
from qa.models import LOCAL_MODEL_NAME
from qa.pipeline import Pipeline, build_pipeline
from qa.types import Certainty

SEED = Path(__file__).parents[1] / "seeds" / "000_61f43937c72d7f92.txt"
FAST_JUDGE = judge_files.SHIPPED_JUDGES / "qwen2.5-coder-0.5b-instruct.json"
DEFAULT_JUDGE = judge_files.SHIPPED_JUDGES / "qwen2.5-coder-1.5b-instruct-q4_k_m.json"
QUESTION = "Where were the missiles fired from?"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def fast_config(tmp_path_factory) -> Iterator[Config]:
    """The seed indexed, answered by the 0.5B model on an engine of its own."""
    base = tmp_path_factory.mktemp("fast")
    seeds = base / "seeds"
    seeds.mkdir()
    shutil.copy(SEED, seeds / SEED.name)
    engine = start_local_engine(Config.from_env(model="fast", n_parallel=1))
    try:
        config = Config.from_env(
            seeds_dir=seeds,
            store_dir=base / "store",
            openai_base_url=f"{engine.url}/v1",
            openai_model=LOCAL_MODEL_NAME,
        )
        ingest(seeds, config)
        yield config
    finally:
        engine.close()


def _offer(monkeypatch, tmp_path: Path, *judges: Path) -> None:
    """Only ``judges`` are on offer (no user folder)."""
    shipped = tmp_path / "shipped"
    shipped.mkdir()
    for judge in judges:
        shutil.copy(judge, shipped)
    monkeypatch.setattr(judge_files, "SHIPPED_JUDGES", shipped)
    monkeypatch.setattr(judge_files, "user_judges", lambda config: tmp_path / "none")


def _build(config: Config, caplog) -> tuple[Pipeline, list[str]]:
    with caplog.at_level(logging.WARNING, logger="qa.pipeline"):
        pipeline = build_pipeline(config)
    return pipeline, [r.getMessage() for r in caplog.records if "no judge" in r.getMessage()]


def test_the_fast_model_without_its_judge_says_so_once_and_answers_unchecked(
    fast_config, tmp_path, monkeypatch, caplog
):
    _offer(monkeypatch, tmp_path, DEFAULT_JUDGE)  # another model's judge only
    pipeline, warnings = _build(fast_config, caplog)
    try:
        assert len(warnings) == 1 and "Qwen2.5-Coder-0.5B-Instruct" in warnings[0]
        assert pipeline.judged_by == warnings[0]
        assert pipeline.judge.policy is None  # the 1.5B's judge is not applied
        answer = pipeline.ask(QUESTION)
        assert answer.certainty in (Certainty.UNCHECKED, None)  # None: a refusal
        if not answer.abstained:
            assert answer.confidence is None
            assert "no judge is fitted for this model" in answer.reasons
        assert not {"self_check_window", "self_check"} & set(answer.signals)  # none read
    finally:
        pipeline.close()


def test_the_fast_model_is_rated_by_the_judge_fitted_on_it(
    fast_config, tmp_path, monkeypatch, caplog
):
    _offer(monkeypatch, tmp_path, DEFAULT_JUDGE, FAST_JUDGE)
    pipeline, warnings = _build(fast_config, caplog)
    try:
        assert not warnings and FAST_JUDGE.name in pipeline.judged_by
        assert pipeline.judge.policy.model == JudgeModels.load(FAST_JUDGE).full
        answer = pipeline.ask(QUESTION)
        assert answer.confidence is not None  # the judge rated the answer (or its refusal)
        if not answer.abstained:  # the 0.5B's judge reaches no band: every rated answer
            assert answer.certainty is Certainty.UNSURE
    finally:
        pipeline.close()

"""A judge is about one model: the real engine, with and without a judge fitted for it.

The session's engine serves the default GGUF; with the shipped judges on offer it is
rated by the one fitted on that file (test_ask_e2e); here no judge on offer fits it, so
it must answer unchecked — another model's weights are never applied.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest

from index.ingest import ingest
from qa import judge_files
from qa.pipeline import build_pipeline
from qa.types import Certainty

SEED = Path(__file__).parents[1] / "seeds" / "000_61f43937c72d7f92.txt"

pytestmark = pytest.mark.slow


def test_a_model_no_judge_was_fitted_for_answers_unchecked_and_says_so_once(
    tmp_path, on_engine, monkeypatch, caplog
):
    only_fast = tmp_path / "shipped"
    only_fast.mkdir()
    shutil.copy(judge_files.SHIPPED_JUDGES / "qwen2.5-coder-0.5b-instruct.json", only_fast)
    monkeypatch.setattr(judge_files, "SHIPPED_JUDGES", only_fast)
    monkeypatch.setattr(judge_files, "user_judges", lambda config: tmp_path / "none")
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    shutil.copy(SEED, seeds / SEED.name)
    config = on_engine(seeds_dir=seeds, store_dir=tmp_path / "store")
    ingest(seeds, config)
    with caplog.at_level(logging.WARNING, logger="qa.pipeline"):
        pipeline = build_pipeline(config)
    try:
        warnings = [r.getMessage() for r in caplog.records if "no judge is fitted" in r.message]
        assert len(warnings) == 1 and "Qwen2.5-Coder-1.5B-Instruct Q4_K_M" in warnings[0]
        assert pipeline.judged_by == warnings[0]
        answer = pipeline.ask("Where were the missiles fired from?")
        assert not answer.abstained and "Sunan" in answer.text
        assert answer.certainty is Certainty.UNCHECKED and answer.confidence is None
        assert "no judge is fitted for this model" in answer.reasons
        assert not {"self_check_window", "self_check"} & set(answer.signals)  # none was read
    finally:
        pipeline.close()

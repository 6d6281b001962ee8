"""The answers through a real model server of its own: ``qa serve-model`` (llama.cpp's server).

The same GGUF is served on localhost, the way a team would run it on a bigger box; the
app talks to it over HTTP exactly as it talks to its in-process engine, so every check
runs there too: the self-check and the yes/no probe read log-probabilities through the
server's API, worked calculations continue a raw prompt, and ``Answer.disabled`` is empty.
"""

from __future__ import annotations

import shutil

import pytest
from served_app import SEEDS
from servers import LlamaServer, default_model

from qa.config import Config
from qa.errors import LLMError
from qa.pipeline import build_pipeline
from qa.prompts import polarity_messages

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def llm_server(tmp_path_factory):
    log = tmp_path_factory.mktemp("llm") / "server.log"
    with LlamaServer(default_model(), log).running() as server:
        yield server


@pytest.fixture(scope="module")
def pipeline(llm_server, tmp_path_factory):
    base = tmp_path_factory.mktemp("llm-app")
    shutil.copytree(SEEDS, base / "seeds")
    config = Config.from_env(
        seeds_dir=base / "seeds",
        store_dir=base / "store",
        openai_base_url=llm_server.url,
        openai_model="qwen-local",
    )
    pipeline = build_pipeline(config)
    yield pipeline
    pipeline.close()


def test_cited_answer_from_the_model_server_with_every_check_on(pipeline):
    assert pipeline.llm.llama_cpp and pipeline.llm.slots == 2
    assert pipeline.engine is None  # nothing loaded in the app's own process
    answer = pipeline.ask("Where were the missiles fired from?")
    assert "Sunan" in answer.text and not answer.abstained
    assert "Sunan" in answer.citations[0].quote
    assert "qwen-local" in answer.model
    assert answer.disabled == []
    # The judge ran on every signal its fitted model reads, the draft's log-probabilities
    # (read through the server's API: 0 without them) among its inputs.
    policy = pipeline.judge.policy
    assert answer.confidence is not None and policy is not None
    fitted = policy.shortcut if "shortcut" in answer.signals else policy.model
    assert fitted is not None and set(fitted.features) <= set(answer.signals)
    assert answer.signals["min_logprob"] < 0 and answer.signals["mean_logprob"] < 0
    unanswerable = pipeline.ask("What is the capital of France?")
    assert unanswerable.abstained


def test_yes_no_probe_reads_log_probabilities_through_the_server_api(pipeline):
    passage = "The ministry said both missiles flew more than 400 miles."
    true = polarity_messages(passage, "Did the missiles fly more than 400 miles?")
    false = polarity_messages(passage, "Did the missiles fly less than 10 miles?")
    logprobs = pipeline.llm.next_token_logprobs(pipeline.llm.render(true))
    assert any(token.strip() in {"Yes", "No"} for token in logprobs)
    assert all(lp <= 0 for lp in logprobs.values())
    assert pipeline.llm.yes_probability(true) > 0.5 > pipeline.llm.yes_probability(false)


def test_model_server_stopped_then_back(pipeline, llm_server):
    llm_server.stop()
    try:
        with pytest.raises(LLMError, match=f"LLM server at {llm_server.url}.*unreachable"):
            pipeline.ask("How far did the missiles fly?")
    finally:
        llm_server.start()
    answer = pipeline.ask("How far did the missiles fly?")  # the same pipeline recovers
    assert "400" in answer.text
    # The restarted server's empty slots got the saved prompt prefix back from its slot
    # file before the question: the article was not read again.
    usage = answer.engine
    assert usage.prompt_cached > usage.prompt_read, usage

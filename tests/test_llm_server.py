"""The answers through a real OpenAI-compatible server: llama.cpp's own (``llama_cpp.server``).

The same GGUF is served on localhost, the way a team would run it on a GPU box; the app
talks to it over HTTP. What needs the model's logits (the self-check, the yes/no probe)
or a raw prompt (worked calculations) is turned off, and every Answer says so.
"""

from __future__ import annotations

import shutil

import pytest
from served_app import SEEDS
from servers import LlamaServer, default_model

from qa.config import Config
from qa.errors import LLMError
from qa.pipeline import Pipeline

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
    return Pipeline(config)


def test_cited_answer_from_the_llm_server(pipeline):
    answer = pipeline.ask("Where were the missiles fired from?")
    assert "Sunan" in answer.text and not answer.abstained
    assert "Sunan" in answer.citations[0].quote
    assert "qwen-local" in answer.model
    # What cannot run over HTTP is named in the answer itself, with why.
    assert any("self-check" in d and "HTTP" in d for d in answer.disabled)
    assert any("calculation" in d for d in answer.disabled)
    unanswerable = pipeline.ask("What is the capital of France?")
    assert unanswerable.abstained


def test_llm_server_stopped_then_back(pipeline, llm_server):
    llm_server.stop()
    try:
        with pytest.raises(LLMError, match=f"LLM server at {llm_server.url}.*unreachable"):
            pipeline.ask("How far did the missiles fly?")
    finally:
        llm_server.start()
    answer = pipeline.ask("How far did the missiles fly?")  # the same pipeline recovers
    assert "400" in answer.text

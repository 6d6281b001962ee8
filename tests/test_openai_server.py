"""The OpenAI-compatible code path, against a small local HTTP server.

The server stands in for Ollama/vLLM/OpenAI: it speaks the chat-completions protocol
(streaming and not) and answers from a fixed script, so the test checks our request
(system prompt with the numbered passages, the user's question) and that the reply goes
through the same verification as the local model's.
"""

import json
import shutil
import threading
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

from qa.config import Config
from qa.pipeline import build_pipeline
from qa.types import Certainty

ROOT = Path(__file__).parents[1]
SEED = ROOT / "seeds" / "000_61f43937c72d7f92.txt"
REPLY = "The missiles were fired from Pyongyang's Sunan area [7]. Also, Paris is lovely [2]."


class FakeServer(BaseHTTPRequestHandler):
    requests: ClassVar[list[dict]] = []
    gives_logprobs: ClassVar[bool] = False  # as vLLM does on chat answers, when asked

    def _logprobs(self, body: dict, token: str) -> dict:
        """OpenAI-style logprobs of one token, where this server gives them and was asked."""
        if not (self.gives_logprobs and body.get("logprobs")):
            return {}
        top = [{"token": "Yes", "logprob": -0.1}, {"token": "No", "logprob": -2.4}]
        top = top if token == "Yes" else [{"token": token, "logprob": -0.2}]
        return {"logprobs": {"content": [{"token": token, "logprob": -0.1, "top_logprobs": top}]}}

    def log_message(self, *args):  # keep test output clean
        pass

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).requests.append({"path": self.path, "body": body})
        if body.get("stream"):
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            for piece in REPLY.split(" "):
                chunk = {
                    "id": "x",
                    "object": "chat.completion.chunk",
                    "created": 0,
                    "model": body["model"],
                    "choices": [
                        {
                            "index": 0,
                            "delta": {"content": piece + " "},
                            "finish_reason": None,
                            **self._logprobs(body, piece),
                        }
                    ],
                }
                self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
            self.wfile.write(b"data: [DONE]\n\n")
            return
        reply = "Yes" if body.get("max_tokens") == 1 else REPLY
        payload = {
            "id": "x",
            "object": "chat.completion",
            "created": 0,
            "model": body["model"],
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": reply},
                    "finish_reason": "stop",
                    **self._logprobs(body, reply.split()[0]),
                }
            ],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        }
        data = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture(scope="module")
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), FakeServer)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    httpd.shutdown()


@pytest.mark.slow
def test_answers_come_from_the_server_and_are_verified(server, tmp_path):
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    shutil.copy(SEED, seeds / SEED.name)
    config = Config.from_env(
        seeds_dir=seeds,
        store_dir=tmp_path / "store",
        openai_base_url=server,
        openai_model="test-model",
    )
    pipeline = build_pipeline(config)
    assert pipeline.prefix_state == "skipped"
    assert not pipeline.llm.llama_cpp  # no llama.cpp /props: chat requests only
    assert "test-model" in pipeline.model_name
    answer = pipeline.ask("Where were the missiles fired from?")

    request = FakeServer.requests[-1]
    assert request["path"] == "/v1/chat/completions"
    assert request["body"]["model"] == "test-model"
    system, user = request["body"]["messages"][0], request["body"]["messages"][-1]
    assert system["role"] == "system" and "Pyongyang’s Sunan area" in system["content"]
    assert "Where were the missiles fired from?" in user["content"]

    # The server's wrong marker [7] is re-attached to the supporting sentence, and the
    # unsupported claim about Paris is dropped.
    assert answer.text == "The missiles were fired from Pyongyang's Sunan area [1]."
    assert "Sunan" in answer.citations[0].quote
    assert not answer.abstained
    # What this server cannot do is named in the answer itself, with why.
    assert any("self-check" in d and "log-probabilities" in d for d in answer.disabled)
    assert any("calculation" in d for d in answer.disabled)
    # No judge was fitted for this server's model: the answer is unchecked, and the judge
    # fitted for the bundled model is not applied to it.
    assert pipeline.judge.policy is None
    assert answer.certainty is Certainty.UNCHECKED and answer.confidence is None
    assert "no judge is fitted for test-model @" in pipeline.judged_by
    assert all(r["path"] == "/v1/chat/completions" for r in FakeServer.requests)
    pipeline.close()


@pytest.mark.slow
def test_a_judge_fitted_for_a_server_without_log_probabilities_is_picked_for_it(
    server, tmp_path, monkeypatch
):
    """A user's judge for this server (``qa calibrate --collect`` against it) is found in
    the model cache and decides with its model fitted without log-probabilities."""
    from qa.answerability import LOGPROB_SIGNALS
    from qa.model_identity import ModelIdentity

    served = ModelIdentity(f"test-model @ {server}", server=server, served_model="test-model")
    pipeline, shipped = _judged_by_a_user_judge(served, "test-model", tmp_path, monkeypatch)
    try:
        assert "test-model.json" in pipeline.judged_by
        # ... judged by the model fitted without log-probabilities, never by one whose
        # log-probability signals would silently read 0.
        assert pipeline.judge.policy.model == shipped.text_only
        assert not LOGPROB_SIGNALS & set(pipeline.judge.policy.model.features)
        answer = pipeline.ask("Where were the missiles fired from?")
        assert answer.certainty is not Certainty.UNCHECKED and answer.confidence is not None
    finally:
        pipeline.close()


class LogprobServer(FakeServer):
    """Stands in for vLLM: OpenAI-compatible, with log-probabilities on chat answers."""

    requests: ClassVar[list[dict]] = []
    gives_logprobs = True


@pytest.mark.slow
def test_a_server_that_gives_log_probabilities_is_judged_with_them(tmp_path, monkeypatch):
    """Found at start by one 1-token request; then the draft's log-probabilities and the
    Yes/No self-check are read from chat answers, and the judge fitted for this server
    with them decides with its full model."""
    from qa.answerability import LOGPROB_SIGNALS
    from qa.model_identity import ModelIdentity

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), LogprobServer)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    served = ModelIdentity("vllm", server=url, served_model="test-model", logprobs=True)
    pipeline, shipped = _judged_by_a_user_judge(served, "vllm", tmp_path, monkeypatch)
    try:
        assert not pipeline.llm.llama_cpp and pipeline.llm.logprobs
        assert pipeline.judge.policy.model == shipped.full
        assert LOGPROB_SIGNALS & set(pipeline.judge.policy.model.features)
        answer = pipeline.ask("Where were the missiles fired from?")
        assert not any("self-check" in d for d in answer.disabled)  # it ran
        assert any("calculation" in d for d in answer.disabled)  # a raw prompt: still off
        probes = [r for r in LogprobServer.requests if r["body"].get("max_tokens") == 1]
        assert probes and probes[0]["body"]["logprobs"]  # asked at start
        assert answer.signals["min_logprob"] < 0  # read from the streamed draft
        assert answer.confidence is not None and answer.certainty is not Certainty.UNCHECKED
    finally:
        pipeline.close()
        httpd.shutdown()


def _judged_by_a_user_judge(served, name: str, tmp_path, monkeypatch):
    """The seed answered through ``served``'s server, with a user judge fitted for it
    (the shipped 1.5B weights, recorded as ``served``'s) as the only user judge on offer;
    the pipeline and the shipped judge it was made from."""
    from qa import judge_files
    from qa.answerability import JudgeModels

    shipped = JudgeModels.load(
        judge_files.SHIPPED_JUDGES / "qwen2.5-coder-1.5b-instruct-q4_k_m.json"
    )
    mine = tmp_path / "judges"
    mine.mkdir()
    replace(shipped, model=served).save(mine / f"{name}.json")
    monkeypatch.setattr(judge_files, "user_judges", lambda config: mine)
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    shutil.copy(SEED, seeds / SEED.name)
    config = Config.from_env(
        seeds_dir=seeds, store_dir=tmp_path / "store", openai_base_url=served.server,
        openai_model=served.served_model,
    )  # fmt: skip
    return build_pipeline(config), shipped

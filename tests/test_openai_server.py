"""The OpenAI-compatible code path, against a small local HTTP server.

The server stands in for Ollama/vLLM/OpenAI: it speaks the chat-completions protocol
(streaming and not) and answers from a fixed script, so the test checks our request
(system prompt with the numbered passages, the user's question) and that the reply goes
through the same verification as the local model's.
"""

import json
import shutil
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

from qa.config import Config
from qa.pipeline import build_pipeline

ROOT = Path(__file__).parents[1]
SEED = ROOT / "seeds" / "000_61f43937c72d7f92.txt"
REPLY = "The missiles were fired from Pyongyang's Sunan area [7]. Also, Paris is lovely [2]."


class FakeServer(BaseHTTPRequestHandler):
    requests: ClassVar[list[dict]] = []

    def log_message(self, *args):  # keep test output clean
        pass

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        FakeServer.requests.append({"path": self.path, "body": body})
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
                        {"index": 0, "delta": {"content": piece + " "}, "finish_reason": None}
                    ],
                }
                self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
            self.wfile.write(b"data: [DONE]\n\n")
            return
        payload = {
            "id": "x",
            "object": "chat.completion",
            "created": 0,
            "model": body["model"],
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": REPLY},
                    "finish_reason": "stop",
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
    # ... and it is judged by the model fitted without log-probabilities, never by one
    # whose log-probability signals would silently read 0.
    from qa.answerability import LOGPROB_SIGNALS, JudgeModels

    assert pipeline.index.judge.policy.model == JudgeModels.load().text_only
    assert not LOGPROB_SIGNALS & set(pipeline.index.judge.policy.model.features)
    assert all(r["path"] == "/v1/chat/completions" for r in FakeServer.requests)

"""The HTTP client of the model server, against small scripted servers (no model).

What the client decides by itself: whether a server is llama.cpp's (its ``/props``), what
P("Yes") is from the next token's log-probabilities (every spelling of Yes and No), that
a server error inside a stream and a server that stops answering become one readable
``LLMError`` each, and which checks a non-llama.cpp server cannot run.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

from qa.errors import LLMError
from qa.llm import LLMClient, Sampling, metered

PROPS = {"total_slots": 3, "model_path": "/m.gguf", "default_generation_settings": {"n_ctx": 4096}}


class Script(BaseHTTPRequestHandler):
    """Answers from class attributes the tests set; records what was asked."""

    props: ClassVar[dict | None] = PROPS
    top: ClassVar[list[tuple[str, float]]] = []
    stream_lines: ClassVar[list[str]] = []
    stall: ClassVar[float] = 0.0
    asked: ClassVar[list[tuple[str, dict]]] = []
    slot_files: ClassVar[set[str]] = set()  # what /slots/{id}?action=save has saved
    slot_dir: ClassVar[Path | None] = None  # where a save leaves its (empty) file

    def log_message(self, *args):
        pass

    def _json(self, payload: object, status: int = 200) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path == "/props" and Script.props is not None:
            return self._json(Script.props)
        return self._json({"error": "not found"}, 404)

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])) or b"{}")
        Script.asked.append((self.path, body))
        if self.path.startswith("/slots/"):
            name, action = body["filename"], self.path.rsplit("action=", 1)[1]
            if action == "save":
                Script.slot_files.add(name)
                if Script.slot_dir is not None:
                    (Script.slot_dir / name).touch()
            found = action == "save" or name in Script.slot_files
            return self._json({"filename": name}, 200 if found else 400)
        if self.path == "/apply-template":
            return self._json({"prompt": "|".join(m["content"] for m in body["messages"])})
        if body.get("stream"):
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            for line in Script.stream_lines:
                self.wfile.write(f"{line}\n\n".encode())
                self.wfile.flush()
                time.sleep(Script.stall)
            return None
        top = [{"token": t, "logprob": lp} for t, lp in Script.top]
        return self._json({"content": "", "completion_probabilities": [{"top_logprobs": top}]})


@contextmanager
def scripted(**attributes: object) -> Iterator[str]:
    defaults = {
        "props": PROPS,
        "top": [],
        "stream_lines": [],
        "stall": 0.0,
        "slot_files": set(),
        "slot_dir": None,
    }
    for name, value in (defaults | attributes).items():
        setattr(Script, name, value)
    Script.asked = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Script)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()


def test_llama_cpp_server_is_recognised_by_its_props():
    with scripted() as url:
        client = LLMClient(url)
        assert client.llama_cpp and client.slots == 3 and client.slot_context == 4096
        assert client.missing == []


RULES = "You answer from the documents. " * 60  # ~2,000 characters every prefix shares
A, AB, ABC = (RULES + tail for tail in ("A.", "A. B.", "A. B. C."))


def _restores_before_reading() -> list[tuple[str, str]]:
    """(slot path, file) of each restore asked before the first prompt was read."""
    paths = [path for path, _ in Script.asked]
    before = Script.asked[: paths.index("/completion")] if "/completion" in paths else []
    return [(path.split("?")[0], body["filename"]) for path, body in before if "restore" in path]


def test_a_new_prefix_starts_from_the_saved_one_it_shares_most_with(tmp_path):
    with scripted(slot_dir=tmp_path) as url:
        first = LLMClient(url, slot_dir=tmp_path)
        assert first.warm(A) == "computed" and first.warm(AB) == "computed"
        # A file it can see is missing is never restored: a failed restore empties the slot.
        assert not [body for path, body in Script.asked if "restore" in path and
                    body["filename"] not in Script.slot_files]  # fmt: skip
        Script.asked.clear()
        fresh = LLMClient(url, slot_dir=tmp_path)  # a new process
        assert fresh.warm(ABC) == "computed"
        assert _restores_before_reading() == [("/slots/0", fresh._prefix_name(AB))]
        assert fresh.warm(ABC) == "restored"  # the next start finds the whole prefix
        Script.asked.clear()
        assert fresh.warm(ABC + " D.") == "computed"
        assert _restores_before_reading() == []  # the first slot already holds the most
        # Too little in common, another model, or a record without its slot file: no head start.
        assert fresh._nearest_saved_prefix("Something else entirely. " * 80) == (None, 0)
        other = LLMClient(url, slot_dir=tmp_path)
        other.model_path = "/other.gguf"
        assert other._nearest_saved_prefix(RULES + "Z.") == (None, 0)
        assert fresh._nearest_saved_prefix(RULES + "Z.")[0] is not None
        for record in tmp_path.glob("*.json"):
            record.with_suffix(".bin").unlink()
        assert fresh._nearest_saved_prefix(RULES + "Z.") == (None, 0)


def test_a_prefix_saved_by_a_client_that_cannot_see_the_files_still_gives_a_head_start(
    tmp_path,
):
    with scripted(slot_dir=tmp_path) as url:
        assert LLMClient(url).warm(A) == "computed"  # saved, but no record of its text
        assert LLMClient(url, slot_dir=tmp_path).warm(A) == "restored"  # records it
        Script.asked.clear()
        grown = LLMClient(url, slot_dir=tmp_path)
        assert grown.warm(AB) == "computed"
        assert _restores_before_reading() == [("/slots/0", grown._prefix_name(A))]


def test_a_remote_server_is_asked_for_a_saved_prefix_in_its_last_slot_only():
    with scripted() as url:
        client = LLMClient(url)  # cannot see the server's files
        assert client.warm(RULES + "Q.") == "computed"
        assert _restores_before_reading() == [("/slots/2", client._prefix_name(RULES + "Q."))]
        assert client.warm(RULES + "Q.") == "restored"


def test_another_server_gets_chat_only_and_says_what_is_off():
    with scripted(props=None) as url:
        client = LLMClient(url)
        assert not client.llama_cpp
        assert any("log-probabilities" in m for m in client.missing)
        with pytest.raises(LLMError, match=r"needs a llama\.cpp server"):
            client.render([{"role": "user", "content": "hi"}])


def test_yes_probability_adds_every_spelling_of_yes_and_no():
    top = [("Yes", math.log(0.5)), (" Yes", math.log(0.1)), ("No", math.log(0.2)), ("Maybe", -1)]
    with scripted(top=top) as url:
        p = LLMClient(url).yes_probability([{"role": "user", "content": "Is it?"}])
        assert p == pytest.approx(0.6 / 0.8)
        path, body = Script.asked[-1]
        assert path == "/completion" and body["n_probs"] >= 2 and body["n_predict"] == 1
    with scripted(top=[("Maybe", -0.1)]) as url:
        assert LLMClient(url).yes_probability([{"role": "user", "content": "Is it?"}]) is None


def test_stream_pieces_and_per_request_sampling():
    chunks = [{"choices": [{"delta": {"content": piece}}]} for piece in ("Four", "00 miles")]
    lines = [f"data: {json.dumps(c)}" for c in chunks] + ["data: [DONE]"]
    with scripted(stream_lines=lines) as url:
        client = LLMClient(url)
        text = "".join(client.stream_chat([{"role": "user", "content": "q"}], Sampling(9, 1.1)))
        assert text == "Four00 miles"
        body = Script.asked[-1][1]
        assert body["max_tokens"] == 9 and body["repeat_penalty"] == 1.1 and body["cache_prompt"]


def test_the_servers_timings_add_up_per_answer():
    """Each request's ``timings`` (llama.cpp sends them on the last event) count once."""
    timings = {"prompt_n": 12, "cache_n": 1457, "predicted_n": 9, "draft_n": 8}
    timings |= {"draft_n_accepted": 5, "prompt_ms": 300.0, "predicted_ms": 280.0}
    chunks = [
        {"choices": [{"delta": {"content": "Four"}}]},
        {"choices": [{"delta": {}}], "timings": timings},
    ]
    lines = [f"data: {json.dumps(c)}" for c in chunks] + ["data: [DONE]"]
    with scripted(stream_lines=lines) as url:
        client = LLMClient(url)
        with metered() as usage:
            for _ in range(2):
                "".join(client.stream_chat([{"role": "user", "content": "q"}], Sampling(9)))
        "".join(client.stream_chat([{"role": "user", "content": "q"}], Sampling(9)))
    assert (usage.requests, usage.prompt_read, usage.prompt_cached) == (2, 24, 2914)
    assert (usage.generated, usage.drafted, usage.accepted) == (18, 16, 10)
    assert usage.acceptance == pytest.approx(10 / 16)
    assert usage.prompt_ms == 600.0 and usage.generate_ms == 560.0


def test_an_error_inside_the_stream_is_one_readable_line():
    lines = ['error: {"code": 500, "message": "the request exceeds the context size"}']
    with scripted(stream_lines=lines) as url, pytest.raises(LLMError, match="exceeds the context"):
        list(LLMClient(url).stream_chat([{"role": "user", "content": "q"}], Sampling(9)))


def test_a_server_that_stops_answering_times_out_with_a_clear_message():
    chunk = json.dumps({"choices": [{"delta": {"content": "x"}}]})
    with scripted(stream_lines=[f"data: {chunk}"] * 5, stall=1.0) as url:
        client = LLMClient(url, timeout=1.5)
        started = time.monotonic()
        with pytest.raises(LLMError, match=r"did not answer within 2 s"):
            list(client.stream_chat([{"role": "user", "content": "q"}], Sampling(9)))
        assert time.monotonic() - started < 4


def test_an_unreachable_server_names_its_url():
    with pytest.raises(LLMError, match=r"LLM server at http://127.0.0.1:9/v1 .*unreachable"):
        LLMClient("http://127.0.0.1:9/v1")

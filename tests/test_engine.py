"""The one LLM engine: llama.cpp's server in-process, several questions at once.

Fast tests cover the snapshot guard and the exposure rules with no model; the slow ones
run the real engine: two questions answered at the same time by one process (both slots
busy at once, neither answer mixed with the other), the warmed prompt prefix in every
slot, and a saved slot file that a fresh process restores instead of re-reading.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from concurrent.futures import Future
from typing import TypeVar

import pytest
from served_app import ROOT, SEEDS, app_env

from index.ingest import ingest
from qa.chat_auth import check_exposure, read_auth_file
from qa.config import Config
from qa.engine import slot_dir
from qa.errors import ConfigError
from qa.pipeline import Pipeline, SnapshotGuard, build_pipeline
from qa.prompts import answer_messages

T = TypeVar("T")
ANSWER_TIMEOUT = 600  # seconds for both answers (2 CPU cores, two at once)


# --- no model ----------------------------------------------------------------------------
def test_snapshot_swap_waits_for_answers_in_flight():
    guard, events = SnapshotGuard(), []
    reading = guard.reading()
    reading.__enter__()  # an answer is being written

    def swap() -> None:
        with guard.writing():
            events.append("swapped")

    writer = threading.Thread(target=swap)
    writer.start()
    time.sleep(0.2)
    assert events == []  # the swap waits for the answer
    events.append("answered")
    reading.__exit__(None, None, None)
    writer.join(timeout=5)
    assert events == ["answered", "swapped"]


def _in_thread(work: Callable[[], T]) -> Future[T]:
    """``work()`` on a daemon thread: a test reads it with a timeout and never hangs on it."""
    future: Future[T] = Future()

    def run() -> None:
        try:
            future.set_result(work())
        except BaseException as error:  # handed to the test through the future
            future.set_exception(error)

    threading.Thread(target=run, daemon=True).start()
    return future


def test_readers_do_not_wait_for_each_other():
    """Two answers on two threads hold the read share at the same time: each one waits,
    inside, for the other to come in too, which it could not if readers excluded each other."""
    guard = SnapshotGuard()
    both_inside = threading.Barrier(2, timeout=5)

    def answer() -> int:
        with guard.reading():
            return both_inside.wait()  # BrokenBarrierError if the other never comes in

    answers = [_in_thread(answer) for _ in range(2)]
    assert sorted(a.result(timeout=10) for a in answers) == [0, 1]

    # Both shares were given back: a swap goes through at once.
    def swap() -> str:
        with guard.writing():
            return "swapped"

    assert _in_thread(swap).result(timeout=5) == "swapped"


@pytest.mark.parametrize(
    ("host", "share"), [("0.0.0.0", False), ("192.0.2.7", False), ("127.0.0.1", True)]
)
def test_serving_beyond_this_machine_needs_a_login(host, share):
    with pytest.raises(ConfigError, match="--auth-file"):
        check_exposure(host, None, allow_no_auth=False, share=share)
    check_exposure(host, [("ann", "pw")], allow_no_auth=False, share=share)
    check_exposure(host, None, allow_no_auth=True, share=share)
    check_exposure("127.0.0.1", None, allow_no_auth=False, share=False)


def test_auth_file_lines(tmp_path):
    good = tmp_path / "users"
    good.write_text("# team\nann:s3cret\n\nbob: pass:with:colons\n")
    assert read_auth_file(good) == [("ann", "s3cret"), ("bob", " pass:with:colons")]
    bad = tmp_path / "bad"
    bad.write_text("ann\n")
    with pytest.raises(ConfigError, match="line 1: expected user:password"):
        read_auth_file(bad)
    with pytest.raises(ConfigError, match="cannot read"):
        read_auth_file(tmp_path / "missing")


def test_cli_refuses_a_public_chat_without_auth_before_loading_anything(tmp_path):
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "qa", "chat", "--host", "0.0.0.0", "--store", str(tmp_path)],
        cwd=ROOT, env=app_env(), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "--auth-file" in result.stderr
    assert not (tmp_path / "chroma.sqlite3").exists()  # nothing was indexed or loaded
    assert time.monotonic() - started < 60


def test_cli_refuses_a_public_model_server_without_a_key():
    result = subprocess.run(
        [sys.executable, "-m", "qa", "serve-model", "--host", "0.0.0.0"],
        cwd=ROOT, env=app_env(), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 2 and "--api-key" in result.stderr


# --- the real engine ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    base = tmp_path_factory.mktemp("engine")
    shutil.copytree(SEEDS, base / "seeds")
    config = Config.from_env(seeds_dir=base / "seeds", store_dir=base / "store", n_parallel=2)
    pipeline = build_pipeline(config)
    yield pipeline
    pipeline.close()


def _slots(pipeline: Pipeline) -> list[dict]:
    with urllib.request.urlopen(f"{pipeline.llm.root}/slots", timeout=10) as response:
        return json.load(response)


@pytest.mark.slow
def test_two_questions_at_once_from_one_process_are_not_mixed(pipeline):
    questions = {
        "Where were the missiles fired from?": ("Sunan", "400"),
        "How far did the missiles fly?": ("400", "Sunan"),
    }
    busy: list[int] = []
    futures = {q: _in_thread(lambda q=q: pipeline.ask(q)) for q in questions}
    deadline = time.monotonic() + ANSWER_TIMEOUT
    while not all(f.done() for f in futures.values()) and time.monotonic() < deadline:
        busy.append(sum(slot["is_processing"] for slot in _slots(pipeline)))
        time.sleep(0.05)
    answers = {q: f.result(timeout=1) for q, f in futures.items()}  # raises, never hangs
    assert max(busy) == 2, busy  # both slots decoded at the same time: no global lock
    for question, (own, other) in questions.items():
        answer = answers[question]
        assert own in answer.text and other not in answer.text, answer.text
        assert answer.question == question
        assert all(own in c.quote for c in answer.citations), answer.citations


@pytest.mark.slow
def test_every_slot_holds_the_warmed_prefix_and_a_fresh_process_restores_it(pipeline):
    assert pipeline.prefix_state in {"computed", "restored"}
    assert list(slot_dir(pipeline.config).glob("prefix-*.bin"))
    # A fresh engine (a new process does the same) restores the saved slot file. The first
    # one is stopped before: one model in memory at a time, as with a new process.
    pipeline.close()
    fresh = build_pipeline(pipeline.config)
    try:
        assert fresh.prefix_state == "restored"
        question = "Who is Jung Pak?"
        prompt = fresh.llm.render(answer_messages(fresh.index.passages, question))
        tokens = fresh.llm.count_tokens(prompt)
        for slot in range(fresh.llm.slots):
            body = {"prompt": prompt, "n_predict": 1, "id_slot": slot, "cache_prompt": True}
            request = urllib.request.Request(
                f"{fresh.llm.root}/completion",
                data=json.dumps(body).encode(),
                headers={"Content-Type": "application/json"},
            )
            with urllib.request.urlopen(request, timeout=120) as response:
                timings = json.load(response)["timings"]
            # Only the question is read; the article came from the restored slot file.
            assert timings["cache_n"] >= tokens - 30, (slot, timings, tokens)
    finally:
        fresh.close()


@pytest.mark.slow
def test_a_grown_corpus_reads_only_its_new_document(pipeline, tmp_path):
    """A new process over the seed plus a short note starts from the seed's saved prefix
    (the note goes after it: documents are in the order added) and reads only the note."""
    pipeline.close()  # the seed's prefix is saved; one model in memory at a time
    folder = tmp_path / "docs"
    shutil.copytree(SEEDS, folder)
    (folder / "000_0_harbour_note.txt").write_text(  # sorts first by name, goes last by addition
        "Harbour notice. Ann Lee resigned as harbour director on Monday. "
        "Her deputy, Tom Reyes, takes over until a director is appointed.\n"
    )
    config = Config.from_env(seeds_dir=folder, store_dir=tmp_path / "store", n_parallel=2)
    ingest(SEEDS, config)  # the seed first, as a user who drops the note in later
    ingest(folder, config)
    grown = build_pipeline(config)
    try:
        assert [p.doc for p in grown.index.passages][-1] == "000_0_harbour_note.txt"
        prompt = grown.llm.render(answer_messages(grown.index.passages, "?"))
        assert grown.prefix_state in {"computed", "restored"}
        if grown.prefix_state == "computed":  # "restored": an earlier run saved this prefix
            assert 0 < grown.llm.prefix_read < 120, grown.llm.prefix_read
        assert grown.llm.count_tokens(prompt) > 1000
        answer = grown.ask("Who takes over from Ann Lee?")
        assert "Tom Reyes" in answer.text, answer.text
    finally:
        grown.close()

"""Robustness: load, faults and bad input, with the real models, a real Chroma store and
the real Gradio app (served in a subprocess and driven through ``gradio_client``).

Run with ``-s`` to see the load figures (throughput and latency under load). Already
covered elsewhere and not repeated here: empty/2,001-character questions (test_cli,
test_ask_e2e, test_ui), binary and non-UTF-8 seed files (test_ingest), an ingest killed
midway and re-run (test_ingest).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys

import pytest
from served_app import ROOT, SEEDS, Served, answer_part, app_env, chat, client_for, start_app

from eval.load import markdown_table, run_load
from qa.config import Config
from qa.errors import IndexCorruptError, InvalidQuestionError

SEED = SEEDS / "000_61f43937c72d7f92.txt"
START_TIMEOUT = 300  # seconds: a fresh store is indexed first, then the models load
ANSWER_TIMEOUT = 600  # seconds per request, queue wait included (32 requests share one LLM)
HUGE = ("Where were the missiles fired from? " * 3000)[:100_000]  # a 100 KB question

pytestmark = pytest.mark.slow


def _qa(*args: object, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "qa", *map(str, args)],
        cwd=ROOT,
        env=app_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _check_citations(answer) -> None:
    source = SEED.read_text()
    assert answer.citations, answer
    for citation in answer.citations:
        assert f"[{citation.number}]" in answer.text
        assert source[citation.start : citation.end] == citation.quote


# --- the served app ----------------------------------------------------------------------
def _chat(client, question: str) -> str:
    return chat(client, question, ANSWER_TIMEOUT)


def _healthy(served: Served) -> None:
    assert served.process.poll() is None, served.log()
    answer = _chat(client_for(served), "Where were the missiles fired from?")
    assert "Sunan" in answer_part(answer), answer


class TestServedApp:
    """One real server (fresh store) for load, a concurrent writer and oversized input."""

    @pytest.fixture(scope="class")
    def served(self, tmp_path_factory):
        served = start_app(tmp_path_factory.mktemp("robust-ui"), START_TIMEOUT)
        try:
            yield served
        finally:
            served.stop()

    def test_eight_concurrent_sessions_each_get_their_own_answers(self, served):
        """8 browser sessions x (question, follow-up, question, off-topic), all at once:
        every answer right, every follow-up read with its own session's history."""
        report = run_load([served.url], timeout=ANSWER_TIMEOUT)
        print("\n" + markdown_table(report))
        assert report["questions"] == 32
        assert not report["problems"], "\n".join(report["problems"])
        _healthy(served)

    def test_a_second_process_ingesting_while_the_app_answers(self, served):
        from gradio_client import Client

        from index.store import Manifest, open_collection

        config = Config.from_env(store_dir=served.store)
        generation = Manifest.read(served.store).generation
        questions = [
            ("Where were the missiles fired from?", "Sunan"),
            ("How far did the missiles fly?", "400"),
            ("Where did Kim Jong Un meet Vladimir Putin?", "Vostochny"),
        ]
        # Two writers at once, started while the app is answering.
        command = [sys.executable, "-m", "qa", "ingest", str(SEEDS), "--store", str(served.store)]
        writers = [
            subprocess.Popen(
                command, cwd=ROOT, env=app_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE
            )
            for _ in range(2)
        ]
        client = Client(served.url, verbose=False)
        answered, during = [], 0
        while any(w.poll() is None for w in writers) or len(answered) < len(questions):
            question, expected = questions[len(answered) % len(questions)]
            during += any(w.poll() is None for w in writers)
            result = client.submit(question, api_name="/ask").result(timeout=ANSWER_TIMEOUT)
            answered.append((question, expected, result))
        # Once more after the writers are done: the app picks up the new generation.
        question, expected = questions[0]
        answered.append(
            (
                question,
                expected,
                client.submit(question, api_name="/ask").result(timeout=ANSWER_TIMEOUT),
            )
        )

        assert during >= 1, "no question was asked while an ingest was running"
        for question, expected, result in answered:
            assert not result["abstained"] and expected in result["text"], (question, result)
            assert result["citations"], result
        finished = 0
        for writer in writers:
            out, err = (stream.decode() for stream in writer.communicate(timeout=60))
            assert "Traceback" not in err, err
            if writer.returncode == 0:
                finished += 1
                assert "0 added, 0 removed, 15 unchanged" in out, out
            else:
                assert writer.returncode == 2, (writer.returncode, err)
                assert err.startswith("error: another process is writing"), err
                assert len(err.strip().splitlines()) == 1, err
        print(f"\nconcurrent ingest: {finished}/2 writers completed, {during} questions during")
        assert Manifest.read(served.store).generation == generation + finished
        ids = open_collection(
            served.store, config.collection, config.embed_model, create=False
        ).get(include=[])["ids"]
        assert len(ids) == len(set(ids)) == 15
        _healthy(served)

    def test_a_100_kb_question_is_a_readable_error_and_the_server_stays_up(self, served):
        from gradio_client.exceptions import AppError

        client = client_for(served)
        result = _chat(client, HUGE)
        assert "qa-error" in result, result[:500]
        assert re.search(r"the question is [\d,]+ characters long; the limit is 2,000", result)
        assert "Traceback" not in result and len(result) < 2000, result[:500]
        with pytest.raises(AppError, match="the limit is 2,000"):
            client.submit(HUGE, api_name="/ask").result(timeout=ANSWER_TIMEOUT)
        # The same session still answers, and so does a new one.
        assert "Sunan" in answer_part(_chat(client, "Where were the missiles fired from?"))
        _healthy(served)


# --- bad input through the CLI and the Python API ----------------------------------------
def test_cli_100_kb_question_exits_2_with_one_line(tmp_path):
    result = _qa("ask", HUGE, "--store", tmp_path / "store", "--seeds", SEEDS)
    assert result.returncode == 2
    assert result.stdout == ""
    expected = r"error: the question is [\d,]+ characters long; the limit is 2,000"
    assert re.match(expected, result.stderr), result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


@pytest.fixture(scope="module")
def config(tmp_path_factory) -> Config:
    base = tmp_path_factory.mktemp("robust-api")
    seeds = base / "seeds"
    seeds.mkdir()
    shutil.copy(SEED, seeds / SEED.name)
    return Config.from_env(seeds_dir=seeds, store_dir=base / "store")


def test_api_rejects_huge_questions_before_loading_anything(config):
    from qa import ask

    with pytest.raises(InvalidQuestionError, match=r"characters long; the limit is 2,000"):
        ask(HUGE, config=config)
    with pytest.raises(InvalidQuestionError, match="100,000 characters long"):
        ask("x" * 100_000, config=config)
    with pytest.raises(InvalidQuestionError, match="the question is empty"):
        ask(" \n\t\x00" * 25_000, config=config)  # 100 KB of nothing
    assert not config.store_dir.exists()  # refused before the index was even built


@pytest.fixture(scope="module")
def pipeline(config):
    from qa.pipeline import get_pipeline

    return get_pipeline(config)  # the same Pipeline that qa.ask(config=config) uses


def test_control_characters_inside_a_real_question_are_ignored(pipeline, config):
    from qa import ask

    answer = ask("Where\x00 were the\x07 missiles\x1b fired\u0085 from?\r\n", config=config)
    assert answer.question == "Where were the missiles fired from?"
    assert not answer.abstained and "Sunan" in answer.text, answer.text
    _check_citations(answer)


def test_a_korean_question_returns_an_answer_or_abstains_without_crashing(pipeline, config):
    from qa import Answer, ask
    from qa.prompts import ABSTAIN_TEXT

    answer = ask("미사일은 어디에서 발사되었나요?", config=config)
    assert isinstance(answer, Answer)
    print(f"\nKorean question -> {answer.text!r} (abstained={answer.abstained})")
    if answer.abstained:  # a refusal may point at the closest passage, quoted exactly
        assert answer.text.startswith(ABSTAIN_TEXT), answer
    if answer.citations or not answer.abstained:  # what it cites is an exact span
        _check_citations(answer)


def test_store_deleted_then_corrupted_under_a_running_pipeline(pipeline, config):
    from index.ingest import ingest
    from index.store import MANIFEST

    question = "Where were the missiles fired from?"
    assert "Sunan" in pipeline.ask(question).text

    # Deleted: the next question rebuilds the index from the seeds and is answered.
    shutil.rmtree(config.store_dir)
    answer = pipeline.ask(question)
    assert not answer.abstained and "Sunan" in answer.text, answer.text
    _check_citations(answer)
    assert (config.store_dir / MANIFEST).exists() and pipeline.index.generation == 1

    # Corrupted (garbage database, no manifest): a clear error that says how to repair,
    # again on the next question (not a raw Chroma error from a dead handle)...
    (config.store_dir / "chroma.sqlite3").write_bytes(b"this is not a database" * 500)
    (config.store_dir / MANIFEST).unlink()
    for _ in range(2):
        with pytest.raises(IndexCorruptError, match=r"cannot be opened.*qa ingest --rebuild"):
            pipeline.ask(question)
    # ...and once it is rebuilt as advised, the same pipeline answers again.
    report = ingest(config=config, rebuild=True)
    assert report.added == report.passages == 15
    answer = pipeline.ask(question)
    assert not answer.abstained and "Sunan" in answer.text, answer.text
    _check_citations(answer)


# --- model files -----------------------------------------------------------------------------
def test_truncated_or_damaged_model_file_is_rebuilt_from_the_parts(tmp_path):
    from qa.engine import start_local_engine
    from qa.llm import connect
    from qa.models import MODELS, resolve_model_path, sha256_of, verify

    spec = MODELS["fast"]
    real = resolve_model_path("fast", Config.from_env().model_cache_dir)
    cache = tmp_path / "cache"
    cache.mkdir()
    target = cache / spec.filename
    with open(real, "rb") as source, open(target, "wb") as copy:
        copy.write(source.read(8 * 1024 * 1024))  # a download cut short at 8 MB
    assert not verify(target, spec)
    assert resolve_model_path("fast", cache) == target
    assert target.stat().st_size == spec.size and sha256_of(target) == spec.sha256

    # Same size, one byte flipped: only the SHA-256 check can tell.
    with open(target, "r+b") as handle:
        handle.seek(spec.size // 2)
        byte = handle.read(1)
        handle.seek(spec.size // 2)
        handle.write(bytes([byte[0] ^ 0xFF]))
    damaged = target.stat().st_ino
    assert target.stat().st_size == spec.size and not verify(target, spec)
    assert resolve_model_path("fast", cache) == target
    assert target.stat().st_ino != damaged  # re-assembled, not patched
    assert verify(target, spec)
    assert not list(cache.glob("*.partial-*"))

    # And llama.cpp loads the repaired file through the normal path.
    config = Config.from_env(model="fast", model_cache_dir=cache, n_parallel=1)
    engine = start_local_engine(config)
    try:
        llm = connect(config, engine.url)
        assert llm.model_path == str(target)
        assert llm.count_tokens("Sunan") >= 1
        llm.close()
    finally:
        engine.close()

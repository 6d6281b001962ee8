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
from dataclasses import dataclass
from typing import Any

import pytest
from served_app import ROOT, SEEDS, Served, answer_part, app_env, chat, client_for, start_app

from eval.load import TURNS, markdown_table, run_load, session_plan
from eval.load_sessions import is_abstained, is_error, read_as
from qa.config import Config
from qa.errors import IndexCorruptError, InvalidQuestionError
from qa.prompts import ABSTAIN_TEXT

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


class _Recorder:
    """A ``gradio_client.Client`` for :func:`eval.load.run_load` that keeps every chat
    message its session got, in order, with the question it answered."""

    def __init__(self, client) -> None:
        self.client, self.got = client, []

    def submit(self, question: str, api_name: str) -> _Recorder._Job:
        return self._Job(self, question, self.client.submit(question, api_name=api_name))

    class _Job:
        def __init__(self, recorder: _Recorder, question: str, job) -> None:
            self.recorder, self.question, self.job = recorder, question, job

        def result(self, timeout: float) -> str:
            message = self.job.result(timeout=timeout)
            self.recorder.got.append((self.question, message))
            return message


def _cited(message: str) -> bool:
    """A chat answer whose every linked marker ``[n]`` has its source shown, and one at least."""
    linked = set(re.findall(r'href="#(qa-src-\w+-\d+)"', answer_part(message)))
    shown = set(re.findall(r'<details class="qa-source" id="(qa-src-\w+-\d+)"', message))
    return bool(linked) and linked <= shown


class TestServedApp:
    """One real server (fresh store) for load and oversized input."""

    @pytest.fixture(scope="class")
    def served(self, tmp_path_factory):
        served = start_app(tmp_path_factory.mktemp("robust-ui"), START_TIMEOUT)
        try:
            yield served
        finally:
            served.stop()

    @pytest.fixture(scope="class")
    def load(self, served):
        """4 browser sessions x (question, follow-up, question, off-topic), all at once on a
        2-slot engine (so two wait in line); the report and every session's own messages."""
        recorders: list[_Recorder] = []

        def client_factory(url: str) -> _Recorder:
            recorder = _Recorder(client_for(served))
            recorders.append(recorder)
            return recorder

        report = run_load(
            [served.url], sessions=4, timeout=ANSWER_TIMEOUT, client_factory=client_factory
        )
        print("\n" + markdown_table(report))
        for problem in report["problems"]:
            print(f"- {problem}")
        return report, {recorder.got[0][0]: recorder.got for recorder in recorders if recorder.got}

    def test_concurrent_sessions_each_get_their_own_answers(self, served, load):
        """No answer lost or crossed: every session gets its own 4 answers, each follow-up
        read with its own session's history and no other's, and every answer is cited or a
        clean refusal (the off-topic one always a refusal). test_scale_out runs 4 sessions
        over two replicas."""
        report, transcripts = load
        assert report["questions"] == 16, report
        lost_or_mixed = [p for p in report["problems"] if ": lost: " in p or ": mixed: " in p]
        assert report["lost"] == report["mixed"] == 0, "\n".join(lost_or_mixed)
        plans = [session_plan(n) for n in range(4)]
        assert len({plan.first for plan in plans}) == 4  # a transcript is known by its first
        subjects = {plan.subject for plan in plans}
        for plan in plans:
            transcript = transcripts.get(plan.first)
            assert transcript is not None, (plan.first, list(transcripts))
            assert [q for q, _ in transcript] == list(plan.questions()), transcript
            messages = dict(zip(TURNS, (m for _, m in transcript), strict=True))
            for turn, message in messages.items():
                assert not is_error(message), (plan.first, turn, message[:500])
                assert is_abstained(message) or _cited(message), (plan.first, turn, message)
            read = read_as(messages["follow_up"])
            others = {s for s in subjects - {plan.subject} if s not in plan.follow_up}
            assert plan.subject in read and not any(s in read for s in others), (plan, read)
            assert is_abstained(messages["off_topic"]), messages["off_topic"][:500]
        _healthy(served)

    @pytest.mark.xfail(
        strict=True,
        reason="known miss: under load one follow-up ('When did he hold a news briefing?') is "
        "refused ('The documents do not say.') where the answer is Monday",
    )
    def test_concurrent_sessions_answers_name_what_each_question_asks(self, load):
        """The content of those answers: each holds what its question asks (the 1.5B
        model's quality under load, not the serving)."""
        report, _ = load
        assert report["wrong"] == 0, "\n".join(report["problems"])

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


# --- a writer that changes the corpus while the app answers --------------------------------
HARBOR = "harbor.txt"
HARBOR_QUESTION = "What will the Millbrook harbor dredging cost?"
# Two versions of one document: the writer replaces the first by the second. The figure
# differs and so does every offset, so an answer can be told apart by generation.
HARBOR_VERSIONS = {
    1: "Dredging the Millbrook harbor will cost 12 million dollars, the port authority said. "
    "The work starts next spring.\n",
    2: "After a delay of several months, dredging the Millbrook harbor will now cost 15 million "
    "dollars, the port authority said on Friday. The work starts next autumn.\n",
}
HARBOR_FIGURES = {1: "12 million", 2: "15 million"}
SEED_QUESTIONS = [
    ("Where were the missiles fired from?", "Sunan"),
    ("Where did Kim Jong Un meet Vladimir Putin?", "Vostochny"),
]


def _harbor_version(result: dict) -> int | None:
    """Which version of harbor.txt an /ask answer comes from: 1 or 2, or None when it is
    neither wholly (a mixed answer, a refusal, or a quote that is in neither version)."""
    for version, text in HARBOR_VERSIONS.items():
        figure, other = HARBOR_FIGURES[version], HARBOR_FIGURES[3 - version]
        cited = [c for c in result["citations"] if c["doc"] == HARBOR]
        if (
            not result["abstained"]
            and figure in result["text"]
            and other not in result["text"]
            and cited
            and all(text[c["start"] : c["end"]] == c["quote"] for c in cited)
            and any(figure in c["quote"] for c in cited)
        ):
            return version
    return None


@pytest.fixture(scope="module")
def edited(tmp_path_factory, engine_flags):
    """The app on a copy of the seeds plus version 1 of harbor.txt (model: the engine)."""
    base = tmp_path_factory.mktemp("robust-writer")
    seeds = base / "seeds"
    shutil.copytree(SEEDS, seeds)
    (seeds / HARBOR).write_text(HARBOR_VERSIONS[1])
    served = start_app(base, START_TIMEOUT, seeds, engine_flags)
    try:
        yield served, seeds
    finally:
        served.stop()


@dataclass
class WritersRan:
    """What the readers got while two ingests of the edited harbor.txt ran, and after."""

    served: Served
    before: Any  # the manifest before the edit
    first: dict  # the harbor answer before the edit
    harbor: list[dict]  # the harbor answers while the writers ran, in order
    seed: list[tuple[str, str, dict]]  # (question, expected, answer) on the unchanged seed
    after: dict  # the harbor answer once the writers are done
    during: int  # rounds asked while a writer was still running
    writers: list[tuple[int, str, str]]  # each writer's (exit code, stdout, stderr)


@pytest.fixture(scope="module")
def writers_ran(edited) -> WritersRan:
    """Two ingests of an edited document run while the app answers, asked once for the
    module's two tests."""
    from gradio_client import Client

    from index.store import Manifest

    served, seeds = edited
    before = Manifest.read(served.store)
    client = Client(served.url, verbose=False)

    def ask(question: str) -> dict:
        return client.submit(question, api_name="/ask").result(timeout=ANSWER_TIMEOUT)

    first = ask(HARBOR_QUESTION)  # before the edit
    (seeds / HARBOR).write_text(HARBOR_VERSIONS[2])
    command = [sys.executable, "-m", "qa", "ingest", str(seeds), "--store", str(served.store)]
    writers = [
        subprocess.Popen(
            command, cwd=ROOT, env=app_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        for _ in range(2)
    ]
    harbor, seed, during = [], [], 0
    while any(w.poll() is None for w in writers) or len(seed) < len(SEED_QUESTIONS):
        during += any(w.poll() is None for w in writers)
        harbor.append(ask(HARBOR_QUESTION))
        question, expected = SEED_QUESTIONS[len(seed) % len(SEED_QUESTIONS)]
        seed.append((question, expected, ask(question)))
    after = ask(HARBOR_QUESTION)  # the writers are done
    outputs = []
    for writer in writers:
        out, err = (stream.decode() for stream in writer.communicate(timeout=60))
        outputs.append((writer.returncode, out, err))
    versions = [_harbor_version(result) for result in harbor]
    print(f"\nharbor.txt versions answered while the writers ran: {versions}")
    for question, _, result in seed:
        print(
            f"{question} -> {result['text']!r} citing {[c['quote'] for c in result['citations']]}"
        )
    return WritersRan(served, before, first, harbor, seed, after, during, outputs)


def test_readers_move_to_the_writers_generation_and_never_mix_two(writers_ran):
    """Answers in flight come wholly from the old generation or wholly from the new one,
    never go back to the old one, and once the writers are done every answer is the new
    generation's; the unchanged document is answered from its own exact sentences (or
    cleanly refused) throughout, and one writer made the edit, once."""
    from index.store import Manifest, open_collection

    ran = writers_ran
    served, before = ran.served, ran.before
    assert _harbor_version(ran.first) == 1, ran.first  # before the edit
    assert ran.during >= 1, "no question was asked while an ingest was running"
    versions = [_harbor_version(result) for result in ran.harbor]
    assert None not in versions, [r for r, v in zip(ran.harbor, versions, strict=True) if v is None]
    assert versions == sorted(versions), versions  # never back to the old generation
    assert _harbor_version(ran.after) == 2, ran.after  # the new generation is picked up
    source = SEED.read_text()
    for question, _, result in ran.seed:
        markers = {int(n) for n in re.findall(r"\[(\d+)\]", result["text"])}
        if result["abstained"]:
            assert result["text"].startswith(ABSTAIN_TEXT), (question, result)
        else:
            assert result["citations"] and markers, (question, result)  # no uncited claim
        assert markers <= {c["number"] for c in result["citations"]}, (question, result)
        assert all(c["doc"] == SEED.name for c in result["citations"]), result
        assert all(source[c["start"] : c["end"]] == c["quote"] for c in result["citations"])

    # One writer replaced harbor.txt's passages; a second one that got the lock after it
    # found nothing to do, and one that did not get it was turned away with one line.
    passages = sum(doc["passages"] for doc in before.docs.values())
    manifest = Manifest.read(served.store)
    total = sum(doc["passages"] for doc in manifest.docs.values())
    removed, added = before.docs[HARBOR]["passages"], manifest.docs[HARBOR]["passages"]
    edit = f"{added} added, {removed} removed, {passages - removed} unchanged"
    again = f"0 added, 0 removed, {total} unchanged"
    outputs = []
    for returncode, out, err in ran.writers:
        assert "Traceback" not in err, err
        if returncode == 0:
            outputs.append(out)
        else:
            assert returncode == 2, (returncode, err)
            assert err.startswith("error: another process is writing"), err
            assert len(err.strip().splitlines()) == 1, err
    print(f"concurrent ingest: {len(outputs)}/2 writers completed, {ran.during} rounds during")
    assert sum(edit in out for out in outputs) == 1, outputs  # exactly one made the edit
    assert all(edit in out or again in out for out in outputs), outputs
    assert manifest.generation == before.generation + len(outputs)
    config = Config.from_env(store_dir=served.store)
    collection = open_collection(served.store, config.collection, config.embed_model, create=False)
    ids = collection.get(include=[])["ids"]
    assert len(ids) == len(set(ids)) == total  # one copy of every passage
    assert served.process.poll() is None, served.log()[-3000:]


@pytest.mark.xfail(
    strict=True,
    reason="known miss: on two documents 'Where were the missiles fired from?' is answered "
    "'Pyongyang [1].' citing the Jung Pak sentence, not the Sunan one",
)
def test_the_unchanged_document_answers_its_questions_while_the_writers_run(writers_ran):
    """The content of the seed answers asked between the writers' rounds: each is answered,
    citing the sentence that holds what is asked (the 1.5B model's quality on two
    documents, not the generations; test_ask_e2e asks them on the seed alone)."""
    for question, expected, result in writers_ran.seed:
        assert not result["abstained"] and result["citations"], (question, result)
        assert any(expected in c["quote"] for c in result["citations"]), (question, result)


# --- bad input through the CLI and the Python API ----------------------------------------
def test_cli_100_kb_question_exits_2_with_one_line(tmp_path):
    result = _qa("ask", HUGE, "--store", tmp_path / "store", "--seeds", SEEDS)
    assert result.returncode == 2
    assert result.stdout == ""
    expected = r"error: the question is [\d,]+ characters long; the limit is 2,000"
    assert re.match(expected, result.stderr), result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


@pytest.fixture(scope="module")
def config(tmp_path_factory, on_engine) -> Config:
    base = tmp_path_factory.mktemp("robust-api")
    seeds = base / "seeds"
    seeds.mkdir()
    shutil.copy(SEED, seeds / SEED.name)
    return on_engine(seeds_dir=seeds, store_dir=base / "store")


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


KOREAN = "미사일은 어디에서 발사되었나요?"  # "Where were the missiles fired from?"


@pytest.fixture(scope="module")
def korean(pipeline, config):
    """The Korean question's answer, asked once for the two tests."""
    from qa import ask

    answer = ask(KOREAN, config=config)
    print(f"\nKorean question -> {answer.text!r} (abstained={answer.abstained})")
    return answer


def test_a_korean_question_gets_a_cited_answer_or_a_clean_refusal(korean):
    """A question in another language (the article is English) is read as typed, and gets
    either a cited answer or the article's refusal, never a crash, an uncited claim or a
    quote that is not in the article."""
    from qa import Answer

    answer = korean
    assert isinstance(answer, Answer) and answer.question == KOREAN  # kept as typed
    source = SEED.read_text()
    markers = {int(n) for n in re.findall(r"\[(\d+)\]", answer.text)}
    assert markers == {c.number for c in answer.citations}, answer  # no marker without a source
    assert all(source[c.start : c.end] == c.quote for c in answer.citations), answer.citations
    refusal = answer.abstained and answer.text.startswith(ABSTAIN_TEXT)
    cited = not answer.abstained and bool(answer.citations)
    assert refusal != cited, answer  # exactly one of the two, nothing else
    if cited:  # every sentence of the answer carries its marker
        sentences = [s for s in re.split(r"(?<=[.!?])\s+(?=[A-Z])", answer.text) if s.strip()]
        assert all(re.search(r"\[\d+\]", s) for s in sentences), answer.text


@pytest.mark.xfail(
    strict=True,
    reason="known miss: the Korean question is answered with the eastern-coast sentence "
    "('North Korea fired two short-range ballistic missiles off its eastern coast ... [1]'), "
    "not the Sunan one, and the judge lets it through",
)
def test_a_korean_question_answered_cites_the_sentence_that_answers_it(korean):
    """An answer (not a refusal) to it cites the Sunan sentence: the judge's quality on a
    question in another language."""
    assert korean.abstained or any("Sunan" in c.quote for c in korean.citations), korean


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
    assert report.added == report.passages == 20  # the seed indexed whole: 20 passages
    answer = pipeline.ask(question)
    assert not answer.abstained and "Sunan" in answer.text, answer.text
    _check_citations(answer)


# --- model files -----------------------------------------------------------------------------
def test_truncated_or_damaged_model_file_is_rebuilt_from_the_parts(tmp_path):
    from qa.engine import start_local_engine
    from qa.judge_files import judge_for, load_judges
    from qa.llm import connect
    from qa.model_identity import identify
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
        # ... and is the model the fast judge was fitted on: that judge is picked for it.
        identity = identify(llm)
        assert identity.sha256 == spec.sha256 and identity.name == spec.name
        picked = judge_for(load_judges(config), identity)
        assert picked is not None and picked[1].name == "qwen2.5-coder-0.5b-instruct.json"
        llm.close()
    finally:
        engine.close()

"""The question-answering pipeline: prepare, retrieve, plan, draft, verify, judge, render.

One :class:`Pipeline` per process holds the models and a snapshot of the index; it is
created on first use by :func:`get_pipeline` and reused. Each stage is a module of its
own and hands typed data to the next (``ask_stream`` reads as that list):
:mod:`qa.prepare` -> :mod:`qa.retrieval` -> :mod:`qa.context` -> :mod:`qa.draft` ->
:mod:`qa.citations` (verify) -> :mod:`qa.judge` (the only place that decides to answer,
refuse or correct) -> :mod:`qa.render`. Questions are answered concurrently: the model is
a llama.cpp server (in-process or remote) that batches requests over its slots, and the
index snapshot is swapped only between answers (:class:`SnapshotGuard`), so no answer
mixes two generations of the index.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Generator, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, replace

import numpy as np

from index.ingest import ingest
from index.store import open_store, vector_store
from qa import answerability
from qa.answerability import JudgeModels
from qa.citations import Verified, Verifier
from qa.config import Config
from qa.context import ContextPlan, plan_context, whole_corpus_fits
from qa.draft import Draft, Drafter
from qa.engine import LocalEngine, start_local_engine
from qa.errors import IndexMissingError, QAError
from qa.judge import Judge
from qa.kinds import Kind
from qa.llm import LLMClient, connect, model_label
from qa.prepare import PreparedQuestion, prepare
from qa.prompts import abstain_text, answer_messages, document_title, rewrite_messages
from qa.questions import History, clean_question, normalise_history
from qa.render import render
from qa.retrieval import HybridRetriever, Retrieved
from qa.support import SourceSentence, sentences_in, source_sentences
from qa.types import Answer, Delta, Passage


@dataclass
class IndexSnapshot:
    """The passages this process answers from, as of one manifest generation."""

    generation: int
    retriever: HybridRetriever
    passages: list[Passage]  # every passage, in document order
    sentences: list[SourceSentence]
    docs: dict[str, int]  # doc name -> passage count
    judge: Judge

    @property
    def abstain(self) -> str:
        """The refusal's wording: "The article does not say." / "The documents do not say." """
        return abstain_text(len(self.docs))


class SnapshotGuard:
    """Many answers at once, or one index swap: a readers-writer lock.

    Answers hold a read share while they run; a refresh that has a new snapshot to put
    in place waits for the answers in flight to finish (new ones wait behind it), so an
    answer never reads passages from one generation and sentences from another. Not
    tied to threads: a streaming answer may be resumed on another worker thread.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._writing = False

    @contextmanager
    def reading(self) -> Iterator[None]:
        with self._cond:
            self._cond.wait_for(lambda: not self._writing)
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                self._cond.notify_all()

    @contextmanager
    def writing(self) -> Iterator[None]:
        with self._cond:
            self._cond.wait_for(lambda: not self._writing)
            self._writing = True
            self._cond.wait_for(lambda: self._readers == 0)
        try:
            yield
        finally:
            with self._cond:
                self._writing = False
                self._cond.notify_all()


class Pipeline:
    """Models plus index snapshot; ``ask``/``ask_stream`` may run on many threads at once."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.model_name = model_label(config)
        self._guard = SnapshotGuard()
        self._refreshing = threading.Lock()
        self._vectors: dict[str, np.ndarray] = {}
        self._vectors_lock = threading.Lock()
        self.engine: LocalEngine | None = None
        self._stale = False  # a reload failed: the snapshot's database handle may be dead
        # The judge's fitted models first: a missing or broken file stops start-up here,
        # with a clear message, before seconds go into loading anything else.
        self._judge_models = load_judge_models(config)
        self.store = open_store(config)
        # Checking and loading the LLM (hashing, reading 1 GB) mostly runs outside the GIL:
        # do it while this thread loads the embedder and the index.
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="qa-load-llm") as pool:
            pending = pool.submit(self._connect)
            from index.embed import load_embedder

            self._embedder = load_embedder(config.embed_model, config.model_cache_dir)
            self.llm: LLMClient = pending.result()
        # A server without log-probabilities is judged by the model fitted without them.
        self.answerability = (
            self._judge_models.for_server(self.llm.llama_cpp) if self._judge_models else None
        )
        self.index = self._load_index()
        self.disabled = self.llm.missing
        self.drafter = Drafter(self.llm, config)
        self.prefix_state = self._warm()

    def _connect(self) -> LLMClient:
        """The model server's client; the in-process engine first unless one is configured."""
        if not self.config.uses_openai_server:
            self.engine = start_local_engine(self.config)
        return connect(self.config, self.engine.url if self.engine else None)

    def close(self) -> None:
        """Stop the in-process engine and close the client (the process may go on)."""
        self.llm.close()
        if self.engine is not None:
            self.engine.close()

    # --- index ------------------------------------------------------------------------
    def _load_index(self) -> IndexSnapshot:
        config = self.config
        store = self.store
        try:
            collection = store.collection(config.collection, config.embed_model, create=False)
        except IndexMissingError:
            if not config.seeds_dir.exists():
                raise
            ingest(config.seeds_dir, config)  # first use: build the index from the seeds
            collection = store.collection(config.collection, config.embed_model, create=False)
        manifest = store.read_manifest()
        vectors = vector_store(collection)
        try:
            nodes = vectors.get_nodes(None)
        except Exception as exc:
            raise store.failure(exc) from exc
        if not nodes:
            raise IndexMissingError(f"the index on {store.where} is empty; run `qa ingest`")
        retriever = HybridRetriever(vectors, self._embedder, nodes, config.top_k)
        passages = sorted(retriever.passages.values(), key=lambda p: (p.doc, p.position))
        docs: dict[str, int] = {}
        for passage in passages:
            docs[passage.doc] = docs.get(passage.doc, 0) + 1
        sentences = source_sentences(passages)  # embedded lazily: a big corpus loads fast
        judge = Judge(
            config,
            self.answerability,
            sentences,
            self.similarity,
            self._yes_probability,
            abstain_text(len(docs)),
        )
        generation = manifest.generation if manifest else 0
        return IndexSnapshot(generation, retriever, passages, sentences, docs, judge)

    def refresh(self) -> None:
        """Pick up a newer ingest; rebuild from the seeds if the store vanished.

        A reload that failed (say, the store was damaged) leaves the snapshot stale: every
        later call retries it, reporting the same clear error, until it succeeds (after
        ``qa ingest --rebuild``), instead of querying a dead database handle.
        """
        store = self.store
        with self._refreshing:
            if not self._stale and store.writer_active():
                return  # another process is writing: keep answering from our snapshot
            manifest = store.read_manifest()
            if manifest is None or self._stale:
                store.forget_handles()  # the old database handle is stale
            elif manifest.generation == self.index.generation:
                return
            self._stale = True
            index = self._load_index()
            with self._guard.writing():  # answers in flight finish on the old snapshot
                self.index = index
                self._stale = False
                self.prefix_state = self._warm()

    def _warm(self) -> str:
        """Load (or compute once) the model state for the stable part of the prompt.

        That is everything before the question when the whole corpus fits the prompt, and
        the rules with their examples otherwise (the evidence then changes per question).
        """
        if not self.llm.llama_cpp:
            return "skipped"  # another kind of server: it caches prompts as it does
        if whole_corpus_fits(self.index.passages, self.config):
            marker = "\x00QUESTION\x00"
            prompt = self.llm.render(
                answer_messages(self.index.passages, marker, self.index.abstain)
            )
            prefix = prompt.split(marker)[0]
        else:
            prefix = self._rules_prefix()
        return self.llm.warm(prefix)

    def _rules_prefix(self) -> str:
        """The prompt text every question shares when evidence is chosen per question.

        Found as the common start of two prompts with different evidence, cut back to a
        line end so it tokenizes exactly as it does inside a full prompt.
        """
        first = self.index.passages[0]
        a, b = (
            self.llm.render(
                answer_messages([replace(first, doc=doc, text=doc)], "?", self.index.abstain)
            )
            for doc in ("a", "b")
        )
        common = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), 0)
        return a[: a.rfind("\n", 0, common) + 1]

    # --- similarity for verification ---------------------------------------------------
    def _embed(self, texts: list[str]) -> dict[str, np.ndarray]:
        """Unit vectors of ``texts``, from a bounded cache shared by concurrent answers."""
        with self._vectors_lock:
            found = {t: self._vectors[t] for t in texts if t in self._vectors}
        missing = [t for t in dict.fromkeys(texts) if t not in found]
        if missing:
            vectors = self._embedder.get_text_embedding_batch(missing)
            with self._vectors_lock:
                if len(self._vectors) + len(missing) > 20_000:  # ~30 MB: start over
                    self._vectors.clear()
                for text, vector in zip(missing, vectors, strict=True):
                    array = np.asarray(vector, dtype=np.float32)
                    found[text] = self._vectors[text] = array / (np.linalg.norm(array) or 1.0)
        return found

    def similarity(self, a: str, b: str) -> float:
        """Cosine similarity of two texts' embeddings (cached)."""
        vectors = self._embed([a, b])
        return float(vectors[a] @ vectors[b])

    # --- the model's Yes/No probes, for the judge ---------------------------------------
    def _yes_probability(self, messages: list) -> float | None:
        """The model's P("Yes") as the reply's first token (None without log-probabilities)."""
        if not self.llm.llama_cpp:
            return None
        return self.llm.yes_probability(messages)

    # --- answering ------------------------------------------------------------------
    def ask(self, question: str, history: History | None = None) -> Answer:
        """Answer ``question`` (and return the typed result)."""
        answer = None
        for item in self.ask_stream(question, history):
            if isinstance(item, Answer):
                answer = item
        assert answer is not None
        return answer

    def ask_stream(self, question: str, history: History | None = None) -> Iterator[Delta | Answer]:
        """Yield :class:`Delta` pieces while the model writes, then the final :class:`Answer`.

        The stages, in order: prepare the question, retrieve, let the judge screen it
        (refusing before any model call when there is nothing to ask), plan the context,
        draft and verify each attempt until one answer verifies, judge, render.
        """
        clock = Stopwatch()
        text = clean_question(question, self.config.max_question_chars)
        turns = normalise_history(history, self.config.history_turns)
        self.refresh()
        with self._guard.reading():
            snapshot = self.index
            prepared = prepare(text, turns, self._rewriter(snapshot))
            clock.lap("prepare")
            retrieved = self._retrieve(snapshot, prepared)
            clock.lap("retrieve")
            judgement = snapshot.judge.screen(prepared, retrieved)
            verified, raw = None, []
            if judgement is None:
                plan = plan_context(
                    prepared, retrieved, snapshot.passages, self.similarity, self.config,
                    can_calculate=self.llm.llama_cpp,
                )  # fmt: skip
                drafted = yield from self._draft_and_verify(snapshot, prepared, plan, clock, raw)
                verified = drafted.verified
                judgement = snapshot.judge.decide(
                    prepared, retrieved, verified, drafted.draft, drafted.earlier
                )
                clock.lap("judge")
                if drafted.detoured:  # the warmed prefix back where the detour ran
                    self.llm.refill_idle_slots()
            clock.timings["total"] = clock.elapsed()
            answer = render(
                prepared, retrieved, verified, judgement, raw_text="".join(raw),
                model=self.model_name, disabled=self.disabled, timings=clock.timings,
            )  # fmt: skip
            if answer.abstained and "first_token" not in answer.timings:
                yield Delta(answer.text)  # nothing was streamed: show the refusal as it is
            yield answer

    def _rewriter(self, snapshot: IndexSnapshot):
        """Rewrites a follow-up into a standalone question, reading the whole corpus prompt."""

        def rewrite(turns: Sequence[tuple[str, str]], question: str) -> str:
            messages = rewrite_messages(snapshot.passages, turns, question, snapshot.abstain)
            return self.drafter.complete_line(messages)

        return rewrite

    def _retrieve(self, snapshot: IndexSnapshot, question: PreparedQuestion) -> Retrieved:
        """The question's passages, best first."""
        depth = self.config.top_k + (2 if question.kind in (Kind.SUMMARY, Kind.LIST) else 0)
        try:
            return snapshot.retriever.retrieve(question.standalone, top_k=depth)
        except QAError:
            raise
        except Exception as exc:  # the store (or its server) failed under us
            self._stale = True  # reload on the next question, once it is back
            raise self.store.failure(exc) from exc

    def _draft_and_verify(
        self,
        snapshot: IndexSnapshot,
        question: PreparedQuestion,
        plan: ContextPlan,
        clock: Stopwatch,
        raw: list[str],
    ) -> Generator[Delta, None, Drafted]:
        """Draft each attempt of ``plan`` and verify it, until one answer verifies.

        Yields the model's text as it streams (``raw`` collects it); returns the first
        verified answer, else the first plain attempt's (declined) result. A second look
        after a refusal is taken only when the judge finds that refusal unsure.
        """
        result: Drafted | None = None
        verifying = 0.0
        detoured = False
        for number, attempt in enumerate(plan.attempts):
            if result is not None and not snapshot.judge.worth_second_look(result.draft):
                break
            if number:
                raw.append("\n\n")
                yield Delta("\n\n")
            draft = self.drafter.draft(
                attempt, question.standalone, question.kind, snapshot.abstain
            )
            drafted = yield from _relay(draft, clock, raw)
            mark = time.perf_counter()
            verifier = self._verifier(snapshot, question.standalone, attempt.context)
            verified = verifier.verify(drafted.text)
            verifying += time.perf_counter() - mark
            detoured |= attempt.context != plan.attempts[0].context
            if verified.answered:
                earlier = result.draft if result is not None else None
                result = Drafted(verified, drafted, earlier)
                break
            if result is None and not attempt.calculation:
                result = Drafted(verified, drafted)
        clock.lap("generate")
        clock.timings["verify"] = verifying
        assert result is not None  # every plan has a plain attempt
        return replace(result, detoured=detoured)

    def _verifier(
        self, snapshot: IndexSnapshot, question: str, context: Sequence[Passage]
    ) -> Verifier:
        """Checks a draft's sentences against ``context`` (numbered as the model saw it)."""
        config = self.config
        return Verifier(
            question=question,
            context=context,
            sentences=sentences_in(snapshot.sentences, context),
            threshold=config.support_threshold,
            min_qa_similarity=config.min_qa_similarity,
            similarity=self.similarity,
            abstain=snapshot.abstain,
            document_titles=frozenset(document_title(d) for d in snapshot.docs),
        )


@dataclass(frozen=True)
class Drafted:
    """The draft that the judge decides on, verified, and whether a detour was taken."""

    verified: Verified
    draft: Draft
    earlier: Draft | None = None  # the refused draft a second look followed
    detoured: bool = False  # an attempt read another prompt than the warmed one: refill


class Stopwatch:
    """Seconds per stage of one answer: ``lap(name)`` records the time since the last lap."""

    def __init__(self) -> None:
        self.started = self._last = time.perf_counter()
        self.timings: dict[str, float] = {}

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.timings[name] = now - self._last
        self._last = now


def _relay(
    draft: Generator[Delta, None, Draft], clock: Stopwatch, raw: list[str]
) -> Generator[Delta, None, Draft]:
    """Pass the draft's text on as it streams, noting it and the first token's time."""
    try:
        while True:
            delta = next(draft)
            raw.append(delta.text)
            clock.timings.setdefault("first_token", clock.elapsed())
            yield delta
    except StopIteration as done:
        return done.value
    finally:
        draft.close()


def load_judge_models(config: Config) -> JudgeModels | None:
    """The judge's fitted models (a clear error when missing), or None while collecting.

    ``QA_ANSWERABILITY=0`` is for ``qa calibrate --collect`` only: the judge then reports
    its signals and decides nothing.
    """
    return JudgeModels.load(answerability.WEIGHTS_FILE) if config.answerability else None


_PIPELINES: dict[Config, Pipeline] = {}
_PIPELINES_LOCK = threading.Lock()
MAX_PIPELINES = 2


def get_pipeline(config: Config) -> Pipeline:
    """The process-wide pipeline for ``config`` (models and index load once).

    At most :data:`MAX_PIPELINES` are kept; the least recently used one beyond that is
    closed (its engine stopped), so a process that switches configs does not pile up models.
    """
    with _PIPELINES_LOCK:
        pipeline = _PIPELINES.pop(config, None) or Pipeline(config)
        _PIPELINES[config] = pipeline  # most recently used last
        while len(_PIPELINES) > MAX_PIPELINES:
            _PIPELINES.pop(next(iter(_PIPELINES))).close()
        return pipeline


def close_pipelines() -> None:
    """Close every pipeline this process holds (tests and benchmarks between workloads)."""
    with _PIPELINES_LOCK:
        while _PIPELINES:
            _PIPELINES.popitem()[1].close()


def ask(question: str, *, history: History | None = None, config: Config | None = None) -> Answer:
    """Answer a question about the ingested documents, with verified citations."""
    config = config or Config.from_env()
    clean_question(question, config.max_question_chars)  # fail fast, before loading models
    return get_pipeline(config).ask(question, history)


def ask_stream(
    question: str, *, history: History | None = None, config: Config | None = None
) -> Iterator[Delta | Answer]:
    """Like :func:`ask`, but yields text pieces as they are generated, then the Answer."""
    config = config or Config.from_env()
    clean_question(question, config.max_question_chars)  # fail fast, before loading models
    return get_pipeline(config).ask_stream(question, history)

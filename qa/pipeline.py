"""The question-answering pipeline: prepare, retrieve, plan, draft, verify, judge, render.

:func:`build_pipeline` wires a :class:`Pipeline` from its parts — the model server's
client (:mod:`qa.llm`, the in-process engine of :mod:`qa.engine` or a remote server), the
index snapshots (:mod:`qa.snapshot`, each with its :class:`~qa.citations.Verifier`),
embedding similarity (:mod:`qa.similarity`) and the one :class:`~qa.judge.Judge` with the
fitted models for that model — and :class:`Pipeline` only runs the stages, each handing
typed data to the next (``_answer`` reads as that list): :func:`qa.prepare.prepare` ->
retrieval (:mod:`qa.retrieval`) -> the judge's screen -> :class:`~qa.context.ContextPlanner`
-> :class:`~qa.draft.DraftWriter` -> the snapshot's verifier -> the judge's decision (the
only place that decides to answer, refuse or correct, and what is shown) ->
:func:`qa.render.render`. Each stage holds its own few settings, not the whole Config.
Its constructor does no I/O, so tests build it from stand-in parts. Questions are
answered concurrently: the model is a llama.cpp server that batches requests over its
slots, and the index snapshot is swapped only between answers, so no answer mixes two
generations of the index.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Generator, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

from index.stores import open_store
from qa.answerability import JudgeModels
from qa.citations import Verified
from qa.config import Config
from qa.context import ContextPlan, ContextPlanner, whole_corpus_fits
from qa.draft import Draft, DraftWriter
from qa.engine import LocalEngine, start_local_engine
from qa.errors import GenerationRemovedError, LLMError, QAError
from qa.judge import Case, Judge, JudgeSettings
from qa.judge_files import Judges, judge_for, load_judges
from qa.language import Kind
from qa.llm import LLMClient, connect, metered, model_label, shared_start
from qa.model_identity import identify
from qa.prepare import PreparedQuestion, prepare
from qa.prompts import answer_messages, rewrite_messages
from qa.render import render
from qa.retrieval import Retrieved
from qa.similarity import EmbeddingSimilarity
from qa.snapshot import READ_ATTEMPTS, Indexes, IndexSnapshot, SnapshotGuard, StoreIndexes
from qa.types import Answer, Delta
from qa.user_input import History, clean_question, normalise_history

log = logging.getLogger(__name__)

__all__ = [
    "IndexSnapshot",
    "Pipeline",
    "SnapshotGuard",
    "ask",
    "ask_stream",
    "build_pipeline",
    "get_pipeline",
]

Similarity = Callable[[str, str], float]


class Pipeline:
    """Runs the stages over its parts; ``ask``/``ask_stream`` may run on many threads at once.

    ``llm`` is the model server's client (:class:`qa.llm.LLMClient` or anything with its
    methods), ``indexes`` where snapshots come from (each with its verifier), ``similarity``
    the embedding cosine context planning uses, ``judge`` the one that decides every answer.
    ``resources`` are closed with the pipeline (the engine it started).
    """

    def __init__(
        self,
        config: Config,
        llm: Any,
        indexes: Indexes,
        similarity: Similarity,
        judge: Judge,
        *,
        model_name: str = "",
        judged_by: str = "",
        resources: Sequence[Any] = (),
    ) -> None:
        self.config = config
        self.llm = llm
        self.indexes = indexes
        self.judge = judge
        self.model_name = model_name
        self.judged_by = judged_by  # which judge file, or why answers are unchecked
        self.disabled: list[str] = list(llm.missing)
        self.planner = ContextPlanner.of(config, similarity, can_calculate=llm.llama_cpp)
        self.writer = DraftWriter(llm, config.max_new_tokens, config.max_working_chars)
        self.prefix_state = "skipped"
        self._warming = threading.Lock()  # held while the slots read a new prompt prefix
        self._resources = list(resources)
        self._in_flight = 0
        self._retired = False
        self._flight = threading.Lock()

    # --- parts ------------------------------------------------------------------------
    @property
    def index(self) -> IndexSnapshot:
        """The snapshot new answers read."""
        return self.indexes.current

    @property
    def store(self) -> Any:
        """The store the snapshots come from (None for a fixed snapshot)."""
        return getattr(self.indexes, "store", None)

    @property
    def engine(self) -> LocalEngine | None:
        """The in-process engine this pipeline started, if it started one."""
        return next((r for r in self._resources if isinstance(r, LocalEngine)), None)

    def refresh(self, *, wait: bool = True) -> bool:
        """Pick up a newer ingest, and put the new prompt prefix into the engine's slots.

        True when a new index was swapped in. With ``wait=False`` the slots read the new
        prefix on a thread of their own (an upload's status need not wait for it); a
        question asked meanwhile waits for that reading instead of doing it again in
        another slot. A warm-up that fails (the model server busy or away) does not undo
        the new index: the first question that needs the prefix then reads it.
        """
        # Taken before the swap, so no question can start between the new index and the
        # reading of its prefix without waiting for that reading.
        self._warming.acquire()
        try:
            swapped = self.indexes.refresh()
        except BaseException:
            self._warming.release()
            raise
        if not swapped:
            self._warming.release()
            return False
        if wait:
            self._warm_new_prefix()
        else:
            threading.Thread(target=self._warm_new_prefix, name="qa-warm", daemon=True).start()
        return True

    def _warm_new_prefix(self) -> None:
        """Warm the current index's prefix; releases ``_warming``, which the caller took."""
        try:
            self.prefix_state = self.warm()
        except LLMError as exc:
            log.warning("the new index's prompt prefix was not warmed: %s", exc)
            self.prefix_state = "failed"
        finally:
            self._warming.release()

    def close(self) -> None:
        """Close the client and stop the in-process engine, once no answer is in flight.

        An answer still streaming keeps them until it ends (the registry may retire a
        pipeline that another thread is answering with).
        """
        with self._flight:
            self._retired = True
            if self._in_flight:
                return
        self._release()

    def _release(self) -> None:
        self.llm.close()
        for resource in self._resources:
            resource.close()

    # --- the stable prompt prefix ------------------------------------------------------
    def warm(self) -> str:
        """Load (or compute once) the model state for the stable part of the prompt.

        That is everything before the question when the whole corpus fits the prompt, and
        the rules with their examples otherwise (the evidence then changes per question).
        """
        if not self.llm.llama_cpp:
            return "skipped"  # another kind of server: it caches prompts as it does
        if whole_corpus_fits(self.index.passages, self.config.context_char_budget):
            marker = "\x00QUESTION\x00"
            prompt = self.llm.render(answer_messages(self.index.passages, marker))
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
            self.llm.render(answer_messages([replace(first, doc=doc, text=doc)], "?"))
            for doc in ("a", "b")
        )
        common = shared_start(a, b)
        return a[: a.rfind("\n", 0, common) + 1]

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
        with self._flight:
            if self._retired and not self._in_flight:
                raise QAError("this pipeline was closed; ask through get_pipeline() again")
            self._in_flight += 1
        try:
            for attempt in range(READ_ATTEMPTS):
                self.refresh()  # waits for a prefix being read on another thread
                shown = False
                try:
                    for item in self._answer(text, turns, clock):
                        shown = True
                        yield item
                    break
                except GenerationRemovedError:
                    # The generation this answer read was removed by a later ingest before
                    # anything was shown: answer again from the newest one.
                    if shown or attempt + 1 == READ_ATTEMPTS:
                        raise
        finally:
            with self._flight:
                self._in_flight -= 1
                release = self._retired and not self._in_flight
            if release:
                self._release()

    def _answer(
        self, text: str, turns: list[tuple[str, str]], clock: Stopwatch
    ) -> Iterator[Delta | Answer]:
        with self.indexes.reading() as snapshot, metered() as usage:
            prepared = prepare(text, turns, self._rewriter(snapshot))
            clock.lap("prepare")
            retrieved = self._retrieve(snapshot, prepared)
            clock.lap("retrieve")
            judgement = self.judge.screen(prepared, retrieved)
            verified, raw = None, []
            if judgement is None:
                plan = self.planner.run(prepared, retrieved, snapshot.passages)
                best = yield from self._draft_and_verify(snapshot, prepared, plan, clock, raw)
                verified = best.verified
                case = Case(
                    snapshot.checker, prepared, retrieved, verified, best.draft, best.earlier
                )
                judgement = self.judge.decide(case)
                clock.lap("judge")
                if best.left_warm_prefix:  # put the warmed prefix back where another was read
                    self.llm.refill_idle_slots()
            clock.timings["total"] = clock.elapsed()
            answer = render(
                prepared, retrieved, verified, judgement, raw_text="".join(raw),
                model=self.model_name, disabled=self.disabled, timings=clock.timings,
            )  # fmt: skip
            answer = replace(answer, engine=usage)
            if answer.abstained and "first_token" not in answer.timings:
                yield Delta(answer.text)  # nothing was streamed: show the refusal as it is
            yield answer

    def _rewriter(self, snapshot: IndexSnapshot):
        """Rewrites a follow-up into a standalone question, reading the whole corpus prompt."""

        def rewrite(turns: Sequence[tuple[str, str]], question: str) -> str:
            messages = rewrite_messages(snapshot.passages, turns, question)
            return self.writer.complete_line(messages)

        return rewrite

    def _retrieve(self, snapshot: IndexSnapshot, question: PreparedQuestion) -> Retrieved:
        """The question's passages, best first."""
        depth = self.config.top_k + (2 if question.kind in (Kind.SUMMARY, Kind.LIST) else 0)
        return self.indexes.retrieve(snapshot, question.standalone, depth)

    def _draft_and_verify(
        self,
        snapshot: IndexSnapshot,
        question: PreparedQuestion,
        plan: ContextPlan,
        clock: Stopwatch,
        raw: list[str],
    ) -> Generator[Delta, None, VerifiedDraft]:
        """Draft each attempt of ``plan`` and verify it, until one answer verifies.

        Yields the model's text as it streams (``raw`` collects it); returns the first
        verified answer, else the first plain attempt's (declined) result. A second look
        after a refusal is taken only when the judge finds that refusal unsure.
        """
        result: VerifiedDraft | None = None
        verifying = 0.0
        left_warm_prefix = False
        for number, attempt in enumerate(plan.attempts):
            if result is not None and not self.judge.worth_second_look(result.draft):
                break
            if number:
                raw.append("\n\n")
                yield Delta("\n\n")
            started = time.perf_counter()
            draft = self.writer.run(attempt, question.standalone, question.kind)
            written = yield from _relay(draft, clock, raw)
            mark = time.perf_counter()
            verified = snapshot.verifier.verify(question.standalone, attempt.context, written.text)
            verifying += time.perf_counter() - mark
            # Each attempt's seconds (drafting and verifying) under the pass it is:
            # "calculation", "draft" (the plain attempt) or "second_look".
            name = "calculation" if attempt.calculation else "second_look" if result else "draft"
            clock.timings[name] = clock.timings.get(name, 0.0) + time.perf_counter() - started
            left_warm_prefix |= attempt.context != plan.attempts[0].context
            if verified.answered:
                earlier = result.draft if result is not None else None
                result = VerifiedDraft(verified, written, earlier)
                break
            if result is None and not attempt.calculation:
                result = VerifiedDraft(verified, written)
        clock.lap("generate")
        clock.timings["verify"] = verifying
        assert result is not None  # every plan has a plain attempt
        return replace(result, left_warm_prefix=left_warm_prefix)


@dataclass(frozen=True)
class VerifiedDraft:
    """The draft the judge decides on, with what the verifier found in it."""

    verified: Verified
    draft: Draft
    earlier: Draft | None = None  # the refused draft a second look followed
    left_warm_prefix: bool = False  # an attempt read another prompt than the warmed one: refill


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


def pick_judge(config: Config, judges: Judges, llm: LLMClient) -> tuple[JudgeModels | None, str]:
    """The judge fitted for the model behind ``llm``, and a line saying which (or why none).

    None while collecting (``QA_ANSWERABILITY=0``, for ``qa calibrate --collect`` only:
    the judge then reports its signals and decides nothing) and for a model no judge is
    fitted for: its answers are labelled unchecked, with one warning at start.
    """
    if not config.answerability:
        return None, "collecting signals: no judge"
    identity = identify(llm)
    found = judge_for(judges, identity)
    if found is None:
        line = (
            f"no judge is fitted for {identity.name}: its answers are labelled unchecked "
            "(fit one: `qa calibrate --collect` with the same model options)"
        )
        log.warning("%s", line)
        return None, line
    models, path = found
    return models, f"judge fitted for {identity.name} ({path.name})"


def build_pipeline(config: Config) -> Pipeline:
    """Load every part for ``config`` and wire the pipeline (the only place with I/O).

    Order: the judges on offer first (a broken judge file stops start-up before seconds
    go into anything else); then the model server — the in-process engine is started on
    a second thread, since checking and loading 1 GB mostly runs outside the GIL — while
    this thread loads the embedder; then the judge fitted for that model; then the index;
    then the stable prompt prefix goes into the engine's slots.
    """
    from index.embed import load_embedder

    judges = load_judges(config) if config.answerability else []
    store = open_store(config)
    engines: list[LocalEngine] = []

    def connect_model() -> LLMClient:
        if not config.uses_openai_server:
            engines.append(start_local_engine(config))
        return connect(config, engines[0].url if engines else None)

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="qa-load-llm") as pool:
        pending = pool.submit(connect_model)
        embedder = load_embedder(config.embed_model, config.model_cache_dir)
        llm = pending.result()
    try:
        judge_models, judged_by = pick_judge(config, judges, llm)
        # A server without log-probabilities is judged by the model fitted without them.
        policy = judge_models.for_server(llm.logprobs) if judge_models else None
        similarity = EmbeddingSimilarity(embedder)
        judge = Judge(JudgeSettings.of(config), policy, similarity, llm.yes_probability)
        indexes = StoreIndexes(config, store, embedder, similarity)
        indexes.load()
        pipeline = Pipeline(
            config,
            llm,
            indexes,
            similarity,
            judge,
            model_name=model_label(config),
            judged_by=judged_by,
            resources=engines,
        )
        pipeline.prefix_state = pipeline.warm()
    except BaseException:
        llm.close()
        for engine in engines:
            engine.close()
        raise
    return pipeline


_PIPELINES: dict[Config, Pipeline] = {}
_PIPELINES_LOCK = threading.Lock()
MAX_PIPELINES = 2


def get_pipeline(config: Config) -> Pipeline:
    """The process-wide pipeline for ``config`` (models and index load once).

    At most :data:`MAX_PIPELINES` are kept; the least recently used one beyond that is
    retired: it closes (its engine stops) once the answers it is giving have ended.
    """
    with _PIPELINES_LOCK:
        pipeline = _PIPELINES.pop(config, None) or build_pipeline(config)
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

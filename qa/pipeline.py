"""The question-answering pipeline: retrieve, generate, verify, abstain.

One :class:`Pipeline` per process holds the models and a snapshot of the index; it is
created on first use by :func:`get_pipeline` and reused. The local LLM is not
thread-safe, so requests are serialised by a lock (callers queue, nothing crashes).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Generator, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from index.ingest import ingest
from index.store import IN_PROGRESS, Manifest, open_collection, vector_store
from qa.calculate import calculated_claim, needs_calculation
from qa.citations import Verified, Verifier
from qa.config import Config
from qa.errors import IndexCorruptError, IndexMissingError, LLMError, QAError
from qa.llm import load_llm, model_label, supports_prefill, warm_prefix
from qa.prompts import ABSTAIN_TEXT, CALCULATION_LEAD, answer_messages, rewrite_messages
from qa.questions import (
    History,
    as_direct_question,
    clean_question,
    clean_rewrite,
    needs_rewrite,
    normalise_history,
    split_instructions,
)
from qa.retrieval import HybridRetriever, Retrieved
from qa.support import SourceSentence, source_sentences
from qa.types import Answer, Delta, Passage


@dataclass
class IndexSnapshot:
    """The passages this process answers from, as of one manifest generation."""

    generation: int
    retriever: HybridRetriever
    passages: list[Passage]  # every passage, in document order
    sentences: list[SourceSentence]
    docs: dict[str, int]  # doc name -> passage count


class Pipeline:
    """Models plus index snapshot; ``ask``/``ask_stream`` answer one question at a time.

    The lock is a plain ``threading.Lock`` (not tied to a thread) because a streaming
    generator may be resumed on another worker thread, as Gradio does.
    """

    def __init__(self, config: Config) -> None:
        self.config = config
        self.model_name = model_label(config)
        self._lock = threading.Lock()
        self._vectors: dict[str, np.ndarray] = {}
        self._stale = False  # a reload failed: the snapshot's database handle may be dead
        # Checking and loading the LLM (hashing, reading 1 GB) mostly runs outside the GIL:
        # do it while this thread imports torch and loads the embedder and the index.
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="qa-load-llm") as pool:
            pending_llm = pool.submit(load_llm, config)
            from index.embed import load_embedder  # imports torch: seconds

            self._embedder = load_embedder(config.embed_model)
            self.index = self._load_index()
            self.llm = pending_llm.result()
        self.prefix_state = self._warm()

    # --- index ------------------------------------------------------------------------
    def _load_index(self) -> IndexSnapshot:
        config = self.config
        try:
            collection = open_collection(
                config.store_dir, config.collection, config.embed_model, create=False
            )
        except IndexMissingError:
            if not config.seeds_dir.exists():
                raise
            ingest(config.seeds_dir, config)  # first use: build the index from the seeds
            collection = open_collection(
                config.store_dir, config.collection, config.embed_model, create=False
            )
        manifest = Manifest.read(config.store_dir)
        store = vector_store(collection)
        try:
            nodes = store.get_nodes(None)
        except Exception as exc:
            raise IndexCorruptError(
                f"the store at {config.store_dir} cannot be read ({exc}); "
                "rebuild it: `qa ingest --rebuild`"
            ) from exc
        if not nodes:
            raise IndexMissingError(f"the index at {config.store_dir} is empty; run `qa ingest`")
        retriever = HybridRetriever(store, self._embedder, nodes, config.top_k)
        passages = sorted(retriever.passages.values(), key=lambda p: (p.doc, p.position))
        docs: dict[str, int] = {}
        for passage in passages:
            docs[passage.doc] = docs.get(passage.doc, 0) + 1
        sentences = source_sentences(passages)
        self._embed([s.text for s in sentences])
        return IndexSnapshot(
            manifest.generation if manifest else 0, retriever, passages, sentences, docs
        )

    def refresh(self) -> None:
        """Pick up a newer ingest; rebuild from the seeds if the store vanished.

        A reload that failed (say, the store was damaged) leaves the snapshot stale: every
        later call retries it, reporting the same clear error, until it succeeds (after
        ``qa ingest --rebuild``), instead of querying a dead database handle.
        """
        store_dir = self.config.store_dir
        if not self._stale and (store_dir / IN_PROGRESS).exists():
            return  # another process is writing: keep answering from our snapshot
        manifest = Manifest.read(store_dir) if store_dir.exists() else None
        if manifest is None or self._stale:
            from chromadb.api.client import SharedSystemClient

            SharedSystemClient.clear_system_cache()  # the old database handle is stale
        elif manifest.generation == self.index.generation:
            return
        self._stale = True
        self.index = self._load_index()
        self._stale = False
        self.prefix_state = self._warm()

    def _warm(self) -> str:
        """Load (or compute once) the model state for the stable part of the prompt."""
        if not self._whole_corpus_fits():
            return "skipped"  # the prompt changes per question: nothing stable to keep
        marker = "\x00QUESTION\x00"
        prompt = self.llm.messages_to_prompt(answer_messages(self.index.passages, marker))
        prefix = prompt.split(marker)[0]
        return warm_prefix(self.llm, prefix, self.config.model_cache_dir)

    # --- similarity for verification ---------------------------------------------------
    def _embed(self, texts: list[str]) -> None:
        missing = [t for t in dict.fromkeys(texts) if t not in self._vectors]
        if missing:
            vectors = self._embedder.get_text_embedding_batch(missing)
            for text, vector in zip(missing, vectors, strict=True):
                array = np.asarray(vector, dtype=np.float32)
                self._vectors[text] = array / (np.linalg.norm(array) or 1.0)
        if len(self._vectors) > 5000:
            self._vectors.clear()

    def similarity(self, a: str, b: str) -> float:
        """Cosine similarity of two texts' embeddings (cached)."""
        self._embed([a, b])
        return float(self._vectors[a] @ self._vectors[b])

    # --- answering ------------------------------------------------------------------
    def context_for(self, retrieved: Retrieved) -> list[Passage]:
        """Passages to show the model, in document order.

        The whole corpus when it fits the budget (a stable prompt prefix), otherwise the
        retrieved passages.
        """
        if self._whole_corpus_fits():
            return self.index.passages
        chosen = {p.id for p in retrieved.passages}
        return [p for p in self.index.passages if p.id in chosen]

    def _whole_corpus_fits(self) -> bool:
        return sum(len(p.text) for p in self.index.passages) <= self.config.context_char_budget

    def ask(self, question: str, history: History | None = None) -> Answer:
        """Answer ``question`` (and return the typed result)."""
        answer = None
        for item in self.ask_stream(question, history):
            if isinstance(item, Answer):
                answer = item
        assert answer is not None
        return answer

    def ask_stream(self, question: str, history: History | None = None) -> Iterator[Delta | Answer]:
        """Yield :class:`Delta` pieces while the model writes, then the final :class:`Answer`."""
        config = self.config
        text = clean_question(question, config.max_question_chars)
        turns = normalise_history(history, config.history_turns)
        with self._lock:
            started = time.perf_counter()
            timings: dict[str, float] = {}
            self.refresh()
            standalone, instructed = split_instructions(text)
            standalone = as_direct_question(standalone)
            rewritten = standalone if instructed or standalone != text else None
            if instructed and not standalone:
                # Only instructions, no question about the documents: nothing to look up.
                yield from self._abstain_early(text, rewritten, timings, started)
                return
            if needs_rewrite(standalone, turns):
                messages = rewrite_messages(self.index.passages, turns, text)
                rewritten = standalone = clean_rewrite(self._complete_line(messages), standalone)
                timings["rewrite"] = time.perf_counter() - started

            mark = time.perf_counter()
            retrieved = self.index.retriever.retrieve(standalone)
            timings["retrieve"] = time.perf_counter() - mark
            if retrieved.max_dense < config.min_retrieval_score:
                # Nothing in the documents is even about this: no need to ask the model.
                yield from self._abstain_early(text, rewritten, timings, started, retrieved)
                return
            answer = Answer(
                question=text,
                text=ABSTAIN_TEXT,
                abstained=True,
                passages=retrieved.passages,
                rewritten_question=rewritten,
                model=self.model_name,
            )
            context = self.context_for(retrieved)
            context_ids = {p.id for p in context}
            verifier = Verifier(
                question=standalone,
                context=context,
                sentences=[s for s in self.index.sentences if s.passage.id in context_ids],
                threshold=config.support_threshold,
                min_qa_similarity=config.min_qa_similarity,
                similarity=self.similarity,
            )

            mark = time.perf_counter()
            raw, verified = yield from self._draft(context, standalone, verifier, timings, started)
            timings["generate"] = time.perf_counter() - mark

            mark = time.perf_counter()
            if retrieved.passages and retrieved.max_dense >= config.min_related_score:
                verified = verifier.add_related(verified, retrieved.passages[:2])
            timings["verify"] = time.perf_counter() - mark
            timings["total"] = time.perf_counter() - started
            answer.text, answer.citations = verified.text, verified.citations
            answer.abstained, answer.raw_text, answer.timings = verified.abstained, raw, timings
            answer.checks = verified.checks
            yield answer

    def _draft(
        self,
        context: list[Passage],
        question: str,
        verifier: Verifier,
        timings: dict[str, float],
        started: float,
    ) -> Generator[Delta, None, tuple[str, Verified]]:
        """Stream the model's answer; return its raw text and the verified answer.

        A question that asks for a total or a difference first gets a calculation (see
        :mod:`qa.calculate`); if that yields no checked result, the model answers plainly.
        """
        raw = ""

        def note(delta: str) -> Delta:
            nonlocal raw
            raw += delta
            timings.setdefault("first_token", time.perf_counter() - started)
            return Delta(delta)

        if needs_calculation(question) and supports_prefill(self.llm):
            for delta in self._calculate(context, question):
                yield note(delta)
            claim = calculated_claim(raw)
            verified = verifier.verify(claim) if claim else None
            if verified is not None and verified.citations:
                return raw, verified
            yield note("\n\n")
        working = len(raw)
        for delta in self._stream(answer_messages(context, question)):
            yield note(delta)
        return raw, verifier.verify(raw[working:])

    def _abstain_early(
        self,
        question: str,
        rewritten: str | None,
        timings: dict[str, float],
        started: float,
        retrieved: Retrieved | None = None,
    ) -> Iterator[Delta | Answer]:
        timings["total"] = time.perf_counter() - started
        yield Delta(ABSTAIN_TEXT)
        yield Answer(
            question=question,
            text=ABSTAIN_TEXT,
            abstained=True,
            passages=retrieved.passages if retrieved else [],
            timings=timings,
            rewritten_question=rewritten,
            model=self.model_name,
        )

    def _stream(self, messages: list) -> Iterator[str]:
        return self._generate(lambda: self.llm.stream_chat(messages))

    def _stream_text(self, prompt: str) -> Iterator[str]:
        """Continue a raw, already formatted prompt (one that starts the answer)."""
        return self._generate(lambda: self.llm.stream_complete(prompt, formatted=True))

    @staticmethod
    def _generate(start: Callable[[], Iterable]) -> Iterator[str]:
        try:
            for chunk in start():
                if chunk.delta:
                    yield chunk.delta
        except QAError:
            raise
        except Exception as exc:
            raise LLMError(f"the language model failed: {type(exc).__name__}: {exc}") from exc

    def _calculate(self, context: list[Passage], question: str) -> Iterator[str]:
        """The model's working for a total or difference: the figures, then the arithmetic.

        The answer is prefilled with a lead-in that makes the model copy the figures
        first (it otherwise repeats one of them as the answer); generation stops once a
        calculation is written out.
        """
        prompt = self.llm.messages_to_prompt(answer_messages(context, question))
        text = ""
        stream = self._stream_text(prompt + CALCULATION_LEAD)
        for delta in stream:
            text += delta
            yield delta
            done = "\n" in text.rsplit("=", 1)[-1] and calculated_claim(text)
            if done or len(text) > self.config.max_working_chars:
                break
        stream.close()

    def _complete_line(self, messages: list) -> str:
        """The model's first line of output; generation stops as soon as it is complete."""
        text = ""
        stream = self._stream(messages)
        for delta in stream:
            text += delta
            if "\n" in text.lstrip():
                break
        stream.close()
        return text.strip().split("\n")[0]


@lru_cache(maxsize=2)
def get_pipeline(config: Config) -> Pipeline:
    """The process-wide pipeline for ``config`` (models and index load once)."""
    return Pipeline(config)


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

"""The question-answering pipeline: retrieve, generate, verify, abstain.

One :class:`Pipeline` per process holds the models and a snapshot of the index; it is
created on first use by :func:`get_pipeline` and reused. Questions are answered
concurrently: the model is a llama.cpp server (in-process or remote) that batches
requests over its slots, and the index snapshot is swapped only between answers
(:class:`SnapshotGuard`), so no answer mixes two generations of the index.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, replace
from functools import lru_cache

import numpy as np

from index.ingest import ingest
from index.store import open_store, vector_store
from qa.answerability import (
    AnswerabilityChecker,
    AnswerabilityModel,
    Evidence,
    Verdict,
    window_text,
)
from qa.calculate import calculated_claim, needs_calculation, shown_calculation
from qa.citations import MARKER, Verified, Verifier
from qa.config import Config
from qa.engine import LocalEngine, start_local_engine
from qa.errors import IndexMissingError, LLMError, QAError
from qa.evidence import select_evidence
from qa.kinds import BROAD_KINDS, CHECKED_KINDS, Kind, classify
from qa.llm import LLMClient, Sampling, connect, model_label
from qa.polarity import agree
from qa.prompts import (
    CALCULATION_LEAD,
    abstain_text,
    answer_messages,
    document_title,
    polarity_messages,
    rewrite_messages,
    self_check_messages,
)
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
from qa.types import Answer, Citation, Delta, Passage


@dataclass
class IndexSnapshot:
    """The passages this process answers from, as of one manifest generation."""

    generation: int
    retriever: HybridRetriever
    passages: list[Passage]  # every passage, in document order
    sentences: list[SourceSentence]
    docs: dict[str, int]  # doc name -> passage count
    checker: AnswerabilityChecker


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
        self.answerability = load_answerability(config)
        self.store = open_store(config)
        # Checking and loading the LLM (hashing, reading 1 GB) mostly runs outside the GIL:
        # do it while this thread loads the embedder and the index.
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="qa-load-llm") as pool:
            pending = pool.submit(self._connect)
            from index.embed import load_embedder

            self._embedder = load_embedder(config.embed_model, config.model_cache_dir)
            self.index = self._load_index()
            self.llm: LLMClient = pending.result()
        self.disabled = self.llm.missing
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
        checker = AnswerabilityChecker(
            sentences, self.similarity, self.answerability, self._self_check
        )
        return IndexSnapshot(
            manifest.generation if manifest else 0, retriever, passages, sentences, docs, checker
        )

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
        if self._whole_corpus_fits():
            marker = "\x00QUESTION\x00"
            prompt = self.llm.render(answer_messages(self.index.passages, marker, self.abstain))
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
            self.llm.render(answer_messages([replace(first, doc=doc, text=doc)], "?", self.abstain))
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

    # --- answering ------------------------------------------------------------------
    def assess(self, question: str, claim: str, sentences: Iterable[SourceSentence]) -> Verdict:
        """Does the evidence state ``claim`` for exactly ``question``? (:mod:`qa.answerability`)"""
        return self.index.checker.assess(Evidence(question, list(sentences), claim))

    def _self_check(self, passage: str, question: str, claim: str) -> float | None:
        """The model's P("Yes") that ``passage`` states ``claim`` as the answer to ``question``."""
        return self._yes_probability(self_check_messages(passage, question, claim))

    def _yes_probability(self, messages: list) -> float | None:
        """The model's P("Yes") as the reply's first token (None without log-probabilities)."""
        if not self.llm.llama_cpp:
            return None
        return self.llm.yes_probability(messages)

    def sentences_of(self, passages: Iterable[Passage]) -> list[SourceSentence]:
        """The index's sentences inside ``passages`` (which may be cut to a few sentences)."""
        spans = {p.id: (p.start, p.end) for p in passages}
        return [
            s
            for s in self.index.sentences
            if s.passage.id in spans and spans[s.passage.id][0] <= s.start < spans[s.passage.id][1]
        ]

    def cited_sentences(self, citations: Iterable[Citation]) -> list[SourceSentence]:
        spans = [(c.passage_id, c.start, c.end) for c in citations]
        return [
            s
            for s in self.index.sentences
            if any(s.passage.id == pid and a <= s.start and s.end <= b for pid, a, b in spans)
        ]

    def context_for(
        self, retrieved: Retrieved, question: str, kind: Kind = Kind.FACT
    ) -> list[Passage]:
        """Passages to show the model, in document order.

        The whole corpus when it fits the budget (a stable prompt prefix), otherwise the
        retrieved passages: cut to their sentences that bear on a specific question, whole
        for a summary or a list; for a byline question also the first and last passage of
        each retrieved document (bylines and datelines sit there).
        """
        if self._whole_corpus_fits():
            return self.index.passages
        if kind in BROAD_KINDS:
            chosen = {p.id: p for p in retrieved.passages}
        else:  # a specific question: only its best sentences (see qa.evidence)
            selected = select_evidence(
                question,
                retrieved.passages,
                self.similarity,
                self.config.evidence_char_budget,
            )
            chosen = {p.id: p for p in selected}
        if kind is Kind.AUTHORSHIP:
            docs = {p.doc for p in retrieved.passages}
            for doc in docs:
                own = [p for p in self.index.passages if p.doc == doc]
                chosen |= {own[0].id: own[0], own[-1].id: own[-1]}
        return [chosen[p.id] for p in self.index.passages if p.id in chosen]

    def _focus(
        self, retrieved: Retrieved, question: str, kind: Kind, context: list[Passage]
    ) -> list[Passage]:
        """The best sentences for a second look, when the first one read the whole corpus."""
        if not (self.config.second_look and self.config.evidence_char_budget):
            return []
        if kind in BROAD_KINDS or context is not self.index.passages:
            return []
        return select_evidence(
            question, retrieved.passages, self.similarity, self.config.evidence_char_budget
        )

    def _verifier(self, question: str, context: list[Passage]) -> Verifier:
        """Checks a draft's sentences against ``context`` (numbered as the model saw it)."""
        config = self.config
        return Verifier(
            question=question,
            context=context,
            sentences=self.sentences_of(context),
            threshold=config.support_threshold,
            min_qa_similarity=config.min_qa_similarity,
            similarity=self.similarity,
            abstain=self.abstain,
            document_titles=frozenset(document_title(d) for d in self.index.docs),
        )

    def _whole_corpus_fits(self) -> bool:
        return sum(len(p.text) for p in self.index.passages) <= self.config.context_char_budget

    @property
    def abstain(self) -> str:
        return abstain_text(len(self.index.docs))

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

        The stages: clean the question (instructions out, requests made direct, follow-ups
        made standalone), classify its kind, retrieve, check that the evidence meets the
        question's own constraints (refusing with the closest sentence when it does not),
        draft with the model, verify every sentence's citations, and check the cited
        evidence against the question once more.
        """
        config = self.config
        text = clean_question(question, config.max_question_chars)
        turns = normalise_history(history, config.history_turns)
        started = time.perf_counter()
        self.refresh()
        with self._guard.reading():
            timings: dict[str, float] = {}
            standalone, instructed = split_instructions(text)
            standalone = as_direct_question(standalone)
            rewritten = standalone if instructed or standalone != text else None
            answer = Answer(
                question=text,
                text=self.abstain,
                abstained=True,
                rewritten_question=rewritten,
                model=self.model_name,
                timings=timings,
                disabled=list(self.disabled),
            )
            if instructed and not standalone:
                # Only instructions, no question about the documents: nothing to look up.
                yield from self._finish(answer, started)
                return
            if needs_rewrite(standalone, turns):
                messages = rewrite_messages(self.index.passages, turns, text, self.abstain)
                rewritten = standalone = clean_rewrite(self._complete_line(messages), standalone)
                answer.rewritten_question = rewritten
                timings["rewrite"] = time.perf_counter() - started
            kind = answer.kind = classify(standalone)

            mark = time.perf_counter()
            depth = config.top_k + (2 if kind in (Kind.SUMMARY, Kind.LIST) else 0)
            try:
                retrieved = self.index.retriever.retrieve(standalone, top_k=depth)
            except QAError:
                raise
            except Exception as exc:  # the store (or its server) failed under us
                self._stale = True  # reload on the next question, once it is back
                raise self.store.failure(exc) from exc
            answer.passages = retrieved.passages
            timings["retrieve"] = time.perf_counter() - mark
            if kind not in BROAD_KINDS and retrieved.max_dense < config.min_retrieval_score:
                # Nothing in the documents is even about this: no need to ask the model.
                yield from self._finish(answer, started)
                return
            context = self.context_for(retrieved, standalone, kind)
            verifier = self._verifier(standalone, context)
            focus = self._focus(retrieved, standalone, kind, context)
            mark = time.perf_counter()
            raw, verified = yield from self._draft(
                context, standalone, kind, verifier, timings, started
            )
            if verified.abstained and focus:
                # A second look at only the best sentences (see Config.second_look).
                yield Delta("\n\n")
                look = time.perf_counter()
                more, second = yield from self._draft(
                    focus, standalone, kind, self._verifier(standalone, focus), timings, started
                )
                raw += "\n\n" + more
                verified = verified if second.abstained else second
                self.llm.refill_idle_slots()  # the article back where the detour ran
                timings["second_look"] = time.perf_counter() - look
            timings["generate"] = time.perf_counter() - mark

            mark = time.perf_counter()
            answer.text, answer.citations = verified.text, verified.citations
            answer.abstained, answer.raw_text = verified.abstained, raw
            answer.checks = verified.checks
            claim = MARKER.sub("", verified.text).strip()
            # A worked calculation is checked by arithmetic and its cited operands instead.
            checked = kind in CHECKED_KINDS and self.answerability is not None
            checked = checked and shown_calculation(claim) is None
            if verified.citations and not verified.abstained and checked:
                verdict = self.assess(standalone, claim, self.cited_sentences(verified.citations))
                answer.confidence, answer.reasons = round(verdict.score, 3), list(verdict.reasons)
                if not verdict.answerable:
                    # The cited evidence does not meet the question's specifics: refuse, and
                    # show what the evidence does say (a swapped detail corrects itself).
                    answer.text, answer.citations, answer.abstained = self.abstain, [], True
                    answer.confidence = round(1 - verdict.score, 3)  # that refusing is right
                    self._point_at(answer, verdict.window, standalone, retrieved, related=True)
                timings["check"] = time.perf_counter() - mark
            elif verified.citations and not verified.abstained and kind is Kind.YES_NO:
                self._settle_polarity(answer, standalone)
                timings["check"] = time.perf_counter() - mark
            elif answer.abstained:
                self._point_at(answer, (), standalone, retrieved)
            timings["verify"] = time.perf_counter() - mark
            yield from self._finish(answer, started)

    def _settle_polarity(self, answer: Answer, question: str) -> None:
        """Make a yes/no answer's first word agree with the cited evidence (qa.polarity)."""
        if self.answerability is None:
            return
        window = self.index.checker.window_of(self.cited_sentences(answer.citations))
        p_yes = self._yes_probability(polarity_messages(window_text(window), question))
        if p_yes is None:
            return
        settled = agree(answer.text, p_yes)
        answer.text = settled.text
        answer.confidence = round(max(p_yes, 1 - p_yes), 3)
        if settled.changed:
            word = "Yes" if p_yes >= 0.5 else "No"
            answer.reasons.append(f"the cited passage answers {word} (P(yes) = {p_yes:.2f})")

    def _point_at(
        self,
        answer: Answer,
        window: Sequence[SourceSentence],
        question: str,
        retrieved: Retrieved,
        related: bool = False,
    ) -> None:
        """Give a refusal the closest evidence: what the text says instead, cited.

        The sentence is the one the answerability check found closest (or, without one,
        the most similar sentence of the best two passages); a false premise or a swapped
        detail is then corrected by the quote itself.
        """
        far = retrieved.max_dense < self.config.min_related_score
        if answer.citations or (far and not related):
            return  # ``related``: the window is what the model cited, so it is on topic
        pool = list(window) or self.sentences_of(retrieved.passages[:2])
        if not pool:
            return
        best = max(pool, key=lambda s: self.similarity(question, s.text))
        passage = best.passage
        answer.citations = [
            Citation(1, passage.id, passage.doc, best.start, best.end, best.text, passage.page)
        ]
        quote = " ".join(best.text.split())
        answer.text = f"{answer.text} The closest passage says: “{quote}” [1]"

    def _finish(self, answer: Answer, started: float) -> Iterator[Delta | Answer]:
        answer.timings["total"] = time.perf_counter() - started
        if answer.abstained and "first_token" not in answer.timings:
            yield Delta(answer.text)  # nothing was streamed: show the refusal as it is
        yield answer

    def _draft(
        self,
        context: list[Passage],
        question: str,
        kind: Kind,
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

        if needs_calculation(question) and self.llm.llama_cpp:
            for delta in self._calculate(context, question):
                yield note(delta)
            claim = calculated_claim(raw)
            verified = verifier.verify(claim) if claim else None
            if verified is not None and verified.citations:
                return raw, verified
            yield note("\n\n")
        working = len(raw)
        stream = self._stream(
            answer_messages(context, question, self.abstain), self._sampling(kind)
        )
        for delta in stream:
            yield note(delta)
            if looping(raw[working:]):
                break  # a degenerate loop ("Kim, Kim, Kim, ..."): stop paying for it
        stream.close()
        return raw, verifier.verify(raw[working:])

    def _sampling(self, kind: Kind | None = None) -> Sampling:
        """Greedy decoding; lists and summaries with a repetition penalty.

        Greedy decoding of a list by the 1.5B model loops on its first item; a repetition
        penalty moves it on to the next one. Facts keep the plain greedy decoding (a
        penalty there garbles copied figures). Sent with the request, so concurrent
        answers never see each other's settings.
        """
        broad = kind in (Kind.LIST, Kind.SUMMARY)
        penalty = LIST_REPEAT_PENALTY if broad else 1.0
        return Sampling(max_tokens=self.config.max_new_tokens, repeat_penalty=penalty)

    def _stream(self, messages: list, sampling: Sampling) -> Iterator[str]:
        return self._generate(lambda: self.llm.stream_chat(messages, sampling))

    def _stream_text(self, prompt: str) -> Iterator[str]:
        """Continue a raw, already formatted prompt (one that starts the answer)."""
        return self._generate(lambda: self.llm.stream_prompt(prompt, self._sampling()))

    def _generate(self, start: Callable[[], Iterable[str]]) -> Iterator[str]:
        try:
            yield from start()
        except QAError:
            raise
        except Exception as exc:  # a bug below the client: still one readable line
            failure = f"{type(exc).__name__}: {' '.join(str(exc).split())[:160]}"
            raise LLMError(f"the language model failed: {failure}") from exc

    def _calculate(self, context: list[Passage], question: str) -> Iterator[str]:
        """The model's working for a total or difference: the figures, then the arithmetic.

        The answer is prefilled with a lead-in that makes the model copy the figures
        first (it otherwise repeats one of them as the answer); generation stops once a
        calculation is written out.
        """
        prompt = self.llm.render(answer_messages(context, question, self.abstain))
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
        stream = self._stream(messages, self._sampling())
        for delta in stream:
            text += delta
            if "\n" in text.lstrip():
                break
        stream.close()
        return text.strip().split("\n")[0]


def load_answerability(config: Config) -> AnswerabilityModel | None:
    """The fitted answerability model, unless turned off (``QA_ANSWERABILITY=0``)."""
    if not config.answerability:
        return None
    try:
        return AnswerabilityModel.load()
    except (OSError, ValueError, KeyError):
        return None  # not fitted yet: `qa calibrate` writes it


LIST_REPEAT_PENALTY = 1.1


def looping(text: str, times: int = 3) -> bool:
    """Does ``text`` end with the same comma-separated item ``times`` times in a row?"""
    items = [i.strip().lower() for i in text.split(",")]
    tail = items[-times - 1 : -1]  # the last item may still be being written
    return len(tail) == times and len(set(tail)) == 1 and bool(tail[0])


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

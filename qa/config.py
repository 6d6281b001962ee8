"""All settings in one place.

Every knob the pipeline, the ingester, the CLI and the UI read lives on :class:`Config`.
The indexer's own settings (documents, store, embedding model, chunking) are declared on
:class:`index.config.IndexConfig`, which ``Config`` extends, so ``index/`` never imports
``qa``; every ``Config`` is an ``IndexConfig`` and can be passed wherever one is taken.
Defaults suit a 2-core laptop; each field can be overridden by an environment variable
(``QA_<FIELD>`` in upper case) or by passing keyword arguments / CLI flags.
"""

from __future__ import annotations

from typing import Literal, get_args

from pydantic import field_validator

from index.config import IndexConfig

Caution = Literal["low", "balanced", "high"]
CAUTION_LEVELS: tuple[str, ...] = get_args(Caution)
DEFAULT_CAUTION: Caution = "balanced"
# How the engine drafts tokens ahead of the model (speculative decoding; see qa.engine):
# "ngram" looks the next tokens up in the prompt itself (answers copy the documents),
# "off" decodes one token per step.
Speculative = Literal["off", "ngram"]
SPECULATIVE_MODES: tuple[str, ...] = get_args(Speculative)
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]


class Config(IndexConfig):
    """Settings for ingestion, retrieval, generation and verification.

    Inherited from :class:`IndexConfig`: ``seeds_dir``, ``store_dir``, ``chroma_url``,
    ``chroma_token``, ``model_cache_dir``, ``collection``, ``embed_model`` and
    ``passage_max_chars`` (where things live, the embedding model, chunking).
    """

    # --- models ------------------------------------------------------------------
    # "default" (Qwen2.5-Coder-1.5B), "fast" (Qwen2.5-Coder-0.5B) or a path to a .gguf file.
    model: str = "default"
    # Optional expected SHA-256 for a user-supplied GGUF path.
    model_sha256: str = ""
    # OpenAI-compatible server (Ollama, vLLM, llama.cpp server, OpenAI): used when set.
    openai_base_url: str = ""
    openai_model: str = ""
    openai_api_key: str = "not-needed"
    n_ctx: int = 4096  # tokens per slot of the engine
    n_threads: int = 0  # 0 = one per core
    # Slots of the local engine (and the default of `qa serve-model`): questions answered
    # at once, decoded together in one batch (continuous batching); each slot holds a KV
    # cache of n_ctx tokens. How the default was chosen: docs/performance.md.
    n_parallel: int = 2
    # The engine's host-RAM prompt cache (prompts evicted from a slot, reloaded when they
    # come back): bounded so a long session cannot grow the process without limit.
    prompt_cache_mib: int = 1024
    # One answer (every model request of it) must finish within this; then a clear error.
    request_timeout_s: float = 120.0
    max_new_tokens: int = 160
    # Speculative decoding (one of SPECULATIVE_MODES): the engine proposes up to
    # `draft_max` tokens, the model verifies them in one batch and keeps exactly what
    # greedy decoding would have written. `ngram_size` is how many of the last tokens must
    # recur in the prompt before what followed them there is proposed. Off by default
    # (`qa bench --compare-speculative off,ngram` measures it; docs/performance.md); it can
    # pay where decoding is slow against prompt reading.
    speculative: Speculative = "off"
    draft_max: int = 8
    ngram_size: int = 3
    # A question asking for a total or a difference gets this much working (listing the
    # figures, then the arithmetic) before the model has to have written a calculation
    # (the workings seen and what they cost: docs/design.md, "Behind the question path").
    max_working_chars: int = 300
    temperature: float = 0.0

    # --- retrieval -------------------------------------------------------------------
    top_k: int = 4
    # When the whole corpus fits in this many characters, every passage goes into the
    # prompt in document order: the prompt prefix then never changes and llama.cpp
    # reuses its KV cache, so only the question has to be read per request.
    context_char_budget: int = 7000
    # Otherwise a specific question's retrieved passages are cut to their best sentences,
    # this many characters in all (~220 tokens; 0 keeps whole passages): see qa.evidence.
    evidence_char_budget: int = 900
    # When the model refuses over the whole corpus, ask once more over only the question's
    # best sentences (a small model can miss in a long prompt a fact it finds in a short
    # one; docs/calibration.md); the answer is verified and checked like any other.
    second_look: bool = True
    # (only when the refusal was unsure: `qa calibrate` fits how unsure, see qa.judge)

    # --- verification and abstention (calibrated on eval/qa_set.jsonl, see README) -----
    # Share of an answer sentence's new words that its cited sentences must contain.
    support_threshold: float = 0.5
    # Minimum cosine of "question + claim" against the cited sentences. Measured on the
    # eval set it did not separate right from wrong claims (both span 0.17-0.90), so it
    # is off; kept as a knob for other corpora.
    min_qa_similarity: float = 0.0
    # A sentence under support_threshold still counts as supported, as a paraphrase, when
    # it holds at least this share of its new words in the cited sentences and its
    # embedding cosine to them reaches paraphrase_min_similarity (docs/calibration.md:
    # set by hand, not yet fitted).
    paraphrase_min_support: float = 0.25
    paraphrase_min_similarity: float = 0.6
    # Below this best dense similarity the question is about nothing in the documents and
    # the model is not asked. Eval set: answerable questions reach >= 0.14, off-topic ones
    # 0.03-0.31; the floor sits under every answerable question.
    min_retrieval_score: float = 0.12
    # An abstention quotes the closest passage when the best dense match reaches this
    # (on-topic unanswerable questions reach >= 0.40, off-topic ones <= 0.31).
    min_related_score: float = 0.35
    # How readily the judge refuses an answer it doubts: "low" answers more, "high"
    # refuses more, "balanced" weighs a wrong answer as much as a right one (each level's
    # threshold is fitted by `qa calibrate`; README: what each level means).
    caution: Caution = DEFAULT_CAUTION
    # Off only while `qa calibrate --collect` gathers signals: the judge then reports every
    # signal and lets each answer through. Serving always loads the fitted model.
    answerability: bool = True

    # --- logging -------------------------------------------------------------------
    # DEBUG prints every model request (tokens read, generated, drafted); `qa -v` is DEBUG.
    log_level: LogLevel = "WARNING"

    # --- input limits --------------------------------------------------------------
    max_question_chars: int = 2000
    history_turns: int = 3

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_case_level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @property
    def uses_openai_server(self) -> bool:
        return bool(self.openai_base_url)

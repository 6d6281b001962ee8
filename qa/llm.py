"""The language model behind the answers, always as a llama-index ``LLM``.

Local GGUF files run through llama-index's ``LlamaCPP`` with prompts rendered by the
chat template stored inside the GGUF (Qwen needs ChatML; the wrapper's default Llama-2
format makes it ramble). Any OpenAI-compatible server (Ollama, vLLM, llama.cpp server,
OpenAI) runs through ``OpenAILike``. Everything downstream only sees ``LLM``.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from llama_index.core.base.llms.types import ChatMessage
from llama_index.core.llms import LLM

from qa.config import Config
from qa.errors import ModelIntegrityError
from qa.models import MODELS, resolve_model_path


def model_label(config: Config) -> str:
    """A human-readable name of the configured model (for the UI and reports)."""
    if config.uses_openai_server:
        return f"{config.openai_model} @ {config.openai_base_url}"
    spec = MODELS.get(config.model)
    return spec.name if spec else Path(config.model).name


def load_llm(config: Config) -> LLM:
    """Build the configured LLM; local model files are verified before loading."""
    if config.uses_openai_server:
        return _openai_like(config)
    path = resolve_model_path(config.model, config.model_cache_dir, config.model_sha256)
    return _llama_cpp(path, config)


def load_models(config: Config) -> tuple[LLM, YesNoProbe | None]:
    """The answering LLM and, for a local model, the Yes/No probe's own context beside it.

    One after the other: llama-cpp-python silences loading by pointing the process's
    stdout and stderr at /dev/null and back, and two loads at once can leave them there.
    """
    from llama_index.llms.llama_cpp import LlamaCPP

    llm = load_llm(config)
    if not isinstance(llm, LlamaCPP):
        return llm, None  # over HTTP there are no logits to read
    threads = config.n_threads or max(1, os.cpu_count() or 1)
    return llm, YesNoProbe(llm.model_path, min(config.n_ctx, PROBE_CONTEXT), threads)


def _openai_like(config: Config) -> LLM:
    from llama_index.llms.openai_like import OpenAILike

    return OpenAILike(
        model=config.openai_model or "default",
        api_base=config.openai_base_url,
        api_key=config.openai_api_key,
        is_chat_model=True,
        temperature=config.temperature,
        max_tokens=config.max_new_tokens,
        context_window=config.n_ctx,
        timeout=120,
        max_retries=1,
    )


def _llama_cpp(path: Path, config: Config) -> LLM:
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter
    from llama_index.llms.llama_cpp import LlamaCPP

    threads = config.n_threads or max(1, os.cpu_count() or 1)
    try:
        llm = LlamaCPP(
            model_path=str(path),
            temperature=config.temperature,
            max_new_tokens=config.max_new_tokens,
            context_window=config.n_ctx,
            generate_kwargs={"top_k": 1, "repeat_penalty": 1.0},
            model_kwargs={"n_threads": threads, "n_batch": 512, "verbose": False},
            verbose=False,
        )
    except (ValueError, RuntimeError) as exc:
        raise ModelIntegrityError(
            f"llama.cpp could not load {path} ({exc}); check that it is a complete GGUF file"
        ) from exc

    model = llm._model  # the underlying llama_cpp.Llama, to read the GGUF's own template
    template = model.metadata.get("tokenizer.chat_template")
    if not template:
        raise ModelIntegrityError(
            f"{path} has no chat template in its metadata; use an instruct GGUF model"
        )
    eos = model.detokenize([model.token_eos()], special=True).decode("utf-8", errors="ignore")
    formatter = Jinja2ChatFormatter(template=template, eos_token=eos, bos_token="")

    def messages_to_prompt(messages: Sequence[ChatMessage]) -> str:
        rendered = formatter(
            messages=[{"role": m.role.value, "content": m.content or ""} for m in messages]
        )
        return rendered.prompt

    def completion_to_prompt(completion: str) -> str:
        return messages_to_prompt([ChatMessage(role="user", content=completion)])

    llm.messages_to_prompt = messages_to_prompt
    llm.completion_to_prompt = completion_to_prompt
    llm.generate_kwargs["stop"] = sorted({eos, "<|im_end|>", "<|endoftext|>"} - {""})
    return llm


class YesNoProbe:
    """P("Yes") against P("No") as the model's next token, in a llama.cpp context of its own.

    The answerability self-check and the yes/no polarity check read the model's logits
    after a short prompt (no generation). Run in the answering context they would overwrite
    its cached prompt prefix (the whole article, or the rules), and the next question would
    re-read it: seed warm p50 1.4 s -> 10.6 s. A second context on the same GGUF file keeps
    both caches; the weights are memory-mapped once by the OS, the extra KV cache costs
    about 0.1 GB at 4,096 tokens. The probe's own instructions stay cached here in turn.
    """

    def __init__(self, model_path: str, n_ctx: int, n_threads: int) -> None:
        from llama_cpp import Llama

        self._model = Llama(
            model_path=model_path,
            n_ctx=n_ctx,
            n_threads=n_threads,
            n_batch=256,  # llama-cpp-python keeps n_batch x vocabulary float logits (150 MB)
            verbose=False,
        )
        model = self._model

        def ids(word: str) -> list[int]:
            spellings = (word.encode(), f" {word}".encode())
            return sorted({model.tokenize(w, add_bos=False, special=False)[0] for w in spellings})

        self._yes, self._no = ids("Yes"), ids("No")

    def probability(self, prompt: str) -> float | None:
        """P("Yes") as the next token after the formatted ``prompt`` (about 0.7 s / 100 tokens).

        ``None`` for a prompt longer than the probe's context (the check then abstains
        from voting rather than failing the answer).
        """
        model = self._model
        tokens = model.tokenize(prompt.encode("utf-8"), add_bos=False, special=True)
        if len(tokens) >= model.n_ctx():
            return None
        cached = 0
        for old, new in zip(model._input_ids, tokens, strict=False):
            if old != new:
                break
            cached += 1
        model.n_tokens = min(cached, len(tokens) - 1, model.n_tokens)
        model.eval(tokens[model.n_tokens :])
        logits = np.ctypeslib.as_array(model._ctx.get_logits(), shape=(model.n_vocab(),))

        def mass(ids: list[int]) -> float:
            return float(np.logaddexp.reduce([float(logits[i]) for i in ids]))

        return float(1 / (1 + np.exp(mass(self._no) - mass(self._yes))))


PROBE_CONTEXT = 2048  # tokens: instructions, an evidence window, a question and a claim


def supports_prefill(llm: LLM) -> bool:
    """Can the answer be started for the model (a raw prompt)? Local llama.cpp only."""
    from llama_index.llms.llama_cpp import LlamaCPP

    return isinstance(llm, LlamaCPP)


def warm_prefix(llm: LLM, prefix: str, cache_dir: Path) -> str:
    """Make llama.cpp start from an already evaluated ``prefix`` (the stable system prompt).

    The first question after a start would otherwise pay for reading the whole prompt
    (about 15 s for ~900 tokens on 2 cores). The evaluated state is saved next to the
    model once, keyed by model file and prefix, and loaded on later starts in well under
    a second. Returns "loaded", "computed" or "skipped" (not a local model).
    """
    import pickle

    from llama_index.llms.llama_cpp import LlamaCPP

    if not isinstance(llm, LlamaCPP):
        return "skipped"
    model = llm._model
    model_file = Path(llm.model_path)
    stat = model_file.stat()
    key = hashlib.sha256(
        f"{model_file.name}\x00{stat.st_size}\x00{model.n_ctx()}\x00{prefix}".encode()
    ).hexdigest()[:24]
    state_file = cache_dir / f"prefix-{key}.state"
    if state_file.is_file():
        try:
            with open(state_file, "rb") as handle:
                state = pickle.load(handle)
            _restore(model, state.llama_state, state.input_ids, state.n_tokens)
            return "loaded"
        except Exception:  # a stale or damaged cache entry: recompute it
            state_file.unlink(missing_ok=True)
    tokens = model.tokenize(prefix.encode("utf-8"), add_bos=False, special=True)
    model.reset()
    model.eval(tokens)
    cache_dir.mkdir(parents=True, exist_ok=True)
    partial = state_file.with_suffix(f".partial-{os.getpid()}")
    state = model.save_state()
    # Per-token logits of the prefix are never read again (generation continues after the
    # question); one zero row, broadcast on load, keeps the file at the KV cache's size.
    state.scores = np.zeros((1, state.scores.shape[1]), dtype=state.scores.dtype)
    with open(partial, "wb") as handle:
        pickle.dump(state, handle)
    os.replace(partial, state_file)
    return "computed"


@contextmanager
def prompt_cache_kept(llm: LLM) -> Iterator[None]:
    """Run a detour through another prompt without losing the evaluated prompt cache.

    A second look at a few sentences (see ``Config.second_look``) would overwrite the
    cached whole-article prompt and make the next question re-read it (~6 s); the KV
    cache is copied aside (~60 MB, tens of milliseconds) and put back afterwards.
    """
    from llama_index.llms.llama_cpp import LlamaCPP

    if not isinstance(llm, LlamaCPP):
        yield
        return
    import llama_cpp

    model = llm._model
    size = llama_cpp.llama_state_get_size(model._ctx.ctx)
    data = (ctypes.c_uint8 * size)()
    used = llama_cpp.llama_state_get_data(model._ctx.ctx, data, size)
    input_ids, n_tokens = model.input_ids.copy(), model.n_tokens
    try:
        yield
    finally:
        _restore(model, bytes(data[:used]), input_ids, n_tokens)


def _restore(model: Any, data: bytes, input_ids: np.ndarray, n_tokens: int) -> None:
    """Put a llama.cpp context back to a saved KV cache and its token ids.

    Unlike ``Llama.load_state`` this leaves the per-token logits buffer alone (n_batch x
    vocabulary floats, 300 MB, zeroed and refilled on every load: 0.6 s of each cold
    start); the prefix's logits are never read, generation continues after the question.
    """
    import llama_cpp

    buffer = (ctypes.c_uint8 * len(data)).from_buffer_copy(data)
    if llama_cpp.llama_state_set_data(model._ctx.ctx, buffer, len(data)) != len(data):
        raise RuntimeError("llama.cpp did not accept the saved prompt state")
    model.input_ids = input_ids.copy()
    model.n_tokens = n_tokens
    model._requires_eval = True

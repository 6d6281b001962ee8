"""The language model behind the answers, always as a llama-index ``LLM``.

Local GGUF files run through llama-index's ``LlamaCPP`` with prompts rendered by the
chat template stored inside the GGUF (Qwen needs ChatML; the wrapper's default Llama-2
format makes it ramble). Any OpenAI-compatible server (Ollama, vLLM, llama.cpp server,
OpenAI) runs through ``OpenAILike``. Everything downstream only sees ``LLM``.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path

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


def yes_probability(llm: LLM, prompt: str) -> float | None:
    """P("Yes") against P("No") as the model's next token after a formatted ``prompt``.

    Reads the logits llama.cpp leaves after evaluating the prompt (no generation), reusing
    the cached prefix the way generation does; about 0.7 s for a 100-token prompt on 2
    cores. ``None`` for models served over HTTP, whose logits are not available.
    """
    from llama_index.llms.llama_cpp import LlamaCPP

    if not isinstance(llm, LlamaCPP):
        return None
    model = llm._model
    tokens = model.tokenize(prompt.encode("utf-8"), add_bos=False, special=True)
    cached = 0
    for old, new in zip(model._input_ids, tokens, strict=False):
        if old != new:
            break
        cached += 1
    model.n_tokens = min(cached, len(tokens) - 1, model.n_tokens)
    model.eval(tokens[model.n_tokens :])
    logits = np.ctypeslib.as_array(model._ctx.get_logits(), shape=(model.n_vocab(),))

    def mass(word: str) -> float:
        ids = {
            model.tokenize(w.encode(), add_bos=False, special=False)[0] for w in (word, " " + word)
        }
        return float(np.logaddexp.reduce([float(logits[i]) for i in ids]))

    return float(1 / (1 + np.exp(mass("No") - mass("Yes"))))


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
                model.load_state(pickle.load(handle))
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

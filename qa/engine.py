"""The local LLM engine: llama.cpp's own server, in this process or as ``qa serve-model``.

There is one way to reach a model: llama.cpp's HTTP server with its OpenAI-compatible
and native routes (:mod:`qa.llm` is the client). Locally that server is an
``xllamacpp.Server`` started inside the app on a free localhost port (a prebuilt wheel:
nothing to compile); for a team it is the same server as a process of its own
(``qa serve-model``) that several app replicas share. Either way the server, not our
code, batches concurrent requests over ``n_parallel`` slots, keeps each slot's prompt
cache, saves and restores slots to files, and returns next-token log-probabilities.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

from qa.config import Config
from qa.errors import ConfigError, ModelIntegrityError
from qa.models import LOCAL_MODEL_NAME, resolve_model_path

LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


def slot_dir(config: Config) -> Path:
    """Where the engine saves slots (warmed prompt prefixes) for ``config``'s model cache."""
    return config.model_cache_dir / "slots"


@dataclass(frozen=True)
class EngineSettings:
    """What the server is started with; every field comes from :class:`Config`."""

    model_path: Path
    slots: int  # parallel sequences (continuous batching)
    slot_context: int  # tokens per slot
    threads: int
    slot_dir: Path  # where saved slots (warmed prompt prefixes) live
    prompt_cache_mib: int  # host-RAM prompt cache shared by the slots
    speculative: str  # one of qa.config.SPECULATIVE_MODES
    draft_max: int  # tokens proposed at most per step
    ngram_size: int  # "ngram": tokens that must recur before a lookup proposes
    host: str = "127.0.0.1"
    port: int = 0  # 0 = any free port
    api_key: str = ""

    @classmethod
    def from_config(
        cls, config: Config, *, host: str = "127.0.0.1", port: int = 0, api_key: str = ""
    ) -> Self:
        path = resolve_model_path(config.model, config.model_cache_dir, config.model_sha256)
        return cls(
            model_path=path,
            slots=max(1, config.n_parallel),
            slot_context=config.n_ctx,
            threads=config.n_threads or max(1, os.cpu_count() or 1),
            slot_dir=slot_dir(config),
            prompt_cache_mib=config.prompt_cache_mib,
            speculative=config.speculative,
            draft_max=config.draft_max,
            ngram_size=config.ngram_size,
            host=host,
            port=port,
            api_key=api_key,
        )


class LocalEngine:
    """An ``xllamacpp.Server`` serving one GGUF on ``host:port`` while this object lives.

    Its ``handle_*`` calls and HTTP routes are thread-safe and release the GIL, so the
    app's worker threads (and other processes, for ``qa serve-model``) can all send
    requests at once; the server queues what exceeds its slots.
    """

    def __init__(self, settings: EngineSettings) -> None:
        import xllamacpp

        settings.slot_dir.mkdir(parents=True, exist_ok=True)
        if settings.port:
            _check_port_free(settings.host, settings.port)
        params: Any = xllamacpp.CommonParams()
        params.model.path = str(settings.model_path)
        params.model_alias = {LOCAL_MODEL_NAME}
        params.n_parallel = settings.slots
        # llama.cpp splits n_ctx between the slots: each gets slot_context tokens.
        params.n_ctx = settings.slot_context * settings.slots
        params.n_batch = 512
        params.cpuparams.n_threads = settings.threads
        params.cpuparams_batch.n_threads = settings.threads
        params.hostnames = [settings.host]
        params.port = settings.port
        params.slot_save_path = f"{settings.slot_dir}{os.sep}"  # llama.cpp appends the name
        params.cache_ram_mib = settings.prompt_cache_mib
        params.ui = False
        params.verbosity = 0
        if settings.api_key:
            params.api_keys = [settings.api_key]
        configure_speculation(params, settings)
        try:
            self._server = xllamacpp.Server(params)
        except RuntimeError as exc:
            raise ModelIntegrityError(
                f"llama.cpp could not load {settings.model_path} ({exc}); check that it is "
                "a complete GGUF file"
            ) from exc
        self.settings = settings
        self.url: str = self._server.listening_address  # e.g. http://127.0.0.1:41249

    def close(self) -> None:
        """Stop the server (it also stops when this object is garbage-collected)."""
        self.__dict__.pop("_server", None)


def configure_speculation(params: Any, settings: EngineSettings) -> None:
    """Set llama.cpp's speculative decoding on ``params`` (``xllamacpp.CommonParams``).

    "ngram" proposes what followed the last ``ngram_size`` tokens where they occur earlier
    in the slot (prompt and answer so far: answers quote their documents), up to
    ``draft_max`` tokens, and the model scores the proposal in one batch; greedy
    verification keeps exactly the tokens it would have written one by one. Off by
    default: where a verified proposal costs about as much per token as decoding, it does
    not pay (measured by ``qa bench --compare-speculative off,ngram``; docs/performance.md,
    which also has the draft-model try).
    """
    import xllamacpp

    kinds = xllamacpp.common_speculative_type
    spec = params.speculative
    if settings.speculative == "ngram":
        spec.types = [kinds.COMMON_SPECULATIVE_TYPE_NGRAM_SIMPLE]
        spec.ngram_simple.size_n = settings.ngram_size
        spec.ngram_simple.size_m = settings.draft_max
        spec.draft.n_max = settings.draft_max
    else:
        spec.types = [kinds.COMMON_SPECULATIVE_TYPE_NONE]


def _check_port_free(host: str, port: int) -> None:
    """A taken port makes llama.cpp fail with "check the input params": say which it is."""
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise ConfigError(
                f"cannot listen on {host}:{port} ({exc.strerror}); pick --port"
            ) from exc


def start_local_engine(config: Config) -> LocalEngine:
    """The in-process engine for ``config``'s model, on a free localhost port."""
    return LocalEngine(EngineSettings.from_config(config))


def serve_model(
    config: Config, *, host: str, port: int, api_key: str = "", allow_no_auth: bool = False
) -> None:
    """``qa serve-model``: llama.cpp's server as a process of its own, until interrupted.

    App replicas reach it with ``--openai-base-url http://HOST:PORT/v1``; each keeps its
    retrieval and checks, the server batches all of their questions over its slots. Off
    localhost it wants an API key (llama.cpp checks ``Authorization: Bearer …``).
    """
    import threading

    if host not in LOCAL_HOSTS and not api_key and not allow_no_auth:
        raise ConfigError(
            f"--host {host} makes the model reachable from other machines: give --api-key "
            "KEY (replicas send it with QA_OPENAI_API_KEY), or --no-auth"
        )
    settings = EngineSettings.from_config(config, host=host, port=port, api_key=api_key)
    engine = LocalEngine(settings)
    print(
        f"Serving {settings.model_path.name} on {engine.url}/v1 ({settings.slots} slots of "
        f"{settings.slot_context} tokens; Ctrl+C to stop)",
        flush=True,
    )
    try:
        threading.Event().wait()
    finally:
        engine.close()

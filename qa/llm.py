"""The one client every answer goes through: HTTP to a llama.cpp-family server.

The local engine (:mod:`qa.engine`, llama.cpp's server in this process) and a remote
server (``qa serve-model``, ``llama-server``, or any OpenAI-compatible one) are reached
the same way, so what is tested locally is what a team deployment runs:

- answers stream from ``/v1/chat/completions`` (the server applies the GGUF's own chat
  template and reuses the longest cached prompt prefix of the slot it picks);
- raw prompts (an answer started for the model, as worked calculations need) go to
  ``/completion``, rendered by the server's ``/apply-template``;
- Yes/No probes read the next token's log-probabilities (``n_probs``) from
  ``/completion``: no private context, no ctypes;
- the stable prompt prefix is computed once, saved as a slot file and restored into
  every slot (``/slots/{id}?action=save|restore``), so concurrent questions and a cold
  start all skip re-reading it.

The native routes exist on llama.cpp's server only. Against another OpenAI-compatible
server (``/props`` does not answer as llama.cpp's does) only chat answers are used; where
it gives OpenAI-style ``logprobs`` on chat answers (vLLM does; one 1-token request at
start finds out), the draft's token log-probabilities and the Yes/No probes are read
from them. :attr:`LLMClient.missing` says which checks are off, for ``Answer.disabled``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from qa.config import Config
from qa.engine import slot_dir
from qa.errors import LLMError
from qa.models import LOCAL_MODEL_NAME, MODELS
from qa.types import EngineUsage

log = logging.getLogger(__name__)

# The slowest prompt reading (tokens/s) a warm-up is given time for: two busy laptop cores.
SLOWEST_PREFILL_TOKENS_PER_S = 8.0
# A saved prefix is restored as a head start only if it shares at least this much text
# with the new one (the rules alone are ~2,300 characters).
MIN_SHARED_PREFIX_CHARS = 1000

# The usage the requests of the answer being computed in this context add to.
_USAGE: ContextVar[EngineUsage | None] = ContextVar("qa_engine_usage", default=None)


@contextmanager
def metered() -> Iterator[EngineUsage]:
    """Sum the server's timings of every request made inside the block into one usage."""
    usage, outer = EngineUsage(), _USAGE.get()
    _USAGE.set(usage)
    try:
        yield usage
    finally:
        _USAGE.set(outer)


Message = Any  # llama-index ChatMessage (role, content) or a {"role", "content"} dict


def model_label(config: Config) -> str:
    """A human-readable name of the configured model (for the UI and reports)."""
    if config.uses_openai_server:
        return f"{config.openai_model or 'default'} @ {config.openai_base_url}"
    spec = MODELS.get(config.model)
    return spec.name if spec else Path(config.model).name


@dataclass(frozen=True)
class Sampling:
    """Per-request decoding settings (sent with each request: nothing global to mutate)."""

    max_tokens: int
    repeat_penalty: float = 1.0


@dataclass(frozen=True)
class TokenLogprob:
    """One generated token, its log-probability, and the likeliest alternatives there."""

    token: str
    logprob: float
    top: dict[str, float]


def _as_dict(message: Message) -> dict[str, str]:
    if isinstance(message, dict):
        return {"role": str(message["role"]), "content": str(message.get("content") or "")}
    role = getattr(message.role, "value", message.role)
    return {"role": str(role), "content": message.content or ""}


class LLMClient:
    """A thread-safe client of one model server (``base_url`` ends in ``/v1``)."""

    def __init__(
        self,
        base_url: str,
        *,
        model: str = "",
        api_key: str = "",
        timeout: float = 120.0,
        temperature: float = 0.0,
        remote: bool = True,
        slot_dir: Path | None = None,
    ) -> None:
        """``slot_dir`` is where the server saves slot files, where this client can read it
        (the local engine's): new prefixes then start from the nearest saved one."""
        self.base_url = base_url.rstrip("/")
        self.root = self.base_url.removesuffix("/v1")
        self.model = model or "default"
        self.timeout = timeout
        self.temperature = temperature
        self.remote = remote
        self.slot_dir = slot_dir
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        # One pooled client for all threads (httpx.Client is thread-safe); a read
        # timeout per chunk, and a deadline per request enforced while streaming.
        self._http = httpx.Client(
            headers=headers,
            timeout=httpx.Timeout(timeout, connect=10.0),
            # Idle connections are dropped before llama.cpp's server closes them (5 s).
            limits=httpx.Limits(
                max_connections=64, max_keepalive_connections=16, keepalive_expiry=2.0
            ),
        )
        props = self._props()
        self.llama_cpp = props is not None
        self.slots = int(props.get("total_slots", 1)) if props else 1
        self.slot_context = _slot_context(props) if props else 0
        self.model_path = str(props.get("model_path", "")) if props else ""
        self._prefix_file: str | None = None  # the saved slot of the warmed prefix
        self.prefix_read = 0  # tokens the last warm-up read (0: restored whole, or skipped)
        self._warmed = ""  # the prefix the first slot was last given
        self._server_lost = False  # a request found the server unreachable
        # Next-token log-probabilities: llama.cpp's natively, another server's on chat
        # answers where it gives them (the judge's strongest signals need them).
        self.logprobs = self.llama_cpp or self._chat_logprobs_given()

    # --- what this server can do ---------------------------------------------------
    @property
    def missing(self) -> list[str]:
        """The checks this server cannot run, each with the reason (``Answer.disabled``)."""
        if self.llama_cpp:
            return []
        off = [
            "worked calculations: they continue a raw prompt, which this server's chat API cannot"
        ]
        if not self.logprobs:
            off.insert(
                0,
                "model self-check and yes/no polarity check: this server gives no next-token "
                "log-probabilities (the answerability check runs on its other signals)",
            )
        return off

    def _chat_logprobs_given(self) -> bool:
        """Does this (non-llama.cpp) server give log-probabilities with a chat answer?"""
        try:
            return bool(
                self._chat_first_token([{"role": "user", "content": "Say Yes."}], 2, timeout=30.0)
            )
        except (LLMError, ValueError):  # an error, or a reply that is not JSON: none given
            return False

    def _chat_first_token(
        self, messages: Sequence[Message], n: int, timeout: float | None = None
    ) -> dict[str, float]:
        """The ``n`` likeliest first tokens of a chat answer, by OpenAI-style logprobs."""
        body = {
            "model": self.model,
            "messages": [_as_dict(m) for m in messages],
            "max_tokens": 1,
            "temperature": 0.0,
            "logprobs": True,
            "top_logprobs": n,
        }
        choices = self._post("/v1/chat/completions", body, timeout).get("choices") or [{}]
        tokens = _token_logprobs(choices[0].get("logprobs"))
        return tokens[0].top if tokens else {}

    def _props(self) -> dict[str, Any] | None:
        """llama.cpp's ``/props`` (slots, model, template), or None for another server."""
        response = self._request("GET", "/props", timeout=10.0)
        if response.status_code != 200:
            return None
        try:
            props = response.json()
        except ValueError:
            return None
        return props if isinstance(props, dict) and "total_slots" in props else None

    # --- prompts -------------------------------------------------------------------
    def render(self, messages: Sequence[Message]) -> str:
        """The prompt text the server's chat template makes of ``messages``."""
        self._need_native("rendering a raw prompt")
        body = {"messages": [_as_dict(m) for m in messages]}
        return str(self._post("/apply-template", body)["prompt"])

    def stream_chat(
        self,
        messages: Sequence[Message],
        sampling: Sampling,
        logprobs: list[TokenLogprob] | None = None,
    ) -> Iterator[str]:
        """Stream the answer to ``messages``, piece by piece.

        With a ``logprobs`` list, each generated token's log-probability (and the five
        likeliest tokens in its place) is appended to it as it arrives: the judge reads
        them, and they cost nothing extra to compute.
        """
        body: dict[str, Any] = {
            "model": self.model,
            "messages": [_as_dict(m) for m in messages],
            "max_tokens": sampling.max_tokens,
            "temperature": self.temperature,
            "stream": True,
        }
        if self.llama_cpp:  # greedy, and reuse the slot's cached prefix
            body |= {"top_k": 1, "repeat_penalty": sampling.repeat_penalty, "cache_prompt": True}
        if logprobs is not None and self.logprobs:
            body |= {"logprobs": True, "top_logprobs": 5}
        for event in self._stream("/v1/chat/completions", body):
            choices = event.get("choices") or [{}]
            if logprobs is not None:
                logprobs.extend(_token_logprobs(choices[0].get("logprobs")))
            delta = (choices[0].get("delta") or {}).get("content")
            if delta:
                yield delta

    def stream_prompt(self, prompt: str, sampling: Sampling) -> Iterator[str]:
        """Continue a raw, already formatted prompt (one that starts the answer)."""
        self._need_native("continuing a raw prompt")
        body = {
            "prompt": prompt,
            "n_predict": sampling.max_tokens,
            "temperature": self.temperature,
            "top_k": 1,
            "repeat_penalty": sampling.repeat_penalty,
            "cache_prompt": True,
            "stream": True,
        }
        for event in self._stream("/completion", body):
            if event.get("content"):
                yield str(event["content"])

    def next_token_logprobs(self, prompt: str, n: int = 10) -> dict[str, float]:
        """The ``n`` likeliest next tokens after ``prompt`` with their log-probabilities."""
        self._need_native("reading next-token probabilities")
        body = {
            "prompt": prompt,
            "n_predict": 1,
            "n_probs": n,
            "temperature": self.temperature,
            "top_k": 1,
            "cache_prompt": True,
        }
        result = self._post("/completion", body)
        probabilities = result.get("completion_probabilities") or []
        if not probabilities:
            return {}
        return {t["token"]: float(t["logprob"]) for t in probabilities[0].get("top_logprobs", [])}

    def count_tokens(self, text: str) -> int:
        """How many tokens the model's tokenizer makes of ``text``."""
        self._need_native("counting tokens")
        return len(self._post("/tokenize", {"content": text})["tokens"])

    def yes_probability(self, messages: Sequence[Message]) -> float | None:
        """P("Yes") against P("No") as the reply's first token; None if neither is likely
        or this server gives no log-probabilities."""
        if self.llama_cpp:
            logprobs = self.next_token_logprobs(self.render(messages))
        elif self.logprobs:
            logprobs = self._chat_first_token(messages, 10)
        else:
            return None

        def mass(word: str) -> float:
            return sum(math.exp(lp) for token, lp in logprobs.items() if token.strip() == word)

        yes, no = mass("Yes"), mass("No")
        return yes / (yes + no) if yes + no > 0 else None

    # --- the stable prompt prefix in every slot --------------------------------------
    def warm(self, prefix: str) -> str:
        """Put the evaluated ``prefix`` into every slot; "restored", "computed" or "skipped".

        A slot file a previous start saved (keyed by model, slot size and prefix text) is
        restored into every slot. Otherwise the first slot reads the prefix and is saved,
        then restored into the others, so several users at once, and the next cold start,
        all skip its prefill (the costs: docs/performance.md). The first slot
        reads only what it does not already hold: the server keeps the tokens the new
        prefix shares with the one warmed before (the rules; for a corpus that grew, every
        document it had). Where this client can see the slot files (the local engine), a
        saved prefix that shares more than that is restored first.

        A restore that fails empties its slot (llama.cpp's server clears it), so a file is
        only looked for where this client cannot see whether it exists, and then in the
        last slot, never in the first one that holds the previous prefix.
        """
        if not self.llama_cpp:
            return "skipped"
        name = self._prefix_name(prefix)
        self._prefix_file = None
        self.prefix_read = 0
        last = self.slots - 1
        if self._may_have_saved(name) and self._slot_action(last, "restore", name):
            state, holding = "restored", last
        else:
            state, holding = "computed", 0
            self._read_into_first_slot(prefix)
            if not self._slot_action(0, "save", name):
                self._warmed = prefix
                return "computed"  # a server without slot files: the others read on demand
        # Also for a restored file: another client (one that cannot see the files) may
        # have saved it without the record a later, grown prefix looks for.
        self._remember_prefix(name, prefix)
        self._prefix_file = name
        self._warmed = prefix
        for slot in range(self.slots):
            if slot != holding:
                self._slot_action(slot, "restore", name)
        return state

    def _read_into_first_slot(self, prefix: str) -> None:
        nearest, shared = self._nearest_saved_prefix(prefix)
        if nearest and shared > shared_start(self._warmed, prefix):
            self._slot_action(0, "restore", nearest)  # exists: a restore that cannot fail
        # Reading a whole slot is the one long request; it gets the time a full slot
        # takes at the slowest prefill planned for, not an answer's timeout.
        full_slot = self.slot_context / SLOWEST_PREFILL_TOKENS_PER_S
        result = self._post(
            "/completion",
            {"prompt": prefix, "n_predict": 0, "id_slot": 0},
            timeout=max(self.timeout, full_slot),
        )
        self.prefix_read = int((result.get("timings") or {}).get("prompt_n", 0))

    def _may_have_saved(self, name: str) -> bool:
        """False only where this client sees the slot files and ``name`` is not among them."""
        return self.slot_dir is None or (self.slot_dir / name).exists()

    def _prefix_name(self, prefix: str) -> str:
        key = f"{self.model_path}\x00{self.slot_context}\x00{prefix}"
        return f"prefix-{hashlib.sha256(key.encode()).hexdigest()[:24]}.bin"

    def _remember_prefix(self, name: str, prefix: str) -> None:
        """Beside a saved slot file, the text it holds (for :meth:`_nearest_saved_prefix`)."""
        if self.slot_dir is None:
            return
        path = (self.slot_dir / name).with_suffix(".json")
        record = {"model": self.model_path, "slot_context": self.slot_context, "prefix": prefix}
        with contextlib.suppress(OSError):  # only a later start's head start is lost
            if not path.exists():
                path.write_text(json.dumps(record))

    def _nearest_saved_prefix(self, prefix: str) -> tuple[str | None, int]:
        """The saved slot file for this model that shares the longest start with ``prefix``
        (at least ``MIN_SHARED_PREFIX_CHARS``) and how many characters it shares, or
        ``(None, 0)``."""
        best, shared = None, 0
        for record_path in self.slot_dir.glob("prefix-*.json") if self.slot_dir else ():
            try:
                record = json.loads(record_path.read_text())
                saved = record["prefix"]
                same_slots = (record["model"], record["slot_context"])
            except (OSError, ValueError, KeyError, TypeError):
                continue  # a record being written or damaged: not a candidate
            if same_slots != (self.model_path, self.slot_context):
                continue
            common = shared_start(saved, prefix)
            if common >= max(shared + 1, MIN_SHARED_PREFIX_CHARS) and (
                record_path.with_suffix(".bin").exists()
            ):
                best, shared = record_path.with_suffix(".bin").name, common
        return best, shared

    def refill_idle_slots(self) -> int:
        """Put the warmed prefix back into every idle slot; how many took it.

        A detour through another prompt that shares only the rules with the answering
        prompt (a second look) leaves its slot holding that prompt; the server then keeps
        the shared rules for the next question there and re-reads the article instead of
        taking it from its prompt cache (docs/performance.md). A slot
        that is busy refuses the restore, which is harmless.
        """
        if not self.llama_cpp or not self._prefix_file:
            return 0
        response = self._request("GET", "/slots", timeout=10.0)
        try:
            slots = response.json() if response.status_code == 200 else []
        except ValueError as exc:
            raise self._failure(exc) from exc
        idle = [s["id"] for s in slots if isinstance(s, dict) and not s.get("is_processing")]
        return sum(self._slot_action(slot, "restore", self._prefix_file) for slot in idle)

    def _refill_after_outage(self) -> None:
        """The server was unreachable: if it is back (perhaps restarted, its slots empty),
        give its idle slots the saved prefix before the request that needs it."""
        if not self._server_lost:
            return
        self._server_lost = False
        with contextlib.suppress(LLMError):  # still away: the request itself says so
            self.refill_idle_slots()

    def _slot_action(self, slot: int, action: str, filename: str) -> bool:
        response = self._request(
            "POST", f"/slots/{slot}", params={"action": action}, json={"filename": filename}
        )
        return response.status_code == 200

    # --- transport -----------------------------------------------------------------
    def _need_native(self, what: str) -> None:
        if not self.llama_cpp:
            raise LLMError(f"{what} needs a llama.cpp server; {self.base_url} is another kind")

    def _request(self, method: str, path: str, **options: Any) -> httpx.Response:
        """One request to the server; resent once if a pooled connection was just closed."""
        for attempt in (1, 2):
            try:
                return self._http.request(method, self.root + path, **options)
            except httpx.RemoteProtocolError as exc:  # a pooled connection the server closed
                if attempt == 2:
                    raise self._failure(exc) from exc
            except httpx.HTTPError as exc:
                raise self._failure(exc) from exc
        raise AssertionError("unreachable")

    def _post(
        self, path: str, body: dict[str, Any], timeout: float | None = None
    ) -> dict[str, Any]:
        """One JSON request; ``timeout`` (seconds) replaces the client's where given."""
        self._refill_after_outage()
        options: dict[str, Any] = {"json": body}
        if timeout is not None:
            options["timeout"] = httpx.Timeout(timeout, connect=10.0)
        response = self._request("POST", path, **options)
        self._check(response)
        result = response.json()
        _log_timings(path, result)
        return result

    def _stream(self, path: str, body: dict[str, Any]) -> Iterator[dict]:
        """Server-sent events of one request, decoded; a deadline bounds the whole answer.

        A request that fails before its first event on a connection the server had just
        closed (llama.cpp's server drops idle keep-alive connections after 5 s) is sent
        once more on a fresh one; nothing has been shown to the user yet.
        """
        self._refill_after_outage()
        url = self.root + path
        deadline = time.monotonic() + self.timeout
        for attempt in (1, 2):
            yielded = False
            try:
                with self._http.stream("POST", url, json=body) as response:
                    if response.status_code >= 400:
                        response.read()
                        self._check(response)
                    for line in response.iter_lines():
                        if time.monotonic() > deadline:
                            raise LLMError(self._busy())
                        field, _, data = line.partition(":")
                        data = data.strip()
                        if field not in ("data", "error") or not data:
                            continue  # comments, keep-alives
                        if data == "[DONE]":
                            return
                        event = json.loads(data)
                        if field == "error" or "error" in event:  # llama.cpp: "error: {…}"
                            raise LLMError(f"the language model failed: {_message(event)}")
                        _log_timings(path, event)
                        yielded = True
                        yield event
                return
            except httpx.RemoteProtocolError as exc:
                if yielded or attempt == 2:
                    raise self._failure(exc) from exc
            except httpx.TimeoutException as exc:
                raise LLMError(self._busy()) from exc
            except httpx.HTTPError as exc:
                raise self._failure(exc) from exc

    def _busy(self) -> str:
        return (
            f"the language model did not answer within {self.timeout:.0f} s (too many "
            "questions at once, or the server is stuck); try again in a moment"
        )

    def _check(self, response: httpx.Response) -> None:
        if response.status_code < 400:
            return
        try:
            detail = _message(response.json())
        except ValueError:
            detail = response.text[:200]
        raise LLMError(
            f"the language model refused the request (HTTP {response.status_code}: {detail})"
        )

    def _failure(self, exc: Exception) -> LLMError:
        if isinstance(exc, httpx.TimeoutException):
            return LLMError(self._busy())
        failure = f"{type(exc).__name__}: {' '.join(str(exc).split())[:160]}"
        if isinstance(exc, httpx.TransportError):
            self._server_lost = True
        if self.remote:
            return LLMError(
                f"the LLM server at {self.base_url} failed or is unreachable ({failure}); "
                "check that it is running"
            )
        return LLMError(f"the language model failed: {failure}")

    def close(self) -> None:
        self._http.close()


def _log_timings(path: str, result: Any) -> None:
    """Note the server's own account of a request: in the answer's usage, and the log.

    The ``qa.llm`` logger prints it at DEBUG level (``--verbose`` / ``QA_LOG_LEVEL``).
    """
    timings = result.get("timings") if isinstance(result, dict) else None
    if not isinstance(timings, dict):
        return
    usage = _USAGE.get()
    if usage is not None:
        usage.add(timings)
    if log.isEnabledFor(logging.DEBUG):
        log.debug(
            "%s slot=%s cached=%s read=%s (%.0f ms) generated=%s (%.0f ms) drafted=%s accepted=%s",
            path,
            result.get("id_slot", "?"),
            timings.get("cache_n"),
            timings.get("prompt_n"),
            timings.get("prompt_ms", 0.0),
            timings.get("predicted_n"),
            timings.get("predicted_ms", 0.0),
            timings.get("draft_n", 0),
            timings.get("draft_n_accepted", 0),
        )


def _token_logprobs(payload: Any) -> list[TokenLogprob]:
    """The OpenAI-style ``logprobs.content`` entries of one streamed chunk."""
    entries = payload.get("content") if isinstance(payload, dict) else None
    return [
        TokenLogprob(
            str(e.get("token", "")),
            float(e.get("logprob", 0.0)),
            {str(t["token"]): float(t["logprob"]) for t in e.get("top_logprobs") or []},
        )
        for e in entries or []
        if isinstance(e, dict)
    ]


def _message(payload: Any) -> str:
    error = payload.get("error", payload) if isinstance(payload, dict) else payload
    if isinstance(error, dict):
        error = error.get("message", error)
    return " ".join(str(error).split())[:200]


def shared_start(a: str, b: str) -> int:
    """How many leading characters ``a`` and ``b`` have in common."""
    n = min(len(a), len(b))
    return next((i for i in range(n) if a[i] != b[i]), n)


def _slot_context(props: dict[str, Any]) -> int:
    settings = props.get("default_generation_settings") or {}
    return int(settings.get("n_ctx", 0) or 0)


def connect(config: Config, engine_url: str | None = None) -> LLMClient:
    """The client for ``config``: the remote server when one is set, else the local engine."""
    if config.uses_openai_server:
        return LLMClient(
            config.openai_base_url,
            model=config.openai_model,
            api_key=config.openai_api_key,
            timeout=config.request_timeout_s,
            temperature=config.temperature,
        )
    if engine_url is None:
        raise ValueError("a local engine URL is needed when no server is configured")
    return LLMClient(
        f"{engine_url}/v1",
        model=LOCAL_MODEL_NAME,
        timeout=config.request_timeout_s,
        temperature=config.temperature,
        remote=False,
        slot_dir=slot_dir(config),
    )


def llama_index_llm(client: LLMClient, config: Config) -> Any:
    """The same server as a llama-index ``LLM`` (for the out-of-the-box baseline)."""
    from llama_index.llms.openai_like import OpenAILike

    return OpenAILike(
        model=client.model,
        api_base=client.base_url,
        api_key=config.openai_api_key,
        is_chat_model=True,
        temperature=config.temperature,
        max_tokens=config.max_new_tokens,
        context_window=client.slot_context or config.n_ctx,
        timeout=config.request_timeout_s,
        max_retries=1,
    )

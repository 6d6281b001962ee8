"""Which model answers, told apart well enough to pick the judge fitted for it.

A judge (``qa/judges/*.json``) is fitted on one model's signals and is only about that
model. The identity of the model in use is, in order:

- the SHA-256 of its GGUF file, where the server names a file this machine can read
  (the local engine, or a llama.cpp server on this machine: ``/props`` gives the path) —
  the same weights are the same model whichever way they are served;
- else the server's URL, the model name asked for, and whether the server gives
  next-token log-probabilities (the judge's strongest signals need them).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

from qa.models import MODELS, cached_sha256


class ServedModel(Protocol):
    """What the identity reads from a model client (:class:`qa.llm.LLMClient`)."""

    base_url: str
    model: str
    model_path: str
    logprobs: bool


@dataclass(frozen=True)
class ModelIdentity:
    """A model as a judge file records it; compare with :meth:`matches`."""

    name: str  # for people: the file's name or "model @ server"
    sha256: str = ""  # the GGUF's, where the weights are a file this machine reads
    server: str = ""  # else the server's URL ...
    served_model: str = ""  # ... the model name asked of it ...
    logprobs: bool = False  # ... and whether it gives next-token log-probabilities

    def matches(self, other: ModelIdentity) -> bool:
        """The same weights (by hash), or, with no hash on either side, the same server
        serving the same model name with the same log-probability support."""
        if self.sha256 or other.sha256:
            return self.sha256 == other.sha256
        return (self.server, self.served_model, self.logprobs) == (
            other.server,
            other.served_model,
            other.logprobs,
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> ModelIdentity:
        return cls(
            name=str(raw["name"]),
            sha256=str(raw.get("sha256", "")),
            server=str(raw.get("server", "")),
            served_model=str(raw.get("served_model", "")),
            logprobs=bool(raw.get("logprobs", False)),
        )


def identify(served: ServedModel) -> ModelIdentity:
    """The identity of the model behind ``served`` (hashes a local GGUF once, then cached)."""
    path = Path(served.model_path) if served.model_path else None
    if path is not None and path.is_file():
        digest = cached_sha256(path)
        bundled = {spec.sha256: spec.name for spec in MODELS.values()}
        return ModelIdentity(bundled.get(digest, path.name), digest)
    return ModelIdentity(
        f"{served.model} @ {served.base_url}",
        server=served.base_url,
        served_model=served.model,
        logprobs=served.logprobs,
    )

"""The settings the indexer reads: where documents and the store live, and how to chunk.

:class:`IndexConfig` holds only what ``index/`` needs, so the indexer never imports the
answering side; ``qa.config.Config`` extends it with the retrieval, generation and
verification knobs. Both are pydantic-settings classes: every field is read from the
environment variable ``QA_<FIELD>`` (upper case) unless given as a keyword argument (CLI
flags are passed that way), is validated against its type, and a bad value becomes one
:class:`~index.errors.ConfigError` line naming the variable and what it accepts.
Defaults suit a 2-core laptop.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Self

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from index.errors import ConfigError

ENV_PREFIX = "QA_"


def _default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "qa-chat"


class IndexConfig(BaseSettings):
    """Settings for ingestion: documents, the store, the embedding model and chunking."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, frozen=True, extra="forbid", validate_default=True
    )

    # --- where things live -------------------------------------------------------
    seeds_dir: Path = Path("seeds")
    store_dir: Path = Path(".qa")
    # A Chroma server (``chroma run``) instead of the local store directory, e.g.
    # http://127.0.0.1:8000; the token is sent as a bearer token when set.
    chroma_url: str = ""
    chroma_token: str = ""
    model_cache_dir: Path = Field(default_factory=_default_cache_dir)
    collection: str = "passages"

    # --- embedding model ------------------------------------------------------------
    embed_model: str = "all-MiniLM-L6-v2"

    # --- chunking ------------------------------------------------------------------
    passage_max_chars: int = 420

    def __init__(self, **values: Any) -> None:
        try:
            super().__init__(**values)
        except ValidationError as exc:
            raise ConfigError(describe(exc)) from None

    @classmethod
    def from_env(cls, **overrides: Any) -> Self:
        """The settings from ``QA_*`` environment variables, then ``overrides``.

        Overrides whose value is ``None`` are ignored so CLI flags can be passed through
        unconditionally.
        """
        return cls(**{k: v for k, v in overrides.items() if v is not None})

    def replace(self, **changes: Any) -> Self:
        """A copy with ``changes`` applied and validated (the environment is not re-read)."""
        try:
            return self.model_validate({**dict(self), **changes})
        except ValidationError as exc:
            raise ConfigError(describe(exc)) from None


_WANTED = {
    "int_parsing": "a whole number",
    "int_from_float": "a whole number",
    "float_parsing": "a number",
    "bool_parsing": "true or false (also 1/0, yes/no, on/off)",
}


def describe(error: ValidationError) -> str:
    """The first problem of ``error`` as one line: the variable, its value, what it takes."""
    first = error.errors()[0]
    name = str(first["loc"][0]) if first["loc"] else "?"
    variable = f"{ENV_PREFIX}{name.upper()}"
    value = first.get("input")
    if first["type"] == "literal_error":
        choices = first.get("ctx", {}).get("expected", "")
        wanted = "one of " + choices.replace("'", "").replace(" or ", ", ")
    elif first["type"] == "extra_forbidden":
        return f"there is no setting {name!r}"
    else:
        wanted = _WANTED.get(first["type"], first["msg"].lower())
    return f"{variable}={value!r} is not {wanted}; set it to {wanted}"

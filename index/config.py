"""The settings the indexer reads: where documents and the store live, and how to chunk.

:class:`IndexConfig` holds only what ``index/`` needs, so the indexer never imports the
answering side; ``qa.config.Config`` extends it with the retrieval, generation and
verification knobs. Defaults suit a 2-core laptop; each field can be overridden by an
environment variable (``QA_<FIELD>`` in upper case) or by passing keyword arguments /
CLI flags.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Self

from index.errors import ConfigError

# Settings given as text (environment, CLI flags) that are paths.
_PATH_FIELDS = ("seeds_dir", "store_dir", "model_cache_dir")


def _default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "qa-chat"


@dataclass(frozen=True)
class IndexConfig:
    """Settings for ingestion: documents, the store, the embedding model and chunking."""

    # --- where things live -------------------------------------------------------
    seeds_dir: Path = Path("seeds")
    store_dir: Path = Path(".qa")
    # A Chroma server (``chroma run``) instead of the local store directory, e.g.
    # http://127.0.0.1:8000; the token is sent as a bearer token when set.
    chroma_url: str = ""
    chroma_token: str = ""
    model_cache_dir: Path = field(default_factory=_default_cache_dir)
    collection: str = "passages"

    # --- embedding model ------------------------------------------------------------
    embed_model: str = "all-MiniLM-L6-v2"

    # --- chunking ------------------------------------------------------------------
    passage_max_chars: int = 420

    @classmethod
    def from_env(cls, **overrides: Any) -> Self:
        """Build a config from ``QA_*`` environment variables, then apply ``overrides``.

        Overrides whose value is ``None`` are ignored so CLI flags can be passed through
        unconditionally.
        """
        values: dict[str, Any] = {}
        for f in fields(cls):
            variable = f"QA_{f.name.upper()}"
            raw = os.environ.get(variable)
            if raw is not None:
                values[f.name] = _coerce(f.type, raw, variable)
        values.update({k: v for k, v in overrides.items() if v is not None})
        for key in _PATH_FIELDS:
            if key in values:
                values[key] = Path(values[key])
        return cls(**values)

    def replace(self, **changes: Any) -> Self:
        """Return a copy with ``changes`` applied."""
        return dataclasses.replace(self, **changes)


_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off"}


def _coerce(type_name: Any, raw: str, variable: str) -> Any:
    """``raw`` as the field's type, or one clear line naming the variable and what it takes."""
    name = type_name if isinstance(type_name, str) else getattr(type_name, "__name__", "")
    try:
        if name == "int":
            return int(raw)
        if name == "float":
            return float(raw)
    except ValueError:
        wanted = "a whole number" if name == "int" else "a number"
        raise ConfigError(f"{variable}={raw!r} is not {wanted}; set it to {wanted}") from None
    if name == "bool":
        word = raw.strip().lower()
        if word not in _TRUE | _FALSE:
            raise ConfigError(f"{variable}={raw!r}: use one of {', '.join(sorted(_TRUE | _FALSE))}")
        return word in _TRUE
    return raw

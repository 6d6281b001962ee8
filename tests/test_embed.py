"""The ONNX embedder gives sentence-transformers' vectors without importing torch."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from index.embed import DEFAULT_EMBED_MODEL, OnnxEmbedding, load_embedder, load_torch_embedder

pytestmark = pytest.mark.slow

TEXTS = [
    "Where were the missiles fired from?",
    "The missiles were fired from Pyongyang’s Sunan area at 11:43 a.m. and 11:53 a.m.",
    "short",
    "A long sentence " * 80,  # past the 256-token limit: truncated the same way
]


def test_onnx_vectors_match_sentence_transformers(tmp_path):
    onnx = load_embedder(DEFAULT_EMBED_MODEL, tmp_path)
    assert isinstance(onnx, OnnxEmbedding)
    ours = np.array(onnx.get_text_embedding_batch(TEXTS))
    reference = np.array(load_torch_embedder(DEFAULT_EMBED_MODEL).get_text_embedding_batch(TEXTS))
    assert ours.shape == reference.shape == (len(TEXTS), 384)
    assert np.abs(ours - reference).max() < 1e-5
    query = np.array(onnx.get_query_embedding(TEXTS[0]))
    assert np.abs(query - reference[0]).max() < 1e-5


def test_loading_the_exported_embedder_does_not_import_torch(tmp_path):
    load_embedder(DEFAULT_EMBED_MODEL, tmp_path)  # export once (this process has torch)
    code = (
        "import sys; from pathlib import Path; from index.embed import load_embedder; "
        f"e = load_embedder({DEFAULT_EMBED_MODEL!r}, Path({str(tmp_path)!r})); "
        "e.get_query_embedding('hello'); print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False", out.stderr

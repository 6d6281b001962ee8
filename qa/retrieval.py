"""Hybrid retrieval: dense (Chroma) and BM25 over the same passages, fused by rank.

Dense search finds paraphrases ("how far apart are the capital and the spaceport");
BM25 finds rare exact words (names, numbers) that a small embedding model blurs. The two
rankings are merged with reciprocal rank fusion. llama-index's ``QueryFusionRetriever``
does the same fusion but hides each retriever's own scores, and abstention needs the
dense cosine, so the fusion step (a few lines) is done here.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace

from llama_index.core import VectorStoreIndex
from llama_index.core.embeddings import BaseEmbedding
from llama_index.core.schema import BaseNode, NodeWithScore, QueryBundle
from llama_index.retrievers.bm25 import BM25Retriever

from index.vector_store import UpsertChromaVectorStore
from qa.types import Passage

RRF_K = 60


def node_to_passage(node: BaseNode) -> Passage:
    """Rebuild a :class:`Passage` from a stored node's metadata."""
    meta = node.metadata
    return Passage(
        id=node.node_id,
        doc=str(meta["doc"]),
        start=int(meta["start"]),
        end=int(meta["end"]),
        text=node.get_content(),
        sentences=tuple(tuple(pair) for pair in json.loads(meta["sentences"])),
        position=int(meta["position"]),
        page=int(meta["page"]) if meta.get("page") else None,
    )


@dataclass(frozen=True)
class Retrieved:
    """Fused ranking plus the best dense cosine similarity (an off-topic signal)."""

    passages: list[Passage]
    max_dense: float


class HybridRetriever:
    """Dense + BM25 retrieval over a fixed snapshot of the store's passages."""

    def __init__(
        self,
        store: UpsertChromaVectorStore,
        embedder: BaseEmbedding,
        nodes: list[BaseNode],
        top_k: int,
    ) -> None:
        self.top_k = top_k
        self.passages = {n.node_id: node_to_passage(n) for n in nodes}
        depth = min(len(nodes), max(top_k * 2, 8))
        self._dense = VectorStoreIndex.from_vector_store(store, embed_model=embedder).as_retriever(
            similarity_top_k=depth
        )
        self._sparse = BM25Retriever.from_defaults(nodes=nodes, similarity_top_k=depth)
        self._embedder = embedder

    def retrieve(self, query: str, top_k: int | None = None) -> Retrieved:
        """The ``top_k`` best passages for ``query``, best first, with fused scores."""
        bundle = QueryBundle(query_str=query)
        bundle.embedding = self._embedder.get_query_embedding(query)
        dense = self._known(self._dense.retrieve(bundle))
        sparse = self._known(self._sparse.retrieve(bundle)) if query.strip() else []
        fused: dict[str, float] = {}
        for ranking in (dense, sparse):
            for rank, hit in enumerate(ranking):
                fused[hit.node.node_id] = fused.get(hit.node.node_id, 0.0) + 1 / (RRF_K + rank)
        order = sorted(fused, key=fused.get, reverse=True)[: top_k or self.top_k]
        # Chroma reports exp(-cosine distance); turn it back into a cosine similarity.
        max_dense = max((1 + math.log(max(h.score or 1e-9, 1e-9)) for h in dense), default=0.0)
        return Retrieved([replace(self.passages[i], score=fused[i]) for i in order], max_dense)

    def _known(self, hits: list[NodeWithScore]) -> list[NodeWithScore]:
        # Ignore anything written after this snapshot (another process may be ingesting).
        return [h for h in hits if h.node.node_id in self.passages]

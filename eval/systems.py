"""The systems under evaluation, each turned into ``EvalItem -> Prediction``.

``ours`` calls the same pipeline ``ask()`` uses. ``baseline`` is an out-of-the-box
LlamaIndex ``CitationQueryEngine``: default settings, the same LLM object (with its
correct chat template), the same embedding model, its own Chroma collection.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from eval.dataset import EvalItem
from qa.config import Config

Span = tuple[str, int, int]


# How the out-of-the-box baseline words a refusal in its own free text ("does not
# mention", "no information"): a scoring aid for the baseline only. Our pipeline's
# refusal is one fixed phrase (qa.citations.is_refusal).
BASELINE_DECLINES = re.compile(
    r"\b(?:does|do|did|is|are)\s*(?:not|n't)\s+(?:say|mention|state|specify|provide|include|"
    r"contain|give|name|report|describe|indicate|reveal|explain|identify|disclose|know)|"
    r"\bnot\s+(?:mentioned|stated|specified|provided|given|named|reported|included|"
    r"in\s+the\s+(?:article|passages?|document|context))|\bno\s+(?:information|mention|details?)\b|"
    r"\b(?:cannot|can't|unable\s+to)\s+(?:answer|determine|find|tell|say)",
    re.IGNORECASE,
)


@dataclass
class Prediction:
    text: str
    abstained: bool
    citations: list[Span] = field(default_factory=list)
    retrieved: list[Span] = field(default_factory=list)
    seconds: float = 0.0
    first_token: float = 0.0
    rewritten: str | None = None
    raw: str = ""
    checks: list[dict] = field(default_factory=list)
    quotes: list[str] = field(default_factory=list)
    confidence: float | None = None
    certainty: str | None = None  # the answer's band (qa.types.Certainty); None: a refusal


System = Callable[[EvalItem], Prediction]


def ours(config: Config) -> System:
    """Our pipeline, exactly as ``qa.ask`` runs it."""
    from qa.pipeline import get_pipeline

    pipeline = get_pipeline(config)

    def answer(item: EvalItem) -> Prediction:
        started = time.perf_counter()
        result = pipeline.ask(item.question, history=list(item.history))
        seconds = time.perf_counter() - started
        return Prediction(
            text=result.text,
            abstained=result.abstained,
            citations=[(c.doc, c.start, c.end) for c in result.citations],
            retrieved=[(p.doc, p.start, p.end) for p in result.passages],
            seconds=seconds,
            first_token=result.timings.get("first_token", seconds),
            rewritten=result.rewritten_question,
            raw=result.raw_text,
            checks=[asdict(c) for c in result.checks],
            quotes=[c.quote for c in result.citations],
            confidence=result.confidence,
            certainty=None if result.certainty is None else result.certainty.value,
        )

    return answer


def baseline(config: Config, documents: dict[str, str]) -> System:
    """LlamaIndex's ``CitationQueryEngine`` with default settings over the same documents."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings
    from llama_index.core import SimpleDirectoryReader, StorageContext, VectorStoreIndex
    from llama_index.core.query_engine import CitationQueryEngine
    from llama_index.vector_stores.chroma import ChromaVectorStore

    from index.embed import load_embedder
    from qa.llm import llama_index_llm
    from qa.pipeline import get_pipeline

    # The same model server, through llama-index's OpenAI-compatible LLM (its chat template).
    llm = llama_index_llm(get_pipeline(config).llm, config)
    embedder = load_embedder(config.embed_model, config.model_cache_dir)
    client = chromadb.PersistentClient(
        path=str(config.store_dir.with_name(config.store_dir.name + "-baseline")),
        settings=ChromaSettings(anonymized_telemetry=False),
    )
    with contextlib.suppress(Exception):  # first run: nothing to delete
        client.delete_collection("baseline")
    collection = client.get_or_create_collection("baseline", embedding_function=None)
    storage = StorageContext.from_defaults(
        vector_store=ChromaVectorStore(chroma_collection=collection)
    )
    # The files, listed here: the reader's own folder walk skips every file below a hidden
    # folder, and the suites keep their corpora in ``.qa-squad2/``.
    files = sorted(p for p in config.seeds_dir.rglob("*") if p.suffix in (".txt", ".md"))
    docs = SimpleDirectoryReader(input_files=[str(p) for p in files]).load_data()
    index = VectorStoreIndex.from_documents(docs, storage_context=storage, embed_model=embedder)
    engine = CitationQueryEngine.from_args(index, llm=llm)

    def locate(text: str) -> Span | None:
        body = text.split(":\n", 1)[1] if text.startswith("Source ") else text
        for name, source in documents.items():
            start = source.find(body.strip())
            if start >= 0:
                return (name, start, start + len(body.strip()))
        return None

    def answer(item: EvalItem) -> Prediction:
        # The baseline has no conversation support: follow-ups go in as they are.
        started = time.perf_counter()
        response = engine.query(item.question)
        seconds = time.perf_counter() - started
        text = str(response.response or "")
        sources = [locate(n.node.get_content()) for n in response.source_nodes]
        cited_numbers = {int(n) for n in re.findall(r"\[(\d+)\]", text)}
        citations = [s for i, s in enumerate(sources, 1) if s is not None and i in cited_numbers]
        quotes = [
            n.node.get_content()
            for i, n in enumerate(response.source_nodes, 1)
            if i in cited_numbers
        ]
        return Prediction(
            text=text,
            abstained=bool(BASELINE_DECLINES.search(text)) or not text.strip(),
            citations=citations,
            retrieved=[s for s in sources if s is not None],
            seconds=seconds,
            first_token=seconds,
            quotes=quotes,
        )

    return answer

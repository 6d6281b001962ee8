"""Local, cited question answering over your documents.

>>> from qa import ask
>>> answer = ask("Where were the missiles fired from?")
>>> answer.text, answer.citations[0].quote

The pipeline (and with it torch, llama.cpp and Chroma) is imported lazily, so importing
``qa.types`` or ``qa.config`` stays cheap.
"""

from typing import Any

from qa.config import Config
from qa.errors import QAError
from qa.types import Answer, Certainty, Citation, Delta, Passage

__all__ = [
    "Answer",
    "Certainty",
    "Citation",
    "Config",
    "Delta",
    "Passage",
    "QAError",
    "ask",
    "ask_stream",
    "get_pipeline",
]


def __getattr__(name: str) -> Any:
    if name in {"ask", "ask_stream", "get_pipeline"}:
        from qa import pipeline

        return getattr(pipeline, name)
    raise AttributeError(f"module 'qa' has no attribute {name!r}")

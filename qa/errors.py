"""Errors a user can act on.

Each exception's message is one line that says what went wrong and what to do about it;
the CLI prints it and exits non-zero, the UI shows it in the chat. The indexer's errors
(and the base class) live in :mod:`index.errors`, which knows nothing of ``qa``; they
are re-exported here, the same classes, so ``from qa.errors import X`` names them all.
"""

from __future__ import annotations

from index.errors import (
    ConfigError,
    EmbeddingMismatchError,
    GenerationRemovedError,
    IndexBusyError,
    IndexCorruptError,
    IndexMissingError,
    IndexUnreachableError,
    ModelIntegrityError,
    QAError,
    SeedsNotFoundError,
)

__all__ = [
    "ConfigError",
    "EmbeddingMismatchError",
    "GenerationRemovedError",
    "IndexBusyError",
    "IndexCorruptError",
    "IndexMissingError",
    "IndexUnreachableError",
    "InvalidQuestionError",
    "LLMError",
    "ModelIntegrityError",
    "QAError",
    "SeedsNotFoundError",
]


class InvalidQuestionError(QAError, ValueError):
    """The question is empty, too long or not text."""


class LLMError(QAError):
    """The language model (local or server) failed to answer."""

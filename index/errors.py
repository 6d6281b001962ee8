"""Errors a user can act on, for the ones the indexer raises.

Each exception's message is one line that says what went wrong and what to do about it;
the CLI prints it and exits non-zero, the UI shows it in the chat. ``qa.errors``
re-exports these and adds the answering side's own.
"""

from __future__ import annotations


class QAError(Exception):
    """Base class for every error this project raises on purpose."""

    exit_code = 2


class SeedsNotFoundError(QAError, FileNotFoundError):
    """The documents directory does not exist or holds no readable documents."""


class IndexMissingError(QAError):
    """No passages have been ingested yet."""


class IndexCorruptError(QAError):
    """The store on disk cannot be read."""


class GenerationRemovedError(IndexMissingError):
    """The index generation a reader had open was replaced and removed: open the newest."""


class EmbeddingMismatchError(QAError):
    """The store was written with a different embedding model than the one configured."""


class IndexBusyError(QAError):
    """Another process holds the store's write lock."""


class IndexUnreachableError(QAError):
    """The Chroma server holding the index cannot be reached (or refused our token)."""


class ModelIntegrityError(QAError):
    """A model file is missing, truncated or not the file we expect."""


class ConfigError(QAError):
    """A setting or flag is missing, malformed, contradictory or unsafe."""

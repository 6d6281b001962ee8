"""Which fitted judge belongs to the model in use.

A judge file (``JudgeModels``, written by ``qa calibrate``) records the model it was
fitted on (:class:`~qa.model_identity.ModelIdentity`). Judges are looked for in the
user's folder (``<model cache>/judges``, where ``qa calibrate`` writes a judge for any
other model) and then among those shipped for the bundled models (``qa/judges``). A
model with no judge fitted for it gets none: its answers are labelled unchecked, and
another model's weights are never applied to it.
"""

from __future__ import annotations

import re
from pathlib import Path

from qa.answerability import JudgeModels
from qa.config import Config
from qa.model_identity import ModelIdentity
from qa.models import MODELS

SHIPPED_JUDGES = Path(__file__).with_name("judges")


def user_judges(config: Config) -> Path:
    """Where ``qa calibrate`` writes the judge of a model that is not bundled."""
    return config.model_cache_dir / "judges"


def file_stem(name: str) -> str:
    """A model's name as a file name, readable by people (``qwen2.5-coder-0.5b-instruct``)."""
    return re.sub(r"[^a-z0-9._]+", "-", name.lower()).strip("-.")


def judge_file_name(identity: ModelIdentity) -> str:
    """The file name of ``identity``'s judge: ``<model name>.json``."""
    return file_stem(identity.name) + ".json"


def judge_path(config: Config, identity: ModelIdentity) -> Path:
    """Where a judge fitted for ``identity`` belongs: shipped for a bundled model, else
    the user's folder."""
    bundled = any(spec.sha256 == identity.sha256 for spec in MODELS.values())
    return (SHIPPED_JUDGES if bundled else user_judges(config)) / judge_file_name(identity)


Judges = list[tuple[JudgeModels, Path]]


def load_judges(config: Config) -> Judges:
    """Every judge on offer, the user's first, each with its file: read before any model
    loads, so a broken file stops start-up at once. Every ``*.json`` in those folders must
    be a judge: a broken one is an error that names it (:class:`ModelIntegrityError`)."""
    return [
        (JudgeModels.load(path), path)
        for folder in (user_judges(config), SHIPPED_JUDGES)
        for path in sorted(folder.glob("*.json"))
    ]


def judge_for(judges: Judges, identity: ModelIdentity) -> tuple[JudgeModels, Path] | None:
    """The first of ``judges`` fitted for ``identity``, with its file, or None."""
    return next(
        ((m, path) for m, path in judges if m.model is not None and m.model.matches(identity)),
        None,
    )

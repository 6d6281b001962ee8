"""The evaluation gate: which metrics of a run fall outside ``eval/thresholds.toml``."""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

THRESHOLDS = Path(__file__).with_name("thresholds.toml")


def check_thresholds(
    summary: Mapping[str, Any], path: Path = THRESHOLDS, suite: str | None = None
) -> list[str]:
    """Descriptions of every metric outside its threshold (empty when all pass).

    The seed set's limits are the file's top-level ``[min]``/``[max]`` tables; another
    suite's are ``[SUITE.min]``/``[SUITE.max]``.
    """
    limits = tomllib.loads(path.read_text())
    if suite:
        limits = limits.get(suite, {})
    failures = []
    for key, minimum in limits.get("min", {}).items():
        value = summary.get(key)
        if value is None or value < minimum:
            failures.append(f"{key} = {value} < {minimum}")
    for key, maximum in limits.get("max", {}).items():
        value = summary.get(key)
        if value is not None and value > maximum:
            failures.append(f"{key} = {value} > {maximum}")
    return failures

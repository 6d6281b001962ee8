"""Shared fixtures: one LLM engine for the session, and a headless Chromium for the browser tests.

The real-model tests share one loaded engine (llama.cpp's server, in this process): every
module's pipeline reaches it over HTTP as a team's app reaches ``qa serve-model``, so all
checks stay on (the client recognises llama.cpp's server by ``/props``; ``Answer.disabled``
is empty) and the ~1.2 GB model is loaded once instead of once per module. The tests of
the in-process engine itself (test_engine, test_models, test_scale_out, test_llm_server,
and the repaired model file in test_robustness) keep their own. Each module's pipelines
are closed when the module ends, so the session holds at most one module's at a time.
"""

from __future__ import annotations

import contextlib
import gc
import shutil
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from qa.models import LOCAL_MODEL_NAME

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ENGINE_MODEL = LOCAL_MODEL_NAME  # the name the engine serves its model under


@pytest.fixture(scope="session")
def engine() -> Iterator[Any]:
    """The session's one LLM engine (``qa.engine.LocalEngine``), started on first use."""
    from qa.config import Config
    from qa.engine import start_local_engine

    engine = start_local_engine(Config.from_env())
    try:
        yield engine
    finally:
        engine.close()


@pytest.fixture(scope="session")
def engine_flags(engine) -> list[str]:
    """``qa`` command-line flags that send a subprocess's model requests to the engine."""
    return ["--openai-base-url", f"{engine.url}/v1", "--openai-model", ENGINE_MODEL]


@pytest.fixture(scope="session")
def on_engine(engine) -> Callable[..., Any]:
    """``on_engine(**settings)``: ``Config.from_env(**settings)`` answered by the engine."""
    from qa.config import Config

    def config(**settings: Any) -> Config:
        return Config.from_env(
            openai_base_url=f"{engine.url}/v1", openai_model=ENGINE_MODEL, **settings
        )

    return config


def release_pipelines() -> None:
    """Close every pipeline ``qa.get_pipeline`` holds, and any other still alive.

    Each closes its client and, if it started one, its own engine; what a module built is
    then garbage, not carried into the next module.
    """
    pipeline_module = sys.modules.get("qa.pipeline")
    if pipeline_module is None:
        return  # this module never loaded a pipeline
    pipeline_module.close_pipelines()
    for thing in gc.get_objects():
        if isinstance(thing, pipeline_module.Pipeline):
            with contextlib.suppress(AttributeError):  # one whose start failed midway
                thing.close()
    gc.collect()


@pytest.fixture(scope="module", autouse=True)
def _release_pipelines_after_each_module() -> Iterator[None]:
    yield
    release_pipelines()


@pytest.fixture(scope="session")
def chromium() -> Iterator[object]:
    """A headless Chromium (``playwright.sync_api.Browser``), shared by the session.

    Uses the system browser at /usr/bin/chromium (``apt-get install chromium``); Playwright's
    own browser downloads are never used. A missing browser fails the test, it is not skipped.
    """
    from playwright.sync_api import sync_playwright

    executable = CHROMIUM if CHROMIUM.exists() else shutil.which("chromium")
    if not executable:
        pytest.fail("Chromium is missing: install it with `apt-get install -y chromium`")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(executable), args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield browser
        finally:
            browser.close()

"""Real servers on localhost for the scale-out tests: ``chroma run`` and ``qa serve-model``.

Each is a child process the tests start, stop (to see what the app does when it goes
away) and start again on the same port and data.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from served_app import free_port

from qa.config import Config
from qa.models import resolve_model_path

CHROMA = Path(sys.executable).with_name("chroma")


class ServerProcess:
    """A server as a child process: started, waited for, stopped, started again."""

    url: str
    ready_path: str  # polled until it answers
    log: Path
    start_timeout = 60.0

    def __init__(self) -> None:
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    def command(self) -> list[str]:
        raise NotImplementedError

    def ready(self, response: Any) -> bool:
        return True

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log.read_text()[-3000:]
            try:
                with urllib.request.urlopen(self.url + self.ready_path, timeout=2) as response:
                    if self.ready(response):
                        return
            except OSError:
                time.sleep(0.3)
        pytest.fail(f"{self.command()[:3]} did not start on {self.url}")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)

    @contextmanager
    def running(self) -> Iterator[ServerProcess]:
        self.start()
        try:
            yield self
        finally:
            self.stop()


class ChromaServer(ServerProcess):
    """``chroma run --path … --port …``: the index server."""

    ready_path = "/api/v2/heartbeat"

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path, self.log = path, path.parent / "chroma.log"
        self.url = f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        return [str(CHROMA), "run", "--path", str(self.path), "--port", str(self.port)]


class LlamaServer(ServerProcess):
    """``qa serve-model``: llama.cpp's own server on a GGUF, model name "qwen-local"."""

    ready_path = "/health"  # 503 while the model loads, 200 once it serves
    start_timeout = 180.0

    def __init__(self, model: Path, log: Path, parallel: int = 2) -> None:
        super().__init__()
        self.model, self.log, self.parallel = model, log, parallel
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self.root = f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        return [
            sys.executable, "-m", "qa", "serve-model", "--model", str(self.model),
            "--port", str(self.port), "--parallel", str(self.parallel),
        ]  # fmt: skip

    def ready(self, response: Any) -> bool:
        return json.load(response).get("status") == "ok"


def default_model() -> Path:
    """The default GGUF, assembled and verified as the app does."""
    config = Config.from_env()
    return resolve_model_path(config.model, config.model_cache_dir, config.model_sha256)

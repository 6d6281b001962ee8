"""Real servers on localhost for the scale-out tests: ``chroma run`` and ``llama_cpp.server``.

Each is a child process the tests start, stop (to see what the app does when it goes
away) and start again on the same port and data.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from served_app import free_port

CHROMA = Path(sys.executable).with_name("chroma")


class ChromaServer:
    """``chroma run --path … --port …`` as a child process that can be stopped and restarted."""

    def __init__(self, path: Path) -> None:
        self.path, self.port = path, free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        log = (self.path.parent / "chroma.log").open("ab")
        command = [str(CHROMA), "run", "--path", str(self.path), "--port", str(self.port)]
        self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{self.url}/api/v2/heartbeat", timeout=2):
                    return
            except OSError:
                time.sleep(0.3)
        pytest.fail(f"chroma run did not start on {self.url}")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)


class LlamaServer:
    """``python -m llama_cpp.server`` serving the default GGUF, stoppable and restartable."""

    def __init__(self, model: Path, log: Path) -> None:
        self.model, self.log, self.port = model, log, free_port()
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        command = [
            sys.executable, "-m", "llama_cpp.server", "--model", str(self.model),
            "--port", str(self.port), "--n_ctx", "4096", "--model_alias", "qwen-local",
            # Replicas send requests at once: queue them (the default cuts off the running one).
            "--interrupt_requests", "False",
        ]  # fmt: skip
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log.read_text()[-3000:]
            try:
                with urllib.request.urlopen(f"{self.url}/models", timeout=2) as response:
                    if json.load(response)["data"]:
                        return
            except OSError:
                time.sleep(0.5)
        pytest.fail("llama_cpp.server did not start")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)

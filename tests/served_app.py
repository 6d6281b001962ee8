"""Serving the real app in a subprocess for tests, and talking to it with gradio_client.

Shared by the UI tests and the robustness tests.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from eval.load_sessions import answer_part, chat

__all__ = ["answer_part", "chat"]  # shared with the load script (eval.load)

ROOT = Path(__file__).parents[1]
SEEDS = ROOT / "seeds"


def app_env() -> dict[str, str]:
    """Environment for a subprocess of ours: offline, unbuffered, importable from the repo."""
    return {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "GRADIO_ANALYTICS_ENABLED": "False",
        "PYTHONUNBUFFERED": "1",
        "PYTHONPATH": str(ROOT),
    }


@dataclass
class Served:
    """A running ``qa chat`` process."""

    url: str
    store: Path
    process: subprocess.Popen
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=30)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_app(base: Path, timeout: float, seeds: Path = SEEDS, extra: Sequence[str] = ()) -> Served:
    """Start ``qa chat`` on a free port with a fresh store under ``base``; wait until it serves.

    ``seeds`` is its documents folder: pass a copy when the test adds or removes documents.
    ``extra``: more ``qa chat`` flags (say, ``--chroma-url`` for a replica of a served index).
    """
    port = free_port()
    store, log_path = base / "store", base / "server.log"
    command = [
        sys.executable, "-m", "qa", "chat", "--port", str(port),
        "--store", str(store), "--seeds", str(seeds), *extra,
    ]  # fmt: skip
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, cwd=ROOT, env=app_env(), stdout=log, stderr=subprocess.STDOUT
        )
    served = Served(f"http://127.0.0.1:{port}/", store, process, log_path)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the app exited with {process.returncode}:\n{served.log()[-4000:]}")
        try:
            with urllib.request.urlopen(served.url, timeout=5) as response:
                if response.status == 200:
                    return served
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(1)
    served.stop()
    pytest.fail(f"the app did not serve {served.url} within {timeout} s:\n{served.log()[-4000:]}")


def client_for(served: Served):
    from gradio_client import Client

    return Client(served.url, verbose=False)

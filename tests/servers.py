"""Real servers on localhost for the scale-out tests: ``chroma run`` and ``qa serve-model``.

Each is a child process the tests start, stop (to see what the app does when it goes
away) and start again on the same port and data. ``chroma run`` checks no token (1.5.9),
so :class:`TokenProxy` stands in front of it as a deployment's proxy would, letting
through only requests that carry the bearer token.
"""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

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


# How a proxy turns away a request without the right token: nginx's plain 401 page, or
# the JSON 403 that Chroma's own token check (``chromadb.auth.token_authn``) answers.
REFUSALS = {
    "nginx": (401, "text/html", b"<html><head><title>401 Authorization Required</title></head>"
              b"<body><center><h1>401 Authorization Required</h1></center></body></html>"),
    "chroma": (403, "application/json", b'{"error": "AuthError", "message": "Forbidden"}'),
}  # fmt: skip
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length"}


class TokenProxy:
    """A reverse proxy on localhost in front of ``upstream`` that checks a bearer token.

    Requests with ``Authorization: Bearer <token>`` are forwarded as they are; any other
    gets the ``refusal`` (a key of :data:`REFUSALS`). Runs on a thread of this process.
    """

    def __init__(self, upstream: str, token: str, refusal: str = "nginx") -> None:
        self.upstream, self.token = urlparse(upstream), token
        self.refused = 0
        proxy = self
        status, content_type, body = REFUSALS[refusal]

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as the client expects

            def log_message(self, *args: Any) -> None:
                pass

            def _relay(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                data = self.rfile.read(length) if length else None
                if self.headers.get("Authorization") != f"Bearer {proxy.token}":
                    proxy.refused += 1
                    self._reply(status, [("Content-Type", content_type)], body)
                    return
                upstream = http.client.HTTPConnection(
                    proxy.upstream.hostname, proxy.upstream.port, timeout=60
                )
                try:
                    headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                    upstream.request(self.command, self.path, body=data, headers=headers)
                    response = upstream.getresponse()
                    kept = [
                        (k, v) for k, v in response.getheaders() if k.lower() not in _HOP_BY_HOP
                    ]
                    self._reply(response.status, kept, response.read())
                finally:
                    upstream.close()

            def _reply(self, code: int, headers: list[tuple[str, str]], payload: bytes) -> None:
                self.send_response(code)
                for key, value in headers:
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _relay

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    @contextmanager
    def running(self) -> Iterator[TokenProxy]:
        thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._server.shutdown()
            self._server.server_close()

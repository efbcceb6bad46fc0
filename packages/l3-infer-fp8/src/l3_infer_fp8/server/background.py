"""Uvicorn on 127.0.0.1 in a background thread (tests, the main-job stage, the benchmark)."""

from __future__ import annotations

import threading
import time

import uvicorn
from fastapi import FastAPI

from l3_infer_fp8.errors import InferError

LOCALHOST = "127.0.0.1"


class BackgroundServer:
    """``with BackgroundServer(app) as s: s.base_url``: a free port, shut down gracefully."""

    def __init__(self, app: FastAPI, port: int = 0, start_timeout_s: float = 60.0) -> None:
        config = uvicorn.Config(
            app, host=LOCALHOST, port=port, log_level="warning", timeout_graceful_shutdown=30
        )
        self.server = uvicorn.Server(config)
        self.start_timeout_s = start_timeout_s
        self._thread = threading.Thread(target=self.server.run, name="l3-infer-http", daemon=True)

    @property
    def base_url(self) -> str:
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://{LOCALHOST}:{port}"

    def __enter__(self) -> BackgroundServer:
        self._thread.start()
        deadline = time.monotonic() + self.start_timeout_s
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise InferError(f"the HTTP server did not start within {self.start_timeout_s} s")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self._thread.join(timeout=60)

"""The engine in a background thread: submit from any thread, stream outputs, cancel, drain.

Each request's outputs go to its callback (called on the engine thread: keep it short, e.g.
``loop.call_soon_threadsafe``) or, without one, to a queue its :class:`RequestHandle` iterates.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence

from l3_infer_fp8.engine.engine import Engine
from l3_infer_fp8.engine.request import RequestOutput
from l3_infer_fp8.engine.sampling import SamplingParams
from l3_infer_fp8.errors import InferError

log = logging.getLogger(__name__)

OnOutput = Callable[[RequestOutput], None]


class EngineStoppedError(InferError):
    """The engine is shutting down and takes no new requests (the server answers 503)."""


class RequestHandle:
    def __init__(self, loop: EngineLoop, request_id: str, q: queue.Queue | None) -> None:
        self.loop = loop
        self.request_id = request_id
        self._queue = q

    def __iter__(self) -> Iterator[RequestOutput]:
        """Outputs as the engine produces them, ending with the finished one."""
        if self._queue is None:
            raise InferError("this request streams to its callback, not to an iterator")
        while True:
            out = self._queue.get()
            yield out
            if out.finished:
                return

    def result(self) -> tuple[list[int], str, str | None]:
        """Block until done: (token ids, text, finish reason)."""
        ids, text, reason = [], "", None
        for out in self:
            ids += out.new_token_ids
            text += out.new_text
            reason = out.finish_reason
        return ids, text, reason

    def cancel(self) -> None:
        self.loop.abort(self.request_id)


class EngineLoop:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._callbacks: dict[str, OnOutput] = {}
        self._accepting = True
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="l3-infer-engine", daemon=True)
        self._started = False
        self._window: list[tuple[float, int]] = []  # (time, tokens) of recent steps

    def start(self) -> EngineLoop:
        if not self._started:
            self._started = True
            self._thread.start()
        return self

    def submit(
        self,
        prompt_ids: Sequence[int],
        params: SamplingParams,
        on_output: OnOutput | None = None,
        request_id: str | None = None,
    ) -> RequestHandle:
        """Queue a request (errors for bad fields and a full queue are raised here)."""
        q: queue.Queue | None = None
        if on_output is None:
            q = queue.Queue()
            on_output = q.put
        with self._wake:
            if not self._accepting:
                raise EngineStoppedError("the engine is shutting down")
            rid = self.engine.add_request(prompt_ids, params, request_id)
            self._callbacks[rid] = on_output
            self._wake.notify()
        return RequestHandle(self, rid, q)

    def abort(self, request_id: str) -> None:
        with self._lock:
            out = self.engine.abort(request_id)
            callback = self._callbacks.pop(request_id, None)
        if out is not None and callback is not None:
            callback(out)

    def stats(self) -> dict[str, float]:
        with self._lock:
            stats: dict[str, float] = dict(self.engine.stats())
            now = time.monotonic()
            recent = [(t, n) for t, n in self._window if now - t <= 10.0]
        span = now - recent[0][0] if len(recent) > 1 else 0.0
        stats["tokens_per_s"] = sum(n for _, n in recent[1:]) / span if span > 0 else 0.0
        return stats

    def stop(self, drain_s: float = 10.0) -> None:
        """Stop taking requests, let running ones finish for up to ``drain_s``, cancel the rest."""
        with self._wake:
            self._accepting = False
        deadline = time.monotonic() + drain_s
        while time.monotonic() < deadline:
            with self._lock:
                if not self.engine.has_unfinished():
                    break
            time.sleep(0.02)
        with self._lock:
            remaining = list(self.engine.requests)
        for rid in remaining:
            self.abort(rid)
        with self._wake:
            self._stopping = True
            self._wake.notify()
        if self._started:
            self._thread.join(timeout=30)

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._stopping and not self.engine.has_unfinished():
                    self._wake.wait()
                if self._stopping:
                    return
                try:
                    outputs = self.engine.step()
                except Exception:  # a failed step must not leave clients waiting forever
                    log.exception("engine step failed; cancelling every request")
                    outputs = [
                        o
                        for rid in list(self.engine.requests)
                        if (o := self.engine.abort(rid)) is not None
                    ]
                calls = [(self._callbacks.get(o.request_id), o) for o in outputs]
                for o in outputs:
                    if o.finished:
                        self._callbacks.pop(o.request_id, None)
                self._window = [
                    *self._window[-200:],
                    (time.monotonic(), sum(len(o.new_token_ids) for o in outputs)),
                ]
            for callback, out in calls:
                if callback is not None:
                    callback(out)

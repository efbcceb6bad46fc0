"""The background loop: streaming iterators, callbacks, cancellation, the bounded queue and
draining on stop."""

from __future__ import annotations

import threading

import pytest

from l3_infer_fp8.engine import Engine, EngineConfig, SamplingParams
from l3_infer_fp8.engine.loop import EngineLoop, EngineStoppedError
from l3_infer_fp8.errors import QueueFullError


def test_streams_equal_the_direct_result_and_cancel_frees_blocks(model):
    want = Engine(model).generate([[4, 5, 6]], SamplingParams(max_tokens=8))[0]
    loop = EngineLoop(Engine(model, EngineConfig(num_blocks=64))).start()
    try:
        handles = [loop.submit([4, 5, 6], SamplingParams(max_tokens=8)) for _ in range(3)]
        long = loop.submit([1, 2], SamplingParams(max_tokens=400))
        results = [h.result() for h in handles]
        assert all(r[0] == want and r[2] == "length" for r in results)
        long.cancel()
        ids, _, reason = long.result()
        assert reason == "abort" and len(ids) < 400
        assert loop.stats()["kv_blocks_used"] == 0
    finally:
        loop.stop(drain_s=0)


def test_full_queue_is_refused_and_stop_cancels_what_is_left(model):
    engine = Engine(model, EngineConfig(num_blocks=64, max_waiting=2, max_running=1))
    loop = EngineLoop(engine)  # not started: nothing leaves the queue
    done = threading.Event()
    reasons = []

    def on_output(out):
        if out.finished:
            reasons.append(out.finish_reason)
            done.set()

    loop.submit([1], SamplingParams(max_tokens=4), on_output=on_output)
    loop.submit([2], SamplingParams(max_tokens=4))
    with pytest.raises(QueueFullError, match="waiting queue is full"):
        loop.submit([3], SamplingParams(max_tokens=4))
    loop.stop(drain_s=0)
    assert reasons == ["abort"] and not engine.has_unfinished()
    with pytest.raises(EngineStoppedError):
        loop.submit([3], SamplingParams(max_tokens=4))


def test_stop_lets_running_requests_finish_within_the_drain_time(model):
    loop = EngineLoop(Engine(model, EngineConfig(num_blocks=64))).start()
    h = loop.submit([1, 2, 3], SamplingParams(max_tokens=5))
    loop.stop(drain_s=60)
    ids, _, reason = h.result()
    assert reason == "length" and len(ids) == 5

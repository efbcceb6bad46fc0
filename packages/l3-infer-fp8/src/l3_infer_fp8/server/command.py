"""``l3-infer-fp8 serve``: the OpenAI-compatible server on a checkpoint directory."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from l3_core.cli_runner import Command
from l3_infer_fp8.errors import InferModelError

log = logging.getLogger(__name__)


# Part A's quantiser (module:function taking and returning the Transformer), looked up only
# with --fp8 so that the server runs without it.
def _configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", required=True, type=Path, help="HF or l3 checkpoint directory")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--fp8", action="store_true", help="serve with FP8 row-wise FFN linears")
    p.add_argument("--model-name", help="the served model id (default: the directory name)")
    p.add_argument(
        "--tokenizer", type=Path, help="tokenizer file (default: CHECKPOINT/tokenizer.model)"
    )
    p.add_argument("--guard", action="store_true", help="check conversations with l3-guard")
    p.add_argument("--dtype", choices=("float32", "bfloat16"), default=None)
    p.add_argument("--block-size", type=int, default=16)
    p.add_argument("--kv-cache-mib", type=float, default=1024.0)
    p.add_argument("--max-running", type=int, default=64)
    p.add_argument("--max-waiting", type=int, default=256)
    p.add_argument("--max-batched-tokens", type=int, default=512)
    p.add_argument(
        "--drain-seconds",
        type=float,
        default=10.0,
        help="on shutdown, let running requests finish this long, then cancel them",
    )


def build_state(opts: argparse.Namespace):
    """Load the model, tokenizer, engine and guard the options name."""
    import torch

    from l3_core import Tokenizer
    from l3_infer_fp8.checkpoint import load_model
    from l3_infer_fp8.engine import Engine, EngineConfig
    from l3_infer_fp8.engine.loop import EngineLoop
    from l3_infer_fp8.server.app import ServerState
    from l3_infer_fp8.server.guard import ServerGuard, load_guard

    tok_path = opts.tokenizer or opts.checkpoint / "tokenizer.model"
    if not tok_path.is_file():
        raise InferModelError(f"{tok_path}: tokenizer not found (pass --tokenizer FILE)")
    tokenizer = Tokenizer.from_file(tok_path)
    dtype = getattr(torch, opts.dtype) if opts.dtype else None
    # A pre-quantised checkpoint serves in FP8 whatever --fp8 says; --fp8 quantises at load
    # with the paper's recipe (FFN w1/w3/w2, first and last layers skipped, bound 1200).
    model = load_model(opts.checkpoint, fp8=opts.fp8, dtype=dtype)
    config = EngineConfig(
        block_size=opts.block_size,
        kv_cache_mib=opts.kv_cache_mib,
        max_running=opts.max_running,
        max_waiting=opts.max_waiting,
        max_batched_tokens=opts.max_batched_tokens,
    )
    engine = Engine(model, config, tokenizer, stop_token_ids=tokenizer.stop_tokens)
    guard = ServerGuard(load_guard()) if opts.guard else None
    name = opts.model_name or opts.checkpoint.resolve().name
    return ServerState(EngineLoop(engine), tokenizer, name, guard, opts.drain_seconds)


def _serve(opts: argparse.Namespace) -> int:
    import uvicorn

    from l3_infer_fp8.server.app import create_app

    state = build_state(opts)
    log.info("serving %s on http://%s:%d", state.model_name, opts.host, opts.port)
    uvicorn.run(
        create_app(state),
        host=opts.host,
        port=opts.port,
        log_level="info",
        timeout_graceful_shutdown=int(opts.drain_seconds) + 5,
    )
    return 0


SERVE_COMMAND = Command("serve", "serve a checkpoint with the OpenAI API", _configure, _serve)

"""Main-job stage: serve the ``core`` stage's model with l3-infer-fp8 and chat with it.

Loads the last checkpoint the ``core`` stage wrote (with the built-in corpus's tokenizer),
serves it on 127.0.0.1 through the OpenAI-compatible app (through l3-guard when it is
installed), sends concurrent chat requests with the official ``openai`` client and prints the
answers and the tokens/s.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

CONCURRENT = 8
QUESTIONS = [
    "Write a function that reads a file.",
    "def parse_args(argv):",
    "How do I sort a list of tuples?",
    "class Stack:",
    "Explain what a context manager does.",
    "import os\n\ndef walk(path):",
    "What does functools.lru_cache do?",
    "def tokenize(text):",
]


def run(workdir: Path) -> dict:
    import openai

    from l3_core import Tokenizer, load_checkpoint
    from l3_core.corpus import stdlib_shards
    from l3_infer_fp8.engine import Engine, EngineConfig
    from l3_infer_fp8.engine.loop import EngineLoop
    from l3_infer_fp8.server.app import ServerState, create_app
    from l3_infer_fp8.server.background import BackgroundServer
    from l3_infer_fp8.server.guard import ServerGuard

    workdir.mkdir(parents=True, exist_ok=True)
    checkpoints = sorted((workdir.parent / "core" / "checkpoints").glob("step_*"))
    if not checkpoints:
        raise SystemExit("infer_fp8 needs the core stage's checkpoint: run --only core,infer_fp8")
    model = load_checkpoint(checkpoints[-1])
    tok = Tokenizer.from_file(stdlib_shards() / "tokenizer.model")
    engine = Engine(model, EngineConfig(max_running=CONCURRENT), tok, tok.stop_tokens)
    guard = None
    try:
        from l3_guard import Guard

        guard = ServerGuard(Guard())
    except ImportError:
        pass
    state = ServerState(EngineLoop(engine), tok, checkpoints[-1].name, guard)
    with BackgroundServer(create_app(state)) as server:
        client = openai.OpenAI(
            base_url=server.base_url + "/v1", api_key="unused", max_retries=0, timeout=600
        )

        def ask(q: str):
            return client.chat.completions.create(
                model=state.model_name,
                messages=[{"role": "user", "content": q}],
                max_tokens=48,
                temperature=0.7,
                top_p=0.9,
                seed=0,
            )

        t0 = time.perf_counter()
        with ThreadPoolExecutor(CONCURRENT) as pool:
            answers = list(pool.map(ask, QUESTIONS[:CONCURRENT]))
        elapsed = time.perf_counter() - t0
    tokens = sum(a.usage.completion_tokens for a in answers)
    text = "\n\n".join(
        f"Q: {q}\nA: {a.choices[0].message.content}" for q, a in zip(QUESTIONS, answers)
    )
    (workdir / "answers.txt").write_text(text + "\n")
    print(text)
    return {
        "requests": len(answers),
        "completion_tokens": tokens,
        "tokens_per_s": round(tokens / elapsed, 1),
        "guard": guard is not None,
        "refused": sum(a.choices[0].finish_reason == "content_filter" for a in answers),
        "answers_txt": str(workdir / "answers.txt"),
    }

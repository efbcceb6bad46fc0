"""Main-job stage: serve the main job's model in FP8 with l3-infer-fp8 and chat with it.

Loads the ``align`` stage's DPO policy when that stage ran, else the last checkpoint the
``core`` stage wrote (with the built-in corpus's tokenizer), quantises its FFN GEMMs to FP8 the
paper's way (bf16 elsewhere, first and last blocks skipped), serves it on 127.0.0.1 through the
OpenAI-compatible app (through l3-guard when it is installed), sends concurrent chat requests
with the official ``openai`` client, and prints the answers, the tokens/s and the FP8 model's
agreement with its bf16 original on the conversations it served (top-1 and KL per token).
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


def served_checkpoint(workdir: Path) -> tuple[Path, Path]:
    """The checkpoint to serve and its tokenizer: the aligned policy when present."""
    from l3_core.corpus import stdlib_shards

    aligned = workdir.parent / "align" / "dpo" / "final"
    if (aligned / "tokenizer.model").is_file():
        return aligned, aligned / "tokenizer.model"
    checkpoints = sorted((workdir.parent / "core" / "checkpoints").glob("step_*"))
    if not checkpoints:
        raise SystemExit("infer_fp8 needs the core stage's checkpoint: run --only core,infer_fp8")
    return checkpoints[-1], stdlib_shards() / "tokenizer.model"


def run(workdir: Path) -> dict:
    import openai

    from l3_core import Tokenizer
    from l3_infer_fp8.checkpoint import load_model
    from l3_infer_fp8.engine import Engine, EngineConfig
    from l3_infer_fp8.engine.loop import EngineLoop
    from l3_infer_fp8.quality import compare
    from l3_infer_fp8.server.app import ServerState, create_app
    from l3_infer_fp8.server.background import BackgroundServer
    from l3_infer_fp8.server.guard import ServerGuard

    workdir.mkdir(parents=True, exist_ok=True)
    checkpoint, tokenizer = served_checkpoint(workdir)
    model = load_model(checkpoint, fp8=True)
    tok = Tokenizer.from_file(tokenizer)
    engine = Engine(model, EngineConfig(max_running=CONCURRENT), tok, tok.stop_tokens)
    guard = None
    try:
        from l3_guard import Guard

        guard = ServerGuard(Guard())
    except ImportError:
        pass
    state = ServerState(EngineLoop(engine), tok, checkpoint.name, guard)
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
    served = [
        tok.encode(f"{q} {a.choices[0].message.content}", bos=True, eos=False)
        for q, a in zip(QUESTIONS, answers)
    ]
    agreement = compare(load_model(checkpoint), model, [s for s in served if len(s) >= 2])
    return {
        "checkpoint": str(checkpoint),
        "fp8_modules": "FFN w1/w3/w2 of every block but the first and the last",
        "fp8_vs_bf16_tokens": agreement.tokens,
        "fp8_vs_bf16_top1_agreement": round(agreement.top1_agreement, 4),
        "fp8_vs_bf16_kl_mean": float(f"{agreement.kl_mean:.3g}"),
        "requests": len(answers),
        "completion_tokens": tokens,
        "tokens_per_s": round(tokens / elapsed, 1),
        "guard": guard is not None,
        "refused": sum(a.choices[0].finish_reason == "content_filter" for a in answers),
        "answers_txt": str(workdir / "answers.txt"),
    }

"""bf16 vs FP8 row-wise prefill and decode on one GPU, for ~1B and 8B-shaped random-weight
Llama 3 models; torchao's ``Float8DynamicActivationFloat8WeightConfig(granularity=PerRow())``
on the same modules is the peer when torchao imports.

Each model is built once in bf16 (random weights: speed does not depend on them); the FP8
variants quantise the same FFN linears (the paper's selection: w1/w3/w2, first and last block
in bf16). Prefill: one forward over ``--prompt`` tokens (batch ``--batch``); decode: l3-core's
``generate`` for ``--new`` tokens after a 16-token prompt. Prints one JSON line per
(model, path) and the speed-up over bf16; the bf16 matmul peak is measured in the same run.

    python benchmarks/gpu/bench_infer_fp8.py [--presets llama3.2-1b,llama3.1-8b] [--prompt 2048]

On a CPU it runs as a smoke test: ``--presets llama3-tiny --prompt 64 --new 4``.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parents[1]))
from common import machine_peak

from l3_core import ModelArgs
from l3_core.model import Transformer, generate
from l3_infer_fp8.quant import Fp8Recipe, apply_recipe


def _torchao(model: Transformer) -> Transformer | None:
    try:
        from torchao.quantization import (
            Float8DynamicActivationFloat8WeightConfig,
            PerRow,
            quantize_,
        )
    except ImportError:
        return None
    skipped = set(Fp8Recipe().skipped(len(model.layers)))
    targets = {
        f"layers.{i}.feed_forward.{p}"
        for i in range(len(model.layers))
        if i not in skipped
        for p in ("w1", "w3", "w2")
    }
    peer = copy.deepcopy(model)
    quantize_(
        peer,
        Float8DynamicActivationFloat8WeightConfig(granularity=PerRow()),
        filter_fn=lambda _m, fqn: fqn in targets,
    )
    return peer


def _time(fn, device: torch.device, repeats: int) -> float:
    fn()
    best = float("inf")
    for _ in range(repeats):
        torch.cuda.synchronize(device) if device.type == "cuda" else None
        t0 = time.perf_counter()
        fn()
        torch.cuda.synchronize(device) if device.type == "cuda" else None
        best = min(best, time.perf_counter() - t0)
    return best


def bench(preset: str, device: torch.device, opts: argparse.Namespace) -> list[dict]:
    args = ModelArgs.from_preset(preset)
    base = Transformer.build(args, device=device, dtype=torch.bfloat16, seed=0).eval()
    paths = {"bf16": base}
    fp8 = copy.deepcopy(base)
    apply_recipe(fp8, Fp8Recipe(), backend=opts.backend)
    paths["l3-fp8"] = fp8
    peer = _torchao(base)
    if peer is not None:
        paths["torchao-perrow"] = peer
    g = torch.Generator().manual_seed(0)
    tokens = torch.randint(0, args.vocab_size, (opts.batch, opts.prompt), generator=g).to(device)
    prompt = tokens[0, :16].tolist()
    rows = []
    for name, model in paths.items():
        with torch.inference_mode():
            prefill = _time(lambda m=model: m(tokens), device, opts.repeats)
        decode = _time(
            lambda m=model: generate(m, [prompt], opts.new), device, max(1, opts.repeats // 2)
        )
        rows.append(
            {
                "preset": preset,
                "path": name,
                "device": str(device),
                "prefill_tokens_per_s": opts.batch * opts.prompt / prefill,
                "decode_tokens_per_s": opts.new / decode,
            }
        )
    for r in rows:
        r["prefill_speedup_vs_bf16"] = r["prefill_tokens_per_s"] / rows[0]["prefill_tokens_per_s"]
        r["decode_speedup_vs_bf16"] = r["decode_tokens_per_s"] / rows[0]["decode_tokens_per_s"]
        print(json.dumps(r), flush=True)
    del paths, base, fp8, peer
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", default="llama3.2-1b,llama3.1-8b")
    parser.add_argument("--prompt", type=int, default=2048)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--new", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--backend", default="auto")
    opts = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    print(
        json.dumps(
            {
                "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
                "torch": torch.__version__,
                "bf16_matmul_peak_tflops": machine_peak(torch.bfloat16, device) / 1e12,
            }
        ),
        flush=True,
    )
    for preset in opts.presets.split(","):
        bench(preset, device, opts)


if __name__ == "__main__":
    main()

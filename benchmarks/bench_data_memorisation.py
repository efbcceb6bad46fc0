"""``l3-data memorisation``'s check against greedy decoding with transformers, same weights.

A small Llama 3 is trained until it has memorised half of a set of random token documents;
both sides then decide, for the same seeded windows (an n-token prompt and the next m
tokens), whether greedy decoding reproduces the m tokens: ours in one forward pass over
prompt + ground truth (the argmax at every ground-truth position, which is what greedy
decoding would emit up to its first miss), transformers' ``generate`` token by token. The
rates must agree; windows/s of both and the ratio are printed, with the matmul peak.

    python benchmarks/bench_data_memorisation.py [--docs 64] [--prompt 50] [--target 50]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from transformers import LlamaForCausalLM

sys.path.insert(0, str(Path(__file__).parent))
from common import best_of_interleaved, machine_peak, report

from l3_core import ModelArgs, Transformer, save_checkpoint
from l3_core.shards import ShardDataset, write_manifest, write_shard
from l3_data.memorisation import measure_memorisation, sample_windows

VOCAB = 256


def memorised_model(docs: np.ndarray, steps: int) -> Transformer:
    """A 4-layer model trained on the first half of ``docs`` until it reproduces them."""
    torch.manual_seed(0)
    args = ModelArgs(
        dim=128, n_layers=4, n_heads=4, vocab_size=VOCAB, multiple_of=64, max_seq_len=256
    )
    model = Transformer(args)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    seen = torch.as_tensor(docs[: len(docs) // 2])
    for _ in range(steps):
        loss = model.loss(seen[:, :-1], seen[:, 1:])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


def peer_rate(peer: LlamaForCausalLM, windows: list, prompt: int, batch: int) -> float:
    """Share of windows whose ``generate`` greedy continuation equals the ground truth."""
    exact = 0
    for lo in range(0, len(windows), batch):
        tokens = torch.as_tensor(
            np.stack([w.tokens.astype(np.int64) for w in windows[lo : lo + batch]])
        )
        with torch.inference_mode():
            out = peer.generate(
                tokens[:, :prompt],
                attention_mask=torch.ones_like(tokens[:, :prompt]),
                max_new_tokens=tokens.shape[1] - prompt,
                min_new_tokens=tokens.shape[1] - prompt,
                do_sample=False,
                pad_token_id=0,
            )
        exact += int((out[:, prompt:] == tokens[:, prompt:]).all(dim=1).sum())
    return exact / len(windows)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--docs", type=int, default=64)
    p.add_argument("--prompt", type=int, default=50)
    p.add_argument("--target", type=int, default=50)
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3)
    opts = p.parse_args()
    torch.set_num_threads(opts.threads)
    length = opts.prompt + opts.target
    docs = np.random.default_rng(0).integers(0, VOCAB, size=(opts.docs, length))
    t0 = time.perf_counter()
    model = memorised_model(docs, opts.steps)
    print(f"trained a {model.num_params():,}-parameter model in {time.perf_counter() - t0:.0f} s")
    peak = machine_peak(torch.float32)
    print(f"fp32 matmul peak, measured now: {peak / 1e9:,.0f} GFLOP/s")
    with tempfile.TemporaryDirectory() as tmp:
        shards = Path(tmp) / "shards"
        half = opts.docs // 2
        rows = [(d, "seen") for d in docs[:half]] + [(d, "unseen") for d in docs[half:]]
        write_shard(shards, "a", rows, vocab_size=VOCAB, tokenizer="random")
        write_manifest(shards)
        dataset = ShardDataset(shards)
        save_checkpoint(model, Path(tmp) / "hf", format="hf")
        peer = LlamaForCausalLM.from_pretrained(Path(tmp) / "hf", attn_implementation="sdpa")
        peer.eval()
        windows, _ = sample_windows(dataset, opts.docs, opts.prompt, opts.target, seed=0)

        results: dict[str, float] = {}

        def run_ours() -> None:
            scenario = measure_memorisation(
                model, dataset, prompt_lengths=(opts.prompt,), target_length=opts.target,
                samples=opts.docs, batch_size=opts.batch,
            )["scenarios"][0]  # fmt: skip
            results["ours"] = scenario["rate"]

        def run_peer() -> None:
            results["peer"] = peer_rate(peer, windows, opts.prompt, opts.batch)

        # Both include reading their windows' tokens; ours also samples them from the shards.
        best = best_of_interleaved({"ours": run_ours, "peer": run_peer}, repeats=opts.repeats)
        t_ours, t_peer = best["ours"], best["peer"]
        ours, theirs = results["ours"], results["peer"]
    print(
        f"exact-reproduction rate ({opts.prompt}-token prompts, {opts.target}-token targets, "
        f"{len(windows)} windows, half of them memorised): ours {ours:.3f}, "
        f"transformers generate {theirs:.3f}"
    )
    if abs(ours - theirs) > 1e-9:
        raise SystemExit("the rates disagree: the one-pass check is not greedy decoding")
    report("memorisation check, windows/s", len(windows) / t_ours, len(windows) / t_peer,
           "windows/s", "transformers")  # fmt: skip


if __name__ == "__main__":
    main()

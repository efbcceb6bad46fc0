"""l3-core's Transformer vs transformers' LlamaForCausalLM with the same weights, on this CPU.

Prints forward+backward tokens/s (fp32 and bf16 autocast; the loss computed by the same code on
each model's logits, and by each library's own loss API), KV-cache greedy decode tokens/s at
batch 1, and the training step's achieved FLOP/s as a fraction of the measured matmul peak.
Ours runs with :mod:`l3_core.kernels` on (the CPU backend on a CPU; plain elsewhere).
"""

from __future__ import annotations

import argparse
import itertools
import sys
import tempfile
from pathlib import Path

import torch
from transformers import LlamaForCausalLM

sys.path.insert(0, str(Path(__file__).parent))
from common import best_of_interleaved, machine_peak, report, synced

from l3_core import ModelArgs, Transformer, generate, kernels, load_checkpoint, save_checkpoint


def train_step(model, tokens, hf: bool, dtype, own_loss: bool):
    """Forward + backward. ``own_loss``: each library's loss API (transformers' ``labels=``,
    ours ``Transformer.loss``); otherwise the same cross-entropy code on the returned logits."""
    with torch.autocast(tokens.device.type, dtype=torch.bfloat16, enabled=dtype == torch.bfloat16):
        if own_loss and hf:
            loss = model(tokens, labels=tokens).loss
        elif own_loss:
            targets = torch.cat([tokens[:, 1:], torch.full_like(tokens[:, :1], -100)], dim=1)
            loss = model.loss(tokens, targets)
        else:
            logits = model(tokens).logits if hf else model(tokens)
    if not own_loss:
        loss = torch.nn.functional.cross_entropy(
            logits[:, :-1].flatten(0, 1).float(), tokens[:, 1:].flatten()
        )
    loss.backward()
    model.zero_grad(set_to_none=True)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--preset", default="llama3-20m")
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--seq", type=int, default=512)
    p.add_argument("--decode-tokens", type=int, default=128)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--device", default="cpu", help="cpu or cuda (see benchmarks/gpu/)")
    p.add_argument("--only", choices=("train", "decode"), help="run one half of the benchmark")
    opts = p.parse_args()
    torch.set_num_threads(opts.threads)
    args = ModelArgs.from_preset(opts.preset)
    device = torch.device(opts.device)
    ours = Transformer.build(args, seed=0)
    with tempfile.TemporaryDirectory() as tmp:
        save_checkpoint(ours, Path(tmp) / "hf", format="hf")
        peer = LlamaForCausalLM.from_pretrained(Path(tmp) / "hf", attn_implementation="sdpa").to(
            device
        )
        ours = load_checkpoint(Path(tmp) / "hf", device=device)
    kernels.for_device(ours)  # ours as users run it: the CPU kernels on a CPU
    ours.train()
    peer.train()
    n = args.num_params()
    print(
        f"preset {opts.preset}: {n / 1e6:.1f}M parameters, batch {opts.batch} x seq {opts.seq}, "
        f"{torch.get_num_threads()} threads"
    )
    tokens = torch.randint(0, args.vocab_size, (opts.batch, opts.seq), device=device)
    ntok = opts.batch * opts.seq
    flops_per_step = args.flops_per_token(opts.seq) * ntok
    peaks = {dt: machine_peak(dt, device) for dt in (torch.float32, torch.bfloat16)}
    print(
        f"matmul peak: fp32 {peaks[torch.float32] / 1e9:.0f} GFLOP/s, bf16 {peaks[torch.bfloat16] / 1e9:.0f} GFLOP/s"
    )
    for dtype, own_loss in itertools.product((torch.float32, torch.bfloat16), (False, True)):
        if opts.only == "decode":
            break
        t = best_of_interleaved(
            {
                "ours": synced(
                    lambda d=dtype, o=own_loss: train_step(ours, tokens, False, d, o), device
                ),
                "peer": synced(
                    lambda d=dtype, o=own_loss: train_step(peer, tokens, True, d, o), device
                ),
            },
            repeats=opts.repeats,
        )
        t_ours, t_peer = t["ours"], t["peer"]
        name = (
            f"fwd+bwd tok/s ({'bf16 autocast' if dtype == torch.bfloat16 else 'fp32'}, "
            f"{'own loss API' if own_loss else 'CE on logits'})"
        )
        report(name, ntok / t_ours, ntok / t_peer, "tok/s", "transformers")
        mfu = flops_per_step / t_ours / peaks[dtype]
        mfu_peer = flops_per_step / t_peer / peaks[dtype]
        print(
            f"{'  achieved FLOP/s / matmul peak':<44} ours {mfu:>12.1%}           transformers {mfu_peer:>8.1%}"
        )

    if opts.only == "train":
        return
    ours.eval()
    peer.eval()
    prompt = torch.randint(0, args.vocab_size, (1, 16), device=device)
    k = opts.decode_tokens

    def ours_decode():
        generate(ours, prompt.tolist(), max_new_tokens=k)

    def peer_decode():
        with torch.inference_mode():
            peer.generate(prompt, max_new_tokens=k, min_new_tokens=k, do_sample=False)

    same = generate(ours, prompt.tolist(), max_new_tokens=32)[0]
    with torch.inference_mode():
        ref = peer.generate(prompt, max_new_tokens=32, do_sample=False)[0, 16:].tolist()
    print(f"greedy decode agrees with transformers on 32 tokens: {same == ref}")
    for dtype in (torch.float32, torch.bfloat16):
        ours.to(dtype)
        peer.to(dtype)
        t = best_of_interleaved(
            {"ours": synced(ours_decode, device), "peer": synced(peer_decode, device)},
            repeats=opts.repeats,
        )
        report(
            f"greedy decode tok/s (batch 1, KV cache, {str(dtype).removeprefix('torch.')})",
            k / t["ours"],
            k / t["peer"],
            "tok/s",
            "transformers",
        )


if __name__ == "__main__":
    main()

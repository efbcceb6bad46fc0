"""l3-vision against transformers' Mllama with the same weights, in the same run.

Figures: image-encoder images/s, full-model prefill tokens/s (text + one image), and the cost
of the cross-attention layers over the text-only model. Small shapes by default (CPU);
``--preset 11b-shapes`` is not offered: the script builds random weights of a small config.

    python benchmarks/bench_vision_model.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from common import best_of, matmul_peak


def _config():
    from transformers import MllamaConfig

    return MllamaConfig(
        vision_config=dict(
            hidden_size=256,
            num_hidden_layers=8,
            num_global_layers=2,
            attention_heads=4,
            intermediate_size=1024,
            vision_output_dim=256 * 3,
            image_size=112,
            patch_size=14,
            intermediate_layers_indices=[3, 7],
            max_num_tiles=4,
        ),
        text_config=dict(
            vocab_size=2048,
            hidden_size=256,
            num_hidden_layers=10,
            num_attention_heads=8,
            num_key_value_heads=2,
            intermediate_size=768,
            cross_attention_layers=[3, 8],
            pad_token_id=2047,
            bos_token_id=1,
            eos_token_id=2,
        ),
        image_token_index=2048,
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--seq", type=int, default=256)
    opts = p.parse_args(argv)
    from transformers import MllamaForConditionalGeneration

    from l3_vision import load_checkpoint
    from l3_vision.preprocess import ImageBatch

    torch.manual_seed(0)
    hf = MllamaForConditionalGeneration(_config()).eval()
    with tempfile.TemporaryDirectory() as d:
        hf.save_pretrained(d)
        ours = load_checkpoint(d)
    b, t = 2, 4
    pixels = torch.randn(b, 1, t, 3, 112, 112)
    ids = torch.full((b, 1), 6)  # 2x2 tiles
    mask = torch.ones(b, 1, t, dtype=torch.long)
    images = ImageBatch(pixels, ids, mask, [[t]] * b)
    tokens = torch.randint(0, 2048, (b, opts.seq))
    tokens[:, 0] = 2048
    xmask = torch.ones(b, opts.seq, 1, t, dtype=torch.long)

    with torch.no_grad():
        rows = {
            "encoder images/s": (
                lambda: ours.encoder(pixels, ids, mask),
                lambda: hf.model.vision_model(
                    pixel_values=pixels, aspect_ratio_ids=ids, aspect_ratio_mask=mask
                ),
                b,
            ),
            "prefill tokens/s (text + image)": (
                lambda: ours(tokens, images, xmask),
                lambda: hf(
                    input_ids=tokens,
                    pixel_values=pixels,
                    aspect_ratio_ids=ids,
                    aspect_ratio_mask=mask,
                    cross_attention_mask=xmask,
                    use_cache=False,
                ),
                b * opts.seq,
            ),
            "prefill tokens/s (text only)": (
                lambda: ours(tokens.clamp(max=2047)),
                lambda: hf(input_ids=tokens.clamp(max=2047), use_cache=False),
                b * opts.seq,
            ),
        }
        print(f"matmul peak in this run: {matmul_peak(torch.float32, n=1024) / 1e12:.3f} TFLOP/s")
        print(f"{'figure':34s} {'l3-vision':>12s} {'transformers':>14s} {'ratio':>7s}")
        times = {}
        for name, (ours_fn, hf_fn, n) in rows.items():
            t_ours, t_hf = best_of(ours_fn, opts.repeats), best_of(hf_fn, opts.repeats)
            times[name] = t_ours
            print(f"{name:34s} {n / t_ours:12.1f} {n / t_hf:14.1f} {t_hf / t_ours:7.2f}")
        cost = times["prefill tokens/s (text + image)"] / times["prefill tokens/s (text only)"]
        print(f"cross-attention + encoder cost over text only (l3-vision): x{cost:.2f} time")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Speech encoder throughput: feature extraction and the Conformer, ours vs torchaudio's.

Prints seconds of audio processed per second of wall time for (1) 80-dim log-mel features,
(2) our encoder without rotary attention against ``torchaudio.models.Conformer`` of the same
size with the same weights, (3) our rotary encoder, and (4) the real-time factor of greedy
transcription through a tiny frozen LM (or ``--checkpoint``'s model). The machine's matmul
peak is measured in the same run. Figures from a loaded machine are not to be trusted.

    python benchmarks/bench_speech_encoder.py [--preset tiny] [--seconds 8] [--batch 4]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from torchaudio.models import Conformer

sys.path.insert(0, str(Path(__file__).parent))
from common import best_of, best_of_interleaved, matmul_peak

from l3_core import ModelArgs
from l3_core.model import Transformer
from l3_speech.adapter.adapter import SpeechAdapter, adapter_preset
from l3_speech.asr.model import SpeechLM
from l3_speech.encoder.conformer import ConformerEncoder
from l3_speech.encoder.presets import encoder_preset
from l3_speech.encoder.torchaudio_layout import from_torchaudio_state
from l3_speech.features.fbank import utterance_features


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--preset", default="tiny")
    p.add_argument("--seconds", type=float, default=8.0, help="length of each utterance")
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--repeats", type=int, default=3)
    opts = p.parse_args(argv)
    torch.manual_seed(0)
    audio_s = opts.seconds * opts.batch
    print(f"matmul peak fp32: {matmul_peak(torch.float32, n=1024) / 1e9:.1f} GFLOP/s")

    wave = torch.randn(int(16000 * opts.seconds)) * 0.1
    t = best_of(lambda: utterance_features(wave), repeats=opts.repeats)
    print(f"features: {opts.seconds / t:.0f} s of audio / s")

    args = encoder_preset(opts.preset, rotary=False, conv_norm="batch")
    ref = Conformer(
        input_dim=args.dim,
        num_heads=args.n_heads,
        ffn_dim=args.ffn_dim,
        num_layers=args.n_layers,
        depthwise_conv_kernel_size=args.conv_kernel,
    ).eval()
    ours = ConformerEncoder(args).eval()
    ours.load_state_dict(from_torchaudio_state(ref.state_dict()), strict=False)
    frames = int(opts.seconds * 100) // args.stack
    x = torch.randn(opts.batch, frames, args.dim)
    lengths = torch.full((opts.batch,), frames)
    rotary = ConformerEncoder(encoder_preset(opts.preset)).eval()
    with torch.no_grad():
        times = best_of_interleaved(
            {
                "ours": lambda: ours.blocks(x, lengths),
                "torchaudio": lambda: ref(x, lengths),
                "ours_rotary": lambda: rotary.blocks(x, lengths),
            },
            repeats=opts.repeats,
        )
    for name, sec in times.items():
        print(f"encoder {opts.preset} ({name}): {audio_s / sec:.0f} s of audio / s")
    print(f"ratio ours / torchaudio (throughput): {times['torchaudio'] / times['ours']:.2f}")

    lm = Transformer.build(ModelArgs.from_preset("llama3-tiny"), seed=0)
    enc = ConformerEncoder(encoder_preset(opts.preset))
    model = SpeechLM(
        enc, SpeechAdapter(adapter_preset("tiny"), enc.args.dim, lm.args.dim), lm, 300, 301
    ).eval()
    feats = torch.randn(1, int(opts.seconds * 100), 80)
    prompt = [1, 2, 300, 3]
    t = best_of(
        lambda: model.greedy(
            prompt, feats, torch.tensor([feats.shape[1]]), stop=set(), max_new_tokens=16
        ),
        repeats=opts.repeats,
    )
    print(f"transcription real-time factor (16 tokens, batch 1): {t / opts.seconds:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

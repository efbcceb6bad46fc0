"""Main-job stage: a tiny ASR model that learns, through a frozen language model.

espeak-ng speaks English digit strings ("three one four one five", 3 to 8 digits) and a few
short phrases in several voices; a tiny Conformer encoder + adapter is trained into a frozen
LM, and the word error rate is measured on held-out digit strings in the training voices and
in a voice never trained on. The LM is a tiny LM this stage builds and pre-trains on text in
the ASR prompt format, then freezes: the core stage's model was never trained to repeat what
it is given, and through it the ASR run does not learn (measured: WER 3.6 -> 3.4, 15 minutes).
``L3_SPEECH_CORE_LM=1`` uses the core stage's last checkpoint instead
(``<workdir>/../core/checkpoints/step_*``, with the built-in corpus's tokenizer). The
checkpoint is left at ``<workdir>/checkpoint/`` for ``l3-speech transcribe``.
"""

from __future__ import annotations

import os
from pathlib import Path

STEPS = int(os.environ.get("L3_SPEECH_STEPS", "600"))
N_TRAIN = int(os.environ.get("L3_SPEECH_UTTERANCES", "600"))
# The models are tiny: one thread avoids the oversubscription that slows a shared CPU tenfold.
THREADS = int(os.environ.get("L3_SPEECH_THREADS", "1"))


def _core_lm(workdir: Path) -> tuple[str, str]:
    """The core stage's last checkpoint and tokenizer when asked for and present, else empty
    strings (the stage then builds its own tiny LM)."""
    if not os.environ.get("L3_SPEECH_CORE_LM"):
        return "", ""
    checkpoints = sorted((workdir.parent / "core" / "checkpoints").glob("step_*"))
    if not checkpoints:
        return "", ""
    from l3_core.corpus import stdlib_shards

    return str(checkpoints[-1]), str(stdlib_shards() / "tokenizer.model")


def run(workdir: Path) -> dict:
    try:
        import torch

        from l3_speech.asr.train import DataConfig, ModelConfig, OptimConfig, TrainConfig, train_asr
        from l3_speech.synth import SynthSpec, synthesize
    except ImportError as e:
        # l3-speech needs torch 2.14 (torchaudio); the torch 2.13 sessions do not install it.
        return {
            "skipped": f"l3-speech not importable here ({e}); install l3-speech (torch 2.14.1: `nox -s main` does)"
        }

    torch.set_num_threads(THREADS)
    workdir.mkdir(parents=True, exist_ok=True)
    manifests = synthesize(workdir / "data", SynthSpec(n_train=N_TRAIN, n_test=40))
    lm, tokenizer = _core_lm(workdir)
    cfg = TrainConfig(
        run_dir=str(workdir),
        data=DataConfig(
            train_manifest=str(manifests["train"]),
            eval_manifests=[
                str(manifests["test_seen_voices"]),
                str(manifests["test_held_out_voice"]),
            ],
        ),
        model=ModelConfig(lm=lm, tokenizer=tokenizer),
        train=OptimConfig(steps=STEPS, log_every=50),
    )
    figures = train_asr(cfg)
    figures["lm"] = lm or "tiny LM built by this stage (frozen after text pre-training)"
    figures["checkpoint"] = str(workdir / "checkpoint")
    figures["loss_curve_png"] = str(workdir / "run" / "loss.png")
    return figures

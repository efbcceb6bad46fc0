"""``l3-speech pretrain``: BEST-RQ pre-training of a Conformer encoder on a manifest."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

import torch

from l3_core.io import atomic_path, write_json
from l3_core.jsonl import Exclusions
from l3_speech.asr.data import load_features, sample_batch
from l3_speech.bestrq.objective import BestRQArgs, BestRQObjective
from l3_speech.encoder.conformer import ConformerEncoder
from l3_speech.encoder.presets import encoder_preset
from l3_speech.errors import SpeechConfigError
from l3_speech.train_loop import LoopConfig, run_loop


@dataclass
class PretrainConfig:
    run_dir: str = "out/bestrq"
    manifest: str = ""
    encoder: str = "tiny"
    max_seconds: float = 60.0
    bestrq: dict = field(default_factory=dict)
    steps: int = 200
    batch_size: int = 8
    lr: float = 5e-4
    warmup_steps: int = 20
    seed: int = 0
    checkpoint_every: int = 100


def pretrain(cfg: PretrainConfig) -> dict:
    if not cfg.manifest:
        raise SpeechConfigError("manifest is required")
    try:
        args = BestRQArgs(**cfg.bestrq)
    except TypeError as e:
        names = ", ".join(f.name for f in dataclasses.fields(BestRQArgs))
        raise SpeechConfigError(f"bestrq: {e}; keys: {names}") from None
    run_dir = Path(cfg.run_dir)
    exclusions = Exclusions()
    data = load_features(Path(cfg.manifest), exclusions, cfg.max_seconds)
    if len(exclusions):
        exclusions.write(run_dir / "exclusions.jsonl")
    if not len(data):
        raise SpeechConfigError(f"{cfg.manifest}: no usable utterances")
    torch.manual_seed(cfg.seed)
    objective = BestRQObjective(ConformerEncoder(encoder_preset(cfg.encoder)), args)

    def step(i: int, gen: torch.Generator) -> tuple[torch.Tensor, dict[str, float]]:
        x, lengths, _ = sample_batch(data, cfg.batch_size, gen, None)
        return objective(x, lengths, gen)

    loop = LoopConfig(
        steps=cfg.steps,
        lr=cfg.lr,
        warmup_steps=cfg.warmup_steps,
        seed=cfg.seed,
        checkpoint_every=cfg.checkpoint_every,
    )
    rows = run_loop(objective, step, loop, run_dir / "run")
    _save_encoder(run_dir / "encoder", objective)
    figures = {
        "utterances": len(data),
        "excluded": len(exclusions),
        "first_loss": round(rows[0]["loss"], 3),
        "final_loss": round(rows[-1]["loss"], 3),
        "final_accuracy": round(rows[-1]["accuracy"], 4),
    }
    write_json(run_dir / "figures.json", figures)
    return figures


def _save_encoder(path: Path, objective: BestRQObjective) -> None:
    """The encoder and the frozen quantiser it was trained against (safetensors + JSON)."""
    from safetensors.torch import save_file

    with atomic_path(path) as tmp:
        tmp.mkdir()
        state = {f"encoder.{k}": v for k, v in objective.encoder.state_dict().items()}
        state |= {f"quantizer.{k}": v for k, v in objective.quantizer.state_dict().items()}
        save_file({k: v.contiguous() for k, v in state.items()}, str(tmp / "encoder.safetensors"))
        (tmp / "encoder.json").write_text(
            json.dumps(
                {
                    "encoder": dataclasses.asdict(objective.encoder.args),
                    "bestrq": dataclasses.asdict(objective.args),
                },
                indent=2,
            )
            + "\n"
        )

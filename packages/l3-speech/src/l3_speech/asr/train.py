"""Train an ASR model: encoder + adapter into a frozen LM, on manifests, from a TOML config."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import torch

from l3_core import load_checkpoint
from l3_core.io import write_json
from l3_core.jsonl import Exclusions
from l3_core.model import Transformer
from l3_core.tokenizer import Tokenizer
from l3_speech.adapter.adapter import SpeechAdapter, adapter_preset
from l3_speech.asr.checkpoint import save_speech_checkpoint
from l3_speech.asr.data import FeatureSet, load_features, normalize_text, pad_batch, sample_batch
from l3_speech.asr.model import SpeechLM
from l3_speech.asr.objective import asr_step
from l3_speech.asr.tiny_lm import FILLER, pretrain_tiny_lm, train_tokenizer, word_tokens
from l3_speech.asr.wer import word_error_rate
from l3_speech.encoder.conformer import ConformerEncoder
from l3_speech.encoder.presets import encoder_preset
from l3_speech.errors import SpeechConfigError
from l3_speech.features.specaugment import SpecAugment
from l3_speech.prompts import placeholder_id, prompt_ids
from l3_speech.train_loop import LoopConfig, run_loop

log = logging.getLogger(__name__)


@dataclass
class DataConfig:
    train_manifest: str = ""
    eval_manifests: list[str] = field(default_factory=list)
    max_seconds: float = 60.0


@dataclass
class ModelConfig:
    encoder: str = "tiny"
    adapter: str = "tiny"
    # An l3-core checkpoint directory (kept frozen) and its tokenizer; empty: build a tiny LM.
    lm: str = ""
    tokenizer: str = ""
    tiny_lm_steps: int = 400
    tiny_lm_layers: int = 2
    tiny_lm_dim: int = 128
    task: str = "asr"
    language: str = "English"


@dataclass
class OptimConfig:
    steps: int = 600
    batch_size: int = 16
    lr: float = 1e-3
    warmup_steps: int = 50
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    seed: int = 0
    log_every: int = 10
    checkpoint_every: int = 200
    specaugment: bool = True
    # Weight of the CTC term against the LM's token embeddings (asr/objective.py); 0: off.
    ctc_weight: float = 0.5


@dataclass
class TrainConfig:
    run_dir: str = "out/speech"
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: OptimConfig = field(default_factory=OptimConfig)

    def validate(self) -> None:
        if not self.data.train_manifest:
            raise SpeechConfigError("data.train_manifest is required")
        if bool(self.model.lm) != bool(self.model.tokenizer):
            raise SpeechConfigError(
                "model.lm and model.tokenizer go together (both set, or both empty)"
            )
        if self.train.batch_size < 1 or self.train.steps < 1:
            raise SpeechConfigError("train.batch_size and train.steps must be >= 1")


def build_lm(cfg: TrainConfig, train: FeatureSet, run_dir: Path) -> tuple[Transformer, Tokenizer]:
    if cfg.model.lm:
        return load_checkpoint(cfg.model.lm, dtype=torch.float32), Tokenizer.from_file(
            cfg.model.tokenizer
        )
    tok = train_tokenizer(train.texts, run_dir / "tiny_lm" / "tokenizer.model")
    lm = pretrain_tiny_lm(
        tok,
        train.texts,
        run_dir / "tiny_lm",
        steps=cfg.model.tiny_lm_steps,
        dim=cfg.model.tiny_lm_dim,
        n_layers=cfg.model.tiny_lm_layers,
        seed=cfg.train.seed,
    )
    return lm, tok


def build_model(cfg: TrainConfig, lm: Transformer, tok: Tokenizer) -> SpeechLM:
    torch.manual_seed(cfg.train.seed)
    encoder = ConformerEncoder(encoder_preset(cfg.model.encoder))
    adapter = SpeechAdapter(adapter_preset(cfg.model.adapter), encoder.args.dim, lm.args.dim)
    return SpeechLM(encoder, adapter, lm, placeholder_id(tok), tok.pad_id)


def transcribe_features(
    model: SpeechLM,
    tok: Tokenizer,
    feats: list[torch.Tensor],
    task: str = "asr",
    language: str = "English",
    batch_size: int = 16,
) -> list[str]:
    prompt = prompt_ids(tok, task, language)
    out: list[str] = []
    for i in range(0, len(feats), batch_size):
        x, lengths = pad_batch(feats[i : i + batch_size])
        for ids in model.greedy(prompt, x, lengths, tok.stop_tokens):
            out.append(normalize_text(tok.decode(ids)))
    return out


def evaluate(model: SpeechLM, tok: Tokenizer, data: FeatureSet, cfg: TrainConfig) -> float:
    model.eval()
    hyps = transcribe_features(model, tok, data.features, cfg.model.task, cfg.model.language)
    return word_error_rate(data.texts, hyps)


def train_asr(cfg: TrainConfig) -> dict:
    """Train, evaluate before and after, save ``run_dir/checkpoint``; returns the figures."""
    cfg.validate()
    run_dir = Path(cfg.run_dir)
    exclusions = Exclusions()
    train = load_features(Path(cfg.data.train_manifest), exclusions, cfg.data.max_seconds)
    evals = {
        Path(m).stem: load_features(Path(m), exclusions, cfg.data.max_seconds)
        for m in cfg.data.eval_manifests
    }
    if len(exclusions):
        exclusions.write(run_dir / "exclusions.jsonl")
    if not len(train):
        raise SpeechConfigError(f"{cfg.data.train_manifest}: no usable utterances")
    lm, tok = build_lm(cfg, train, run_dir)
    model = build_model(cfg, lm, tok)
    figures: dict = {
        "train_utterances": len(train),
        "excluded": len(exclusions),
        "trainable_params": sum(p.numel() for p in model.trainable_parameters()),
        "lm_params": lm.num_params(),
    }
    for name, data in evals.items():
        figures[f"wer_before_{name}"] = round(evaluate(model, tok, data, cfg), 3)
    prompt = prompt_ids(tok, cfg.model.task, cfg.model.language)
    augment = SpecAugment() if cfg.train.specaugment else None
    blank = tok.special_tokens[FILLER]

    def step(i: int, gen: torch.Generator) -> tuple[torch.Tensor, dict[str, float]]:
        x, lengths, texts = sample_batch(train, cfg.train.batch_size, gen, augment)
        answers = [[*tok.encode(t, bos=False, eos=False), tok.eot_id] for t in texts]
        ctc_targets = [[i for w in word_tokens(tok, t) for i in w] for t in texts]
        return asr_step(
            model,
            [[*prompt, *a] for a in answers],
            [len(a) for a in answers],
            x,
            lengths,
            ctc_targets,
            blank,
            cfg.train.ctc_weight,
        )

    t = cfg.train
    loop = LoopConfig(
        steps=t.steps,
        lr=t.lr,
        warmup_steps=t.warmup_steps,
        weight_decay=t.weight_decay,
        grad_clip=t.grad_clip,
        seed=t.seed,
        log_every=t.log_every,
        checkpoint_every=t.checkpoint_every,
    )
    rows = run_loop(model, step, loop, run_dir / "run")
    figures.update(first_loss=round(rows[0]["loss"], 3), final_loss=round(rows[-1]["loss"], 3))
    for name, data in evals.items():
        figures[f"wer_after_{name}"] = round(evaluate(model, tok, data, cfg), 3)
    save_speech_checkpoint(
        run_dir / "checkpoint", model, tok, {"task": cfg.model.task, "language": cfg.model.language}
    )
    write_json(run_dir / "figures.json", figures)
    return figures

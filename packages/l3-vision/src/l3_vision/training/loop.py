"""A small seeded, resumable training loop for the captioning objective (until l3-core's
trainer takes objectives): AdamW on the trainable parameters only, an atomic checkpoint
(model in the l3 format, optimizer moments in safetensors, the step in JSON), metrics.jsonl
and a loss PNG."""

from __future__ import annotations

import json
import logging
import math
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from l3_core.args import ModelArgs
from l3_core.io import atomic_path, remove_stale_temporaries, write_json
from l3_core.jsonl import Exclusions
from l3_core.tokenizer import Tokenizer, train_sentencepiece
from l3_vision.args import VisionArgs, encoder_preset, every_nth_layer
from l3_vision.checkpoint import load_checkpoint, save_checkpoint
from l3_vision.config import RunConfig
from l3_vision.model import VisionLanguageModel
from l3_vision.training.data import Pair, read_pairs
from l3_vision.training.objective import CaptionObjective, encode_images, greedy_captions, select

log = logging.getLogger(__name__)
TOKENIZER = "tokenizer.model"


def _tokenizer(cfg: RunConfig, pairs: list[Pair], run_dir: Path) -> Tokenizer:
    target = run_dir / TOKENIZER
    if not target.is_file():
        if cfg.data.tokenizer:
            shutil.copyfile(cfg.data.tokenizer, target)
        else:
            train_sentencepiece(
                (p.text for p in pairs), target, vocab_size=cfg.data.tokenizer_vocab
            )
    return Tokenizer.from_file(target)


def _encoder_changes(cfg: RunConfig) -> dict[str, int]:
    changes = {"max_tiles": cfg.model.max_tiles}
    if cfg.model.tile_size:
        changes["tile_size"] = cfg.model.tile_size
    return changes


def _build_model(cfg: RunConfig, tokenizer: Tokenizer) -> VisionLanguageModel:
    from l3_core import load_checkpoint as load_text

    language = load_text(cfg.model.text_checkpoint) if cfg.model.text_checkpoint else None
    text = language.args if language is not None else ModelArgs.from_preset(cfg.model.text_preset)
    if text.vocab_size < tokenizer.n_words:
        text = text.replace(vocab_size=tokenizer.n_words) if language is None else text
    args = VisionArgs(
        encoder=encoder_preset(cfg.model.encoder_preset, **_encoder_changes(cfg)),
        text=text,
        cross_attention_layers=every_nth_layer(text.n_layers, cfg.model.cross_every),
    )
    return VisionLanguageModel.build(args, language, seed=cfg.train.seed)


def pretrain_text(
    model: VisionLanguageModel, tokenizer: Tokenizer, texts: list[str], cfg: RunConfig
) -> float:
    """Text-only pre-training of the (new) language model on captions; returns the last loss."""
    lm = model.language
    lm.requires_grad_(True)
    opt = torch.optim.AdamW(lm.parameters(), lr=cfg.train.lr)
    loss = torch.tensor(float("nan"))
    for step in range(cfg.model.text_pretrain_steps):
        g = torch.Generator().manual_seed(cfg.train.seed * 7919 + step)
        idx = torch.randint(0, len(texts), (cfg.train.batch_size,), generator=g).tolist()
        seqs = [tokenizer.encode(texts[i], bos=True, eos=True) for i in idx]
        length = max(len(s) for s in seqs) - 1
        tokens = torch.full((len(seqs), length), tokenizer.pad_id, dtype=torch.long)
        targets = torch.full((len(seqs), length), -100, dtype=torch.long)
        for i, seq in enumerate(seqs):
            tokens[i, : len(seq) - 1] = torch.tensor(seq[:-1])
            targets[i, : len(seq) - 1] = torch.tensor(seq[1:])
        loss = lm.loss(tokens, targets)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    model.freeze_language()
    return float(loss.detach())


ADAPTER_GATES = ("attn_gate", "mlp_gate")


def param_groups(model: VisionLanguageModel, cfg: RunConfig) -> list[dict]:
    """The trainable parameters: the adapters' zero-initialised tanh gates (a higher lr, no
    weight decay, which would pin them at zero) and the rest."""
    gates, rest = [], []
    for name, p in model.named_parameters():
        if p.requires_grad:
            (gates if name.rsplit(".", 1)[-1] in ADAPTER_GATES else rest).append(p)
    return [
        {"params": rest, "lr_scale": 1.0, "weight_decay": cfg.train.weight_decay},
        {"params": gates, "lr_scale": cfg.train.gate_lr_scale, "weight_decay": 0.0},
    ]


def _lr(cfg: RunConfig, step: int) -> float:
    t = cfg.train
    if step < t.warmup_steps:
        return t.lr * (step + 1) / t.warmup_steps
    progress = (step - t.warmup_steps) / max(1, t.steps - t.warmup_steps)
    return t.lr * 0.5 * (1 + math.cos(math.pi * progress))


def _save(model: VisionLanguageModel, opt: torch.optim.Optimizer, step: int, run_dir: Path) -> None:
    with atomic_path(run_dir / "checkpoint") as tmp:
        tmp.mkdir()
        save_checkpoint(model, tmp / "model")
        shutil.copyfile(run_dir / TOKENIZER, tmp / "model" / TOKENIZER)
        moments = {}
        for i, p in enumerate(g for group in opt.param_groups for g in group["params"]):
            for key, value in opt.state.get(p, {}).items():
                moments[f"{i}.{key}"] = (
                    value.detach().reshape(-1).clone() if value.dim() == 0 else value.detach()
                )
        save_file(moments, str(tmp / "optimizer.safetensors"))
        write_json(tmp / "state.json", {"step": step})


def _resume(model: VisionLanguageModel, opt: torch.optim.Optimizer, run_dir: Path) -> int:
    ckpt = run_dir / "checkpoint"
    if not (ckpt / "state.json").is_file():
        return 0
    model.load_state_dict(load_checkpoint(ckpt / "model").state_dict())
    moments = load_file(str(ckpt / "optimizer.safetensors"))
    for i, p in enumerate(g for group in opt.param_groups for g in group["params"]):
        state = {k.split(".", 1)[1]: v for k, v in moments.items() if k.split(".", 1)[0] == str(i)}
        if state:
            opt.state[p] = {k: (v.reshape(()) if k == "step" else v) for k, v in state.items()}
    return int(json.loads((ckpt / "state.json").read_text())["step"])


def exact_match(
    model: VisionLanguageModel, tokenizer: Tokenizer, pairs: list[Pair], images
) -> float:
    model.eval()
    got = []
    for start in range(0, len(pairs), 64):
        idx = torch.arange(start, min(start + 64, len(pairs)))
        got += greedy_captions(model, tokenizer, select(images, idx))
    model.train()
    return sum(g.strip() == p.text.strip() for g, p in zip(got, pairs)) / max(1, len(pairs))


def train(cfg: RunConfig, run_dir: Path) -> dict:
    """Train the adapters (and the encoder when ``train.train_encoder``); returns the figures."""
    cfg.validate()
    run_dir.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(run_dir)
    exclusions = Exclusions()
    train_pairs = read_pairs(Path(cfg.data.train), exclusions)
    eval_pairs = read_pairs(Path(cfg.data.eval), exclusions) if cfg.data.eval else []
    exclusions.write(run_dir / "exclusions.jsonl")
    if not train_pairs:
        from l3_vision.errors import DatasetError

        raise DatasetError(
            f"{cfg.data.train}: no readable image-text pairs ({len(exclusions)} excluded)"
        )
    tokenizer = _tokenizer(cfg, train_pairs, run_dir)
    model = _build_model(cfg, tokenizer)
    start = (run_dir / "checkpoint" / "state.json").is_file()
    if cfg.model.text_pretrain_steps and not cfg.model.text_checkpoint and not start:
        text_loss = pretrain_text(model, tokenizer, [p.text for p in train_pairs], cfg)
        log.info("text pre-training: %d steps, loss %.4f", cfg.model.text_pretrain_steps, text_loss)
    model.freeze_encoder(not cfg.train.train_encoder)
    objective = CaptionObjective(tokenizer, model.args.image_token_id)
    enc = model.args.encoder
    train_images = encode_images(train_pairs, enc.tile_size, enc.max_tiles)
    eval_images = encode_images(eval_pairs, enc.tile_size, enc.max_tiles) if eval_pairs else None
    groups = param_groups(model, cfg)
    params = [p for group in groups for p in group["params"]]
    opt = torch.optim.AdamW(groups, lr=cfg.train.lr)
    start = _resume(model, opt, run_dir)
    figures: dict = {
        "train_pairs": len(train_pairs),
        "eval_pairs": len(eval_pairs),
        "excluded": len(exclusions),
        "trainable_params": sum(p.numel() for p in params),
        "frozen_params": sum(p.numel() for p in model.parameters() if not p.requires_grad),
    }
    if eval_images is not None and start == 0:
        figures["eval_exact_match_start"] = exact_match(model, tokenizer, eval_pairs, eval_images)
    metrics = (run_dir / "metrics.jsonl").open("a", encoding="utf-8")
    model.train()
    for step in range(start, cfg.train.steps):
        g = torch.Generator().manual_seed(cfg.train.seed * 1_000_003 + step)
        idx = torch.randint(0, len(train_pairs), (cfg.train.batch_size,), generator=g)
        batch = objective.batch(
            [train_pairs[i].text for i in idx.tolist()], select(train_images, idx)
        )
        for group in opt.param_groups:
            group["lr"] = _lr(cfg, step) * group["lr_scale"]
        loss, row = objective.loss(model, batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        row = {"step": step + 1, "lr": opt.param_groups[0]["lr"], **row}
        if eval_images is not None and (
            (step + 1) % cfg.train.eval_every == 0 or step + 1 == cfg.train.steps
        ):
            row["eval_exact_match"] = exact_match(model, tokenizer, eval_pairs, eval_images)
            log.info(
                "step %d loss %.4f eval exact match %.3f",
                step + 1,
                row["loss"],
                row["eval_exact_match"],
            )
        metrics.write(json.dumps(row) + "\n")
        metrics.flush()
        if (step + 1) % cfg.train.checkpoint_every == 0 or step + 1 == cfg.train.steps:
            _save(model, opt, step + 1, run_dir)
    metrics.close()
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    figures["final_loss"] = round(rows[-1]["loss"], 4) if rows else None
    evals = [r["eval_exact_match"] for r in rows if "eval_exact_match" in r]
    if evals:
        figures["eval_exact_match_end"] = evals[-1]
    figures["loss_png"] = _plot(rows, run_dir / "loss.png")
    write_json(run_dir / "figures.json", figures)
    return figures


def _plot(rows: list[dict], path: Path) -> str:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "skipped: matplotlib not installed (pip install 'l3-vision[plot]')"
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot([r["step"] for r in rows], [r["loss"] for r in rows])
    ax.set_xlabel("step")
    ax.set_ylabel("caption loss")
    ax.set_yscale("log")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return str(path)

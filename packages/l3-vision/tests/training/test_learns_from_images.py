"""A short captioning run learns from the images: held-out exact match on colour captions
(three classes, chance 1/3) rises well above chance with the language model frozen."""

from __future__ import annotations

from pathlib import Path

from l3_vision.config import DataConfig, ModelConfig, OptimConfig, RunConfig
from l3_vision.training.loop import param_groups, train
from l3_vision.training.synthetic import write_dataset


def test_short_colour_run_beats_chance_clearly(tmp_path: Path) -> None:
    figures = _short_run(tmp_path, ("colour",), vocab=272)
    assert figures["eval_exact_match_end"] >= 0.8, figures
    assert figures["eval_exact_match_end"] >= figures["eval_exact_match_start"] + 0.3, figures


def _short_run(tmp_path: Path, fields: tuple[str, ...], vocab: int) -> dict:
    cfg = RunConfig(
        model=ModelConfig(text_pretrain_steps=30),
        data=DataConfig(
            train=str(write_dataset(tmp_path / "train", 200, 32, seed=0, fields=fields)),
            eval=str(write_dataset(tmp_path / "eval", 60, 32, seed=1, fields=fields)),
            tokenizer_vocab=vocab,
        ),
        train=OptimConfig(
            steps=STEPS,
            batch_size=16,
            lr=3e-3,
            warmup_steps=5,
            eval_every=STEPS,
            checkpoint_every=STEPS,
        ),
    )
    figures = train(cfg, tmp_path / "run")
    assert figures["frozen_params"] > 0
    return figures


STEPS = 250


def test_adapter_gates_take_the_higher_lr_without_decay(args) -> None:
    from l3_vision.model import VisionLanguageModel

    model = VisionLanguageModel.build(args)
    cfg = RunConfig(train=OptimConfig(weight_decay=0.1, gate_lr_scale=10.0))
    rest, gates = param_groups(model, cfg)
    names = {id(p): n for n, p in model.named_parameters()}
    assert sorted(names[id(p)] for p in gates["params"]) == sorted(
        f"cross_layers.{i}.{g}"
        for i in args.cross_attention_layers
        for g in ("attn_gate", "mlp_gate")
    )
    assert (gates["lr_scale"], gates["weight_decay"]) == (10.0, 0.0)
    assert (rest["lr_scale"], rest["weight_decay"]) == (1.0, 0.1)
    trainable = {id(p) for p in model.parameters() if p.requires_grad}
    assert trainable == {id(p) for p in rest["params"] + gates["params"]}

"""The objective seam: a second, real objective (a scalar head on hidden states, see
``LastTokenScore`` in ``l3_core.train.testing``) runs on the same parallel trainer, equals an
independent plain computation, and trains to the same losses at DP=2 and TP=2 as one process;
frozen parameters stay as they were and are checkpointed."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("megatron.core", reason="needs the train extra (megatron-core)")

import torch

from l3_core.errors import ConfigError
from l3_core.parallel.groups import shutdown
from l3_core.parallel.launch import spawn
from l3_core.train.objective import objective_named, objective_names
from l3_core.train.testing import as_dict, config, make_shards, run_configs, score_loss

TOL = 1e-5
STEPS = 3
SCORE = "test-last-token-score"
FROZEN = "test-last-token-score-frozen-trunk"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return make_shards(tmp_path_factory.mktemp("corpus"), max_len=60)


def _single(corpus, run_dir, name):
    from l3_core.train.loop import Trainer

    cfg = config(corpus, run_dir, train={"max_steps": STEPS})
    try:
        with Trainer(cfg, objective_named(name, cfg)) as trainer:
            return trainer.run()
    finally:
        shutdown()


@pytest.fixture(scope="module")
def single(corpus, tmp_path_factory):
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("single")
    return {name: _single(corpus, root / name, name) for name in (SCORE, FROZEN)}


@pytest.fixture(scope="module")
def world2(corpus, tmp_path_factory):
    root = tmp_path_factory.mktemp("world2")
    layouts = {"dp2": {}, "tp2": {"tp": 2}}
    cfgs = [
        as_dict(
            config(corpus, root / f"{name}-{layout}", parallel=p, train={"max_steps": STEPS}),
            f"{name}-{layout}",
            objective=name,
        )
        for name in (SCORE, FROZEN)
        for layout, p in layouts.items()
    ]
    spawn(2, run_configs, cfgs, str(root / "out.json"))
    return json.loads((root / "out.json").read_text()), root


def _losses(records):
    assert not isinstance(records, dict), records["error"]
    return [r["loss"] for r in records]


def test_score_objective_equals_a_plain_model_with_the_same_head(corpus, tmp_path):
    from l3_core.model import Transformer
    from l3_core.train.loop import Trainer

    torch.set_num_threads(1)
    cfg = config(corpus, tmp_path / "run")
    try:
        with Trainer(cfg, objective_named(SCORE, cfg)) as trainer:
            batch = trainer.stream.next_rows(8, cfg.data.seq_len)
            result = trainer.forward_backward(batch, forward_only=True)
            head = trainer.objective.head(trainer.args)
    finally:
        shutdown()
    plain = Transformer.build(trainer.args, seed=cfg.train.seed)
    hidden = []
    plain.norm.register_forward_hook(lambda mod, inp, out: hidden.append(out))
    tokens = torch.from_numpy(batch.tokens)
    with torch.no_grad():
        plain(tokens, torch.from_numpy(batch.doc_ids))
        ref = score_loss(head(hidden[0]), tokens, torch.from_numpy(batch.loss_mask))
    assert result.count == float(ref.count) > 8  # several documents end in each row
    assert result.mean == pytest.approx(float(ref.loss_sum / ref.count), abs=TOL)
    assert result.metrics["abs_error"] == pytest.approx(float(ref.metrics["abs_error"]), rel=TOL)


@pytest.mark.parametrize("name", [SCORE, FROZEN])
@pytest.mark.parametrize("layout", ["dp2", "tp2"])
def test_score_objective_trains_the_same_on_two_ranks(name, layout, world2, single):
    results, _ = world2
    records = results[f"{name}-{layout}"]
    assert _losses(records) == pytest.approx(_losses(single[name]), abs=TOL)
    assert [r["grad_norm"] for r in records] == pytest.approx(
        [r["grad_norm"] for r in single[name]], abs=TOL
    )
    assert records[-1]["val_loss"] == pytest.approx(single[name][-1]["val_loss"], abs=TOL)
    # The objective's own figure reaches every step's record, reduced over both ranks.
    assert [r["mean_abs_error"] for r in records] == pytest.approx(
        [r["mean_abs_error"] for r in single[name]], abs=TOL
    )


def test_frozen_trunk_keeps_its_weights_and_the_head_trains(world2, corpus):
    from safetensors.torch import load_file

    from l3_core.model import Transformer

    _, root = world2
    saved = load_file(
        str(root / f"{FROZEN}-tp2" / "checkpoints" / "step_00000003" / "model.safetensors")
    )
    cfg = config(corpus, root / "unused")
    initial = Transformer.build(cfg.model.args(), seed=cfg.train.seed).state_dict()
    assert set(saved) == set(initial) | {"output_head.weight", "output_head.bias"}
    for name, t in initial.items():
        assert torch.equal(saved[name], t.float()), name
    head = objective_named(FROZEN, cfg).head(cfg.model.args())
    moved = saved["output_head.weight"] - head.weight.detach()
    assert float(moved.abs().max()) > 1e-4  # the head alone trained


def test_unknown_objective_is_refused_naming_the_known_ones(corpus, tmp_path):
    assert {"lm", SCORE, FROZEN} <= set(objective_names())
    with pytest.raises(ConfigError, match=r"objective = 'dpo' is not registered; known: \['lm'"):
        objective_named("dpo", config(corpus, tmp_path))

"""Our DPO and reward-model losses at step 0 equal trl's on the same model and rows (the
numerics claim of ``benchmarks/bench_align_dpo.py`` and ``bench_align_rm.py``).

Both sides start from the same weights (the policy against a *different* reference model, so
the DPO loss is not simply log 2) and train one step on the same rows in one batch; our side
is the CLI's run on l3-core's trainer, trl's its ``DPOTrainer`` / ``RewardTrainer`` on the
model exported to the HF format.
"""

from __future__ import annotations

import math
import shutil

import pytest

from l3_align.config import AlignConfig
from l3_align.data.encode import ChatEncoder
from l3_align.synthetic import preference_rows
from l3_align.train.batches import PackedEpochs
from l3_core.checkpoint import load_checkpoint, save_checkpoint
from l3_core.config import from_dict
from l3_core.jsonl import Exclusions, read_jsonl, write_jsonl
from l3_core.model import Transformer

pytest.importorskip("trl", reason="trl is the benchmark peer (extra 'bench')")

ROWS, SEQ = 8, 128


def _first_epoch_rows(groups, pad_id: int) -> int:
    """How many packed rows the first epoch's order takes: step 0 then holds every row once,
    as trl's one batch does."""
    return PackedEpochs(groups, SEQ, pad_id, seed=0).rows_of_epoch(0).n_rows


def _config(rows: int, **sections) -> AlignConfig:
    base = {"train": {"max_steps": 1, "batch_rows": rows, "micro_batch_rows": rows,
                      "resume": False}, "data": {"seq_len": SEQ}}  # fmt: skip
    for k, v in sections.items():
        base.setdefault(k, {}).update(v)
    return from_dict(AlignConfig, base)


@pytest.fixture
def rows_file(tmp_path):
    path = tmp_path / "pairs.jsonl"
    write_jsonl(path, preference_rows(ROWS, seed=3))
    return path


def test_dpo_step0_loss_equals_trl(model_dir, tokenizer, rows_file, tmp_path):
    from l3_align.data.dataset import encode_preference_file
    from l3_align.dpo.objective import pair_items
    from l3_align.dpo.run import run_dpo
    from l3_align.trl_peer import dpo_trainer

    policy = load_checkpoint(model_dir)
    reference_dir = tmp_path / "ref"
    save_checkpoint(Transformer.build(policy.args, seed=7), reference_dir)
    shutil.copyfile(model_dir / "tokenizer.model", reference_dir / "tokenizer.model")
    encoder = ChatEncoder(tokenizer, SEQ)
    pairs = [e.value for e in encode_preference_file(rows_file, encoder, Exclusions())]
    rows = _first_epoch_rows([pair_items(p, False) for p in pairs], tokenizer.pad_id)
    cfg = _config(rows, dpo={"losses": {"sigmoid": 1.0}, "mask_special_tokens": False,
                             "reference": str(reference_dir)})  # fmt: skip
    run_dpo(cfg, model_dir, rows_file, tmp_path / "ours")
    ours = read_jsonl(tmp_path / "ours" / "metrics.jsonl")[0]["loss"]

    for name, src in (("hf_policy", model_dir), ("hf_ref", reference_dir)):
        save_checkpoint(load_checkpoint(src), tmp_path / name, "hf")
    trainer = dpo_trainer(tmp_path / "hf_policy", tmp_path / "hf_ref", tokenizer, pairs,
                          tmp_path / "trl", batch=ROWS, steps=1)  # fmt: skip
    trainer.train()
    assert abs(ours - math.log(2)) > 1e-3  # a real reference: not the policy == reference tie
    assert trainer.losses[0] == pytest.approx(ours, abs=1e-5)


def test_reward_model_step0_loss_equals_trl(model_dir, tokenizer, rows_file, tmp_path):
    from l3_align.rm.checkpoint import save_reward_model
    from l3_align.rm.model import RewardModel
    from l3_align.rm.objective import reward_items, score_head
    from l3_align.rm.preferences import encode_reward_file
    from l3_align.rm.run import run_reward_training
    from l3_align.trl_peer import reward_trainer

    encoded = encode_reward_file(rows_file, ChatEncoder(tokenizer, SEQ), Exclusions())
    items = [reward_items(g, p) for g, p in zip(encoded.groups, encoded.present)]
    cfg = _config(_first_epoch_rows(items, tokenizer.pad_id), rm={"loss": "bradley_terry"})
    run_reward_training(cfg, model_dir, rows_file, tmp_path / "ours")
    ours = read_jsonl(tmp_path / "ours" / "metrics.jsonl")[0]["loss"]

    trunk = load_checkpoint(model_dir)
    # the head our run starts from: drawn from train.seed alone
    start = RewardModel(trunk, score_head(trunk.args, cfg.train.seed))
    save_reward_model(start, tmp_path / "hf_rm", None, tokenizer.pad_id)
    trainer = reward_trainer(tmp_path / "hf_rm", tokenizer, encoded.groups, tmp_path / "trl",
                             batch=ROWS, steps=1)  # fmt: skip
    trainer.train()
    assert trainer.losses[0] == pytest.approx(ours, abs=1e-5)

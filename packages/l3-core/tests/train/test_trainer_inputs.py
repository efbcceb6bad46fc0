"""The trainer in one process: document masking, and bad inputs refused at start-up."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("megatron.core", reason="needs the train extra (megatron-core)")

import torch
import torch.nn.functional as F

from l3_core.errors import CheckpointError, ShardError
from l3_core.parallel.groups import shutdown
from l3_core.train.testing import config, make_shards


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return make_shards(tmp_path_factory.mktemp("corpus"))


@pytest.fixture
def trainer_of():
    from l3_core.train.loop import Trainer

    torch.set_num_threads(1)
    made = []

    def build(*args, **kwargs):
        made.append(Trainer(*args, **kwargs))
        return made[-1]

    yield build
    for trainer in made:
        trainer.close()
    shutdown()


def test_packed_loss_equals_the_loss_of_the_documents_unpacked(tmp_path, trainer_of):
    from l3_core.model import Transformer

    short_docs = make_shards(tmp_path / "data", max_len=40)
    trainer = trainer_of(config(short_docs, tmp_path / "run"))
    batch = trainer.stream.next_rows(8, 64)
    assert (batch.doc_ids.max(axis=1) > 0).sum() >= 4, "rows should pack several documents"
    result = trainer.forward_backward(batch, forward_only=True)
    loss_sum, count = result.loss_sum, result.count

    model = Transformer.build(trainer.args, seed=trainer.cfg.train.seed)
    ref_sum, ref_count = 0.0, 0.0
    with torch.no_grad():
        for r in range(batch.tokens.shape[0]):
            for d in np.unique(batch.doc_ids[r]):
                idx = batch.doc_ids[r] == d
                logits = model(torch.from_numpy(batch.tokens[r, idx])[None])  # alone, from 0
                ce = F.cross_entropy(
                    logits[0], torch.from_numpy(batch.labels[r, idx]), reduction="none"
                )
                mask = torch.from_numpy(batch.loss_mask[r, idx])
                ref_sum += float((ce * mask).sum())
                ref_count += float(mask.sum())
    assert count == ref_count
    assert loss_sum / count == pytest.approx(ref_sum / ref_count, abs=1e-5)

    trainer.cfg.data.document_mask = False  # the same rows attending across documents
    unmasked_sum = trainer.forward_backward(batch, forward_only=True).loss_sum
    assert abs(unmasked_sum - loss_sum) / count > 1e-4  # 10x the tolerance above


def test_shards_from_another_tokenizer_are_refused(corpus, tmp_path, trainer_of):
    from l3_core.corpus import stdlib_shards

    other = stdlib_shards() / "tokenizer.model"
    cfg = config(corpus, tmp_path, data={"tokenizer": str(other)})
    with pytest.raises(ShardError, match="tokenizer 'test-tok'"):
        trainer_of(cfg)


def test_truncated_shard_is_refused(tmp_path, trainer_of):
    data = make_shards(tmp_path / "data")
    tokens = data / "part-1.tokens.bin"
    tokens.write_bytes(tokens.read_bytes()[:-10])
    with pytest.raises(ShardError, match="part-1.tokens.bin: truncated"):
        trainer_of(config(data, tmp_path / "run"))


def test_checkpoint_of_another_model_is_refused(corpus, tmp_path):
    from l3_core.train.loop import Trainer

    try:
        with Trainer(config(corpus, tmp_path, train={"max_steps": 1})) as trainer:
            trainer.run()
    finally:
        shutdown()
    wider = config(corpus, tmp_path, model={"n_layers": 2})
    try:
        with pytest.raises(CheckpointError, match="n_layers: checkpoint 4, config 2"):
            Trainer(wider)
    finally:
        shutdown()


def test_cli_reports_missing_data_in_one_line(tmp_path):
    cfg = tmp_path / "run.toml"
    cfg.write_text(f'run_dir = "{tmp_path / "run"}"\n[data]\npath = "{tmp_path / "nowhere"}"\n')
    proc = subprocess.run(
        [sys.executable, "-m", "l3_core.train", "--config", str(cfg)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 4  # ExitCode.INPUT: a ShardError
    assert f"{tmp_path / 'nowhere'}/manifest.json: manifest not found" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_annealing_switches_the_mix_to_the_upsampled_source(corpus, tmp_path, trainer_of):
    cfg = config(
        corpus,
        tmp_path,
        train={"max_steps": 4, "eval_every": 0},
        data={"weights": {"web": 1.0, "code": 0.0}},
        schedule={"anneal_steps": 2, "anneal_weights": {"code": 1.0}},
        logging={"tensorboard": True, "plot": True},
    )
    trainer = trainer_of(cfg)
    cursors = []
    for step in range(4):
        rec = trainer.train_step(step)
        cursors.append(trainer.stream.cursor["code"][1] + 1000 * trainer.stream.cursor["code"][0])
    assert cursors[:2] == [0, 0]  # code has weight 0 before the anneal
    assert cursors[2] > 0 and cursors[3] > cursors[2]  # and is all that is read during it
    assert rec["lr"] == 0.0  # the anneal ends at exactly zero
    records = trainer_of(
        config(
            corpus,
            tmp_path / "run2",
            train={"max_steps": 2},
            logging={"tensorboard": True, "plot": True},
        )
    ).run()
    assert (tmp_path / "run2" / "loss.png").read_bytes()[:4] == b"\x89PNG"
    assert list((tmp_path / "run2" / "tensorboard").glob("events.out.tfevents.*"))
    assert {"step", "loss", "lr", "grad_norm", "tokens_per_s", "mfu"} <= set(records[0])

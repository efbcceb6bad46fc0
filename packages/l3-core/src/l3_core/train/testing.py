"""Helpers for checking the trainer: a synthetic corpus, tiny configs, grouped runs.

Importing Megatron-core costs seconds per process, so equality checks run their configs one
after another inside the same spawned ranks (:func:`run_configs`); the process group is kept
and Megatron's groups are rebuilt per config.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import signal
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from l3_core.config import from_dict, to_dict
from l3_core.io import write_json
from l3_core.run_config import RunConfig
from l3_core.shards import write_manifest, write_shard
from l3_core.train.lm_objective import LanguageModelObjective
from l3_core.train.objective import LossParts, StepResult, register_objective

VOCAB = 512


def make_shards(directory: Path, n_docs: int = 120, seed: int = 0, max_len: int = 300) -> Path:
    """Two sources of documents of 5..max_len tokens with learnable structure (repeated motifs)."""
    rng = np.random.default_rng(seed)
    docs = []
    for i in range(n_docs):
        motif = rng.integers(0, VOCAB, size=rng.integers(3, 12))
        n = int(rng.integers(5, max_len))
        ids = np.resize(motif, n)
        noise = rng.random(n) < 0.1
        ids[noise] = rng.integers(0, VOCAB, size=int(noise.sum()))
        docs.append((ids, "web" if i % 3 else "code"))
    half = n_docs // 2
    write_shard(directory, "part-0", docs[:half], vocab_size=VOCAB, tokenizer="test-tok")
    write_shard(directory, "part-1", docs[half:], vocab_size=VOCAB, tokenizer="test-tok")
    write_manifest(directory)
    return directory


def config(corpus: Path, run_dir: Path, **sections) -> RunConfig:
    """A tiny fp32 run on ``corpus``; ``sections`` override tables, e.g. parallel={"tp": 2}."""
    base: dict[str, Any] = {
        "run_dir": str(run_dir),
        "model": {"preset": "llama3-tiny", "n_layers": 4},
        "data": {"path": str(corpus), "seq_len": 64, "val_fraction": 0.05},
        "train": {
            "max_steps": 3,
            "seed": 1,
            "global_batch_size": 8,
            "micro_batch_size": 2,
            "eval_every": 3,
            "eval_batches": 1,
        },
        "optimizer": {"lr": 3e-3},
        "schedule": {"warmup_steps": 1},
        "checkpoint": {"every": 0, "keep_last": 2},
        "logging": {"tensorboard": False, "progress": False, "plot": False},
    }
    for key, value in sections.items():
        if isinstance(value, dict):
            base.setdefault(key, {}).update(value)
        else:
            base[key] = value
    return from_dict(RunConfig, base)


def run_configs(configs: list[dict[str, Any]], out: str) -> None:
    """Train each config (plain dicts) in turn; rank 0 writes ``{name: records}`` to ``out``.

    A config may name its objective (``"objective": "<registered name>"``; default ``"lm"``).
    """
    import torch.distributed as dist

    warnings.filterwarnings("ignore")
    logging.getLogger("megatron").setLevel(logging.ERROR)
    from l3_core.train.loop import Trainer
    from l3_core.train.objective import objective_named

    results: dict[str, Any] = {}
    for spec in configs:
        spec = dict(spec)
        name = spec.pop("name")
        objective = spec.pop("objective", "lm")
        cfg = from_dict(RunConfig, spec)
        try:
            with Trainer(cfg, objective_named(objective, cfg)) as trainer:
                results[name] = trainer.run()
        except Exception as e:  # reported per config so one failure does not hide the others
            results[name] = {"error": f"{type(e).__name__}: {e}"}
            logging.getLogger(__name__).exception("config %s failed", name)
        dist.barrier()
    if dist.get_rank() == 0:
        write_json(out, results)
    dist.destroy_process_group()


def as_dict(cfg: RunConfig, name: str, objective: str = "lm") -> dict[str, Any]:
    return {"name": name, "objective": objective, **to_dict(cfg)}


class LastTokenScore(LanguageModelObjective):
    """A second objective on the same trainer, of the reward-model kind: a scalar head on the
    final-norm hidden state of each document's last token in a packed row, regressed (squared
    error) onto that token's parity. Rows, positions and masks are the language model's; the
    model returns hidden states through :meth:`head`; ``freeze_trunk`` trains the head alone.
    """

    metric_names = ("abs_error",)
    freeze_trunk = False

    def __init__(self, cfg: RunConfig) -> None:
        super().__init__(cfg)
        self.seed = cfg.train.seed

    def head(self, args):
        head = torch.nn.Linear(args.dim, 1)
        g = torch.Generator().manual_seed(self.seed)
        with torch.no_grad():
            head.weight.copy_(torch.randn(head.weight.shape, generator=g) * args.dim**-0.5)
            head.bias.zero_()
        return head

    def forward(self, model, micro):
        return model(micro["tokens"], micro["positions"], micro["doc_ids"])

    def loss(self, micro, output) -> LossParts:
        return score_loss(output, micro["tokens"], micro["loss_mask"])

    def figures(self, result: StepResult) -> dict[str, float]:
        return {"mean_abs_error": result.metrics["abs_error"] / max(result.count, 1)}

    def trains(self, name: str) -> bool:
        return not self.freeze_trunk or name.startswith("output_head.")


def score_loss(scores, tokens, loss_mask) -> LossParts:
    """Squared error of ``scores`` [b, s, 1] at document ends (``loss_mask == 0``) against the
    parity of the token there."""
    last = 1.0 - loss_mask.float()  # the next token starts another document
    err = (scores.float().squeeze(-1) - (tokens % 2).float()) * last
    return LossParts((err * err).sum(), last.sum(), {"abs_error": err.detach().abs().sum()})


@register_objective("test-last-token-score")
class _LastTokenScoreAll(LastTokenScore):
    pass


@register_objective("test-last-token-score-frozen-trunk")
class _LastTokenScoreHeadOnly(LastTokenScore):
    freeze_trunk = True


#: ``"MODE:RANK:CALLS"``: rank RANK, at its CALLS-th training forward, sleeps (``sleep``), exits
#: with code 1 (``exit``) or kills itself with SIGKILL (``kill``); under torchrun, only in its
#: first attempt (``TORCHELASTIC_RESTART_COUNT`` 0), so a restarted job runs clean.
FAULT_ENV = "L3_TEST_FAULT"
_FAULTS = {
    "sleep": lambda: time.sleep(3600),
    "exit": lambda: os._exit(1),
    "kill": lambda: os.kill(os.getpid(), signal.SIGKILL),
}


@register_objective("test-fault")
class FaultyLanguageModel(LanguageModelObjective):
    """The language model with the fault of :data:`FAULT_ENV` injected into one rank."""

    def __init__(self, cfg: RunConfig) -> None:
        super().__init__(cfg)
        mode, rank, calls = os.environ.get(FAULT_ENV, "none:-1:0").split(":")
        first_attempt = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0") == "0"
        mine = int(rank) == int(os.environ.get("RANK", "0")) and first_attempt
        self.fault = _FAULTS[mode] if mine else None
        self.at, self.calls = int(calls), 0

    def forward(self, model, micro):
        if model.training:
            self.calls += 1
            if self.fault is not None and self.calls == self.at:
                self.fault()
        return super().forward(model, micro)


@register_objective("test-record-rows")
class RowRecordingLanguageModel(LanguageModelObjective):
    """The language model, appending an id (a hash of its tokens and labels) of every training
    row this rank consumes to ``<run_dir>/rows.<rank>.jsonl``, one line per micro-batch."""

    def __init__(self, cfg: RunConfig) -> None:
        super().__init__(cfg)
        self.path = Path(cfg.run_dir) / f"rows.{os.environ.get('RANK', '0')}.jsonl"

    def forward(self, model, micro):
        if model.training:
            tokens, labels = micro["tokens"], micro["labels"]
            assert tokens is not None and labels is not None
            rows = torch.cat([tokens, labels[:, -1:]], dim=1).cpu().numpy()
            ids = [hashlib.sha1(r.tobytes()).hexdigest()[:16] for r in rows]
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a") as f:  # a test record: appended, read after the run
                f.write(json.dumps(ids) + "\n")
        return super().forward(model, micro)


def recorded_rows(run_dir: Path) -> list[list[str]]:
    """Every rank's recorded micro-batches (:class:`RowRecordingLanguageModel`), rank by rank."""
    files = sorted(run_dir.glob("rows.*.jsonl"), key=lambda p: int(p.name.split(".")[1]))
    return [[json.loads(line) for line in p.read_text().splitlines()] for p in files]

"""A multiple-choice cloze task built from held-out documents, and a model's score on it.

Each item is a context of ``context`` tokens cut from a validation document and four
continuations of ``answer`` tokens: the one that follows in that document and three cut from
other validation documents. A model answers with the continuation of highest likelihood; the
downstream forecast (paper section 3.2.1) uses the normalised NLL of the correct
continuation (nats per token) and the accuracy (chance 1/choices). The items are a pure
function of the documents and the seed; no training document is ever used.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from l3_core.io import write_json
from l3_scaling.errors import FitError

if TYPE_CHECKING:
    import torch

SCORE_FILE = "cloze.json"


@dataclass(frozen=True)
class ClozeTask:
    """``contexts`` [items, context] and ``choices`` [items, choices, answer] token ids;
    ``correct`` [items] is the index of the true continuation."""

    contexts: np.ndarray
    choices: np.ndarray
    correct: np.ndarray

    @property
    def chance(self) -> float:
        return 1.0 / self.choices.shape[1]

    def fingerprint(self) -> str:
        """A hash of the items: a cached score of another task is not reused."""
        h = hashlib.sha256()
        for a in (self.contexts, self.choices, self.correct):
            h.update(np.ascontiguousarray(a, dtype="<i8").tobytes())
        return h.hexdigest()[:16]


def build_cloze(
    docs: Sequence[np.ndarray],
    *,
    items: int = 400,
    context: int = 48,
    answer: int = 12,
    choices: int = 4,
    seed: int = 0,
    max_id: int | None = None,
) -> ClozeTask:
    """Items from ``docs`` (token arrays); only spans of ids below ``max_id`` (no specials)
    are cut, and distractors come from a different document than the context."""
    span = context + answer
    rng = np.random.default_rng(seed)

    def clean_starts(doc: np.ndarray, length: int) -> np.ndarray:
        ok = np.ones(len(doc), bool) if max_id is None else doc < max_id
        if len(doc) < length:
            return np.zeros(0, int)
        window = np.convolve(ok, np.ones(length, int), mode="valid") == length
        return np.flatnonzero(window)

    starts = [clean_starts(d, span) for d in docs]
    answer_starts = [clean_starts(d, answer) for d in docs]
    usable = [i for i, s in enumerate(starts) if len(s)]
    if len(usable) < 2 or sum(1 for s in answer_starts if len(s)) < 2:
        raise FitError(f"a cloze task needs 2 or more documents of {span}+ tokens")
    ctx = np.empty((items, context), np.int64)
    opts = np.empty((items, choices, answer), np.int64)
    correct = rng.integers(0, choices, items)
    for k in range(items):
        d = usable[rng.integers(len(usable))]
        s = int(rng.choice(starts[d]))
        ctx[k] = docs[d][s : s + context]
        others = [i for i, a in enumerate(answer_starts) if len(a) and i != d]
        for c in range(choices):
            if c == correct[k]:
                opts[k, c] = docs[d][s + context : s + span]
            else:
                o = others[rng.integers(len(others))]
                t = int(rng.choice(answer_starts[o]))
                opts[k, c] = docs[o][t : t + answer]
    return ClozeTask(ctx, opts, correct)


def answer_nll(model: torch.nn.Module, task: ClozeTask, batch: int = 64) -> np.ndarray:
    """Mean NLL per answer token (nats) of every choice: [items, choices]."""
    import torch

    n, k, a = task.choices.shape
    seqs = np.concatenate(
        [np.repeat(task.contexts[:, None, :], k, axis=1), task.choices], axis=2
    ).reshape(n * k, -1)
    out = np.empty(n * k)
    with torch.no_grad():
        for i in range(0, n * k, batch):
            x = torch.from_numpy(seqs[i : i + batch])
            logp = torch.log_softmax(model(x[:, :-1]).float(), dim=-1)
            tgt = x[:, 1:]
            tok = logp.gather(-1, tgt[..., None])[..., 0][:, -a:]
            out[i : i + batch] = (-tok.mean(dim=1)).numpy()
    return out.reshape(n, k)


def score(nll: np.ndarray, correct: np.ndarray) -> dict[str, float]:
    """Accuracy (lowest NLL picked) and the mean NLL of the correct choice."""
    rows = np.arange(len(correct))
    return {
        "accuracy": float((nll.argmin(axis=1) == correct).mean()),
        "nll": float(nll[rows, correct].mean()),
    }


def score_run(run_dir: str | Path, task: ClozeTask) -> dict[str, float]:
    """The final checkpoint's score, cached in ``<run_dir>/cloze.json``."""
    run_dir = Path(run_dir)
    cache = run_dir / SCORE_FILE
    fp = task.fingerprint()
    if cache.is_file():
        cached: dict[str, Any] = json.loads(cache.read_text(encoding="utf-8"))
        if cached.get("task") == fp:
            return {"accuracy": float(cached["accuracy"]), "nll": float(cached["nll"])}
    from l3_core.checkpoint import load_checkpoint
    from l3_core.train.checkpoint import latest

    ckpt = latest(run_dir)
    if ckpt is None:
        raise FitError(f"{run_dir}: no checkpoint to score")
    result = score(answer_nll(load_checkpoint(ckpt), task), task.correct)
    write_json(cache, {**result, "task": fp})
    return result

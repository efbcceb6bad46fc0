"""Checks at the end of each long-context stage (paper section 3.4.2).

The paper moves to the next context length once (1) short-context quality has recovered and
(2) the model solves needle-in-a-haystack retrieval at the new length. At the end of each
stage the trainer logs

* ``short_val_loss``: the validation loss at the original ``data.seq_len``;
* ``long_val_loss``: the validation loss at the stage's length;
* ``needle_recall``: a random key of ``KEY_LEN`` tokens followed by a value of ``VALUE_LEN``
  tokens is hidden at several depths of validation text filling the stage's length; the key
  is repeated at the end, and a value token counts as retrieved when the model gives it
  probability above 1/2 (which makes it the argmax) - the fraction retrieved;
* ``needle_nll``: the mean negative log-likelihood of the value tokens.
"""

from __future__ import annotations

import numpy as np

from l3_core.train.data import Batch, make_batch
from l3_core.train.schedule import stage_at

KEY_LEN = 4
VALUE_LEN = 4


def needle_rows(haystack: np.ndarray, vocab_size: int, seed: int) -> tuple[Batch, np.ndarray]:
    """Rows of ``haystack`` [n, s+1] with a needle each; returns (batch, value tokens [n, V]).

    Row ``i`` hides ``key + value`` at depth ``(i + 1) / (n + 1)`` of the text and ends with
    ``key + value``; only the labels of that final value count in ``loss_mask``.
    """
    rng = np.random.default_rng(seed)
    rows = haystack.copy()
    n, length = rows.shape
    need = 2 * (KEY_LEN + VALUE_LEN) + 1
    if length < need:
        raise ValueError(f"needle rows need at least {need} tokens, got {length}")
    values = np.empty((n, VALUE_LEN), dtype=np.int64)
    for i in range(n):
        key = rng.integers(0, vocab_size, KEY_LEN)
        value = rng.integers(0, vocab_size, VALUE_LEN)
        values[i] = value
        needle = np.concatenate([key, value])
        room = length - 2 * len(needle)
        at = int(room * (i + 1) / (n + 1))
        rows[i, at : at + len(needle)] = needle
        rows[i, length - len(needle) :] = needle
    batch = make_batch(rows, np.zeros_like(rows))
    mask = np.zeros_like(batch.loss_mask)
    mask[:, -VALUE_LEN:] = 1.0  # labels of the final value tokens
    batch.loss_mask = mask
    return batch, values


def stage_end_checks(trainer, done: int) -> dict[str, float]:
    """The stage-end figures when step ``done`` ends a long-context stage, else {}.

    The needle figures need the language-model objective's ``hits`` metric.
    """
    cfg = trainer.cfg
    index, stage = stage_at(done - 1, cfg)
    end = cfg.train.max_steps + sum(s.steps for s in cfg.long_context.stages[: index + 1])
    if done != end:
        return {}
    trials = cfg.long_context.needle_trials
    gbs = cfg.train.global_batch_size
    rows = trainer.stream.validation_rows(max(trials, gbs), stage.seq_len)
    full = np.concatenate([rows.tokens, rows.labels[:, -1:]], axis=1)
    batch, _ = needle_rows(full, trainer.args.vocab_size, seed=cfg.train.seed + index)
    n = batch.tokens.shape[0] - batch.tokens.shape[0] % gbs
    nll_sum = count = hits = 0.0
    for b in range(0, n, gbs):
        r = trainer.forward_backward(batch.rows(slice(b, b + gbs)), forward_only=True)
        nll_sum, count, hits = nll_sum + r.loss_sum, count + r.count, hits + r.metrics["hits"]
    return {
        "stage": index,
        "stage_seq_len": stage.seq_len,
        "short_val_loss": trainer.evaluate(cfg.data.seq_len),
        "long_val_loss": trainer.evaluate(stage.seq_len),
        "needle_recall": hits / max(count, 1),
        "needle_nll": nll_sum / max(count, 1),
    }

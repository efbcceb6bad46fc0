"""Learning-rate schedule and batch/sequence ramps (paper section 3.4.1 and 3.4.3).

Linear warmup to the peak, cosine decay to ``peak * min_lr_ratio``, and a final annealing
phase that decays linearly from wherever the cosine is to exactly 0 at the last step. Every
function is a pure function of the step, so a resumed run follows the same curve.
"""

from __future__ import annotations

import math

from l3_core.run_config import RunConfig


def learning_rate(step: int, cfg: RunConfig) -> float:
    """LR used for optimizer step ``step`` (0-based) of the main phase."""
    o, s = cfg.optimizer, cfg.schedule
    total = cfg.train.max_steps
    peak, floor = o.lr, o.lr * o.min_lr_ratio
    if s.warmup_steps and step < s.warmup_steps:
        return peak * (step + 1) / s.warmup_steps
    anneal = cfg.anneal_steps
    anneal_start = total - anneal
    decay_steps = s.decay_steps or max(anneal_start - s.warmup_steps, 1)

    def cosine(t: int) -> float:
        frac = min(max(t - s.warmup_steps, 0) / decay_steps, 1.0)
        return floor + 0.5 * (peak - floor) * (1 + math.cos(math.pi * frac))

    if anneal and step >= anneal_start:
        start_lr = cosine(anneal_start)
        done = step - anneal_start + 1
        return start_lr * (1 - done / anneal)
    return cosine(step)


def in_anneal(step: int, cfg: RunConfig) -> bool:
    anneal = cfg.anneal_steps
    return bool(anneal) and cfg.train.max_steps - anneal <= step < cfg.train.max_steps


def ramp_value(step: int, ramp: list[list[int]], default: int) -> int:
    """The value of a ``[[from_step, value], ...]`` ramp at ``step`` (``default`` before it)."""
    value = default
    for start, v in ramp:
        if step >= start:
            value = v
    return value


def batch_size_at(step: int, cfg: RunConfig) -> int:
    return ramp_value(step, cfg.schedule.batch_ramp, cfg.train.global_batch_size)


def seq_len_at(step: int, cfg: RunConfig) -> int:
    """Sequence length of ``step``: the ramp in the main phase, then each long-context stage."""
    if step < cfg.train.max_steps:
        return ramp_value(step, cfg.schedule.seq_ramp, cfg.data.seq_len)
    return stage_at(step, cfg)[1].seq_len


def stage_at(step: int, cfg: RunConfig):
    """(index, stage) of the long-context stage that ``step`` (>= max_steps) belongs to."""
    start = cfg.train.max_steps
    for i, stage in enumerate(cfg.long_context.stages):
        if step < start + stage.steps:
            return i, stage
        start += stage.steps
    raise IndexError(f"step {step} is past the last long-context stage")


def stage_lr(step: int, cfg: RunConfig) -> float:
    """Long-context stages continue at the main phase's final non-annealed floor LR."""
    return cfg.optimizer.lr * cfg.optimizer.min_lr_ratio

"""What the trainer optimises: the seam between Megatron's parallel machinery and a loss.

The :class:`~l3_core.train.loop.Trainer` owns the parallel layout, the schedules, the
optimizer and checkpoints; an :class:`Objective` owns everything that depends on the task:

* its data: :meth:`Objective.open_data` returns a :class:`BatchSource` (global batches, the
  fixed validation rows, a JSON-able ``state_dict`` saved in every checkpoint);
* the split of a global batch into this rank's micro-batches (:meth:`micro_batches`): its
  data-parallel rows and context-parallel columns (:func:`split_rows_and_columns` does that
  for named per-token and per-row arrays);
* what it adds to the model: :meth:`head`, a module the last pipeline stage applies to the
  hidden states after the final norm (the stage then returns the head's output instead of
  logits), and :meth:`trains`, which parameters the optimizer updates (e.g. only adapters);
* the forward step on a model chunk (:meth:`forward`) and the loss of its output
  (:meth:`loss`): a differentiable **sum** and the integer **count** it is averaged over,
  plus named metric sums. Megatron divides gradients by the global count, and the trainer
  reduces sums and counts over all ranks, so every split computes the same number.

Objectives are registered by name (:func:`register_objective`) and built from the run config
(:func:`objective_named`); the default is ``"lm"``, the packed-stream language-model loss
(:mod:`l3_core.train.lm_objective`). See ``docs/training.md`` for a worked example.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import numpy as np
import torch

from l3_core.errors import ConfigError

if TYPE_CHECKING:
    from l3_core.args import ModelArgs
    from l3_core.run_config import RunConfig


class BatchSource(Protocol):
    """Where an objective's batches come from; its state resumes a run exactly."""

    phase: str

    @property
    def tokenizer(self) -> str:
        """Fingerprint of the data's tokenizer, checked on resume."""
        ...

    @property
    def where(self) -> str:
        """What the data is, for messages."""
        ...

    def next_rows(self, n: int, seq_len: int) -> Any: ...

    def validation_rows(self, n: int, seq_len: int) -> Any: ...

    def set_weights(self, weights: dict[str, float], phase: str = "main") -> None: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


@dataclass(frozen=True)
class Layout:
    """Which part of a global batch this rank computes."""

    dp: int
    dp_rank: int
    cp: int
    cp_rank: int
    micro_batch_size: int
    device: torch.device

    def columns(self, seq_len: int) -> np.ndarray:
        """This rank's context-parallel columns of a ``seq_len`` row (global indices)."""
        from l3_core.parallel.attention import cp_chunk_indices

        return cp_chunk_indices(seq_len, self.cp, self.cp_rank).numpy()


@dataclass(frozen=True)
class LossParts:
    """One micro-batch's loss: ``loss_sum`` (differentiable), ``count``, named metric sums."""

    loss_sum: torch.Tensor
    count: torch.Tensor
    metrics: dict[str, torch.Tensor] = field(default_factory=dict)


@dataclass(frozen=True)
class StepResult:
    """Sums over every micro-batch of every rank (the same on all ranks)."""

    loss_sum: float
    count: float
    metrics: dict[str, float]

    @property
    def mean(self) -> float:
        return self.loss_sum / max(self.count, 1)


class Objective(ABC):
    """A training objective on the parallel trainer; see the module docstring."""

    #: names of the metric sums :meth:`loss` returns (reduced across ranks, in this order)
    metric_names: ClassVar[tuple[str, ...]] = ()

    @abstractmethod
    def open_data(self, cfg: RunConfig, args: ModelArgs) -> BatchSource:
        """The run's batch source (training stream and validation rows)."""

    def sequence_length(self, batch: Any) -> int:
        """Columns of ``batch`` (Megatron sizes pipeline messages from it)."""
        return int(batch.tokens.shape[1])

    @abstractmethod
    def micro_batches(self, batch: Any, layout: Layout) -> list[dict[str, torch.Tensor | None]]:
        """This rank's micro-batches of the global ``batch``, on ``layout.device``."""

    @abstractmethod
    def forward(
        self, model: torch.nn.Module, micro: dict[str, torch.Tensor | None]
    ) -> torch.Tensor:
        """Run one model chunk on ``micro``; the last stage's output goes to :meth:`loss`."""

    @abstractmethod
    def loss(self, micro: dict[str, torch.Tensor | None], output: torch.Tensor) -> LossParts:
        """The loss sum, its count and the metric sums of ``output`` (last stage only)."""

    def head(self, args: ModelArgs) -> torch.nn.Module | None:
        """A module for the last stage's hidden states [b, s, dim] after the final norm, or
        None (the last stage then returns per-token losses when given labels, else logits).
        It is replicated over tensor-parallel ranks and must be built identically on each."""
        return None

    def figures(self, result: StepResult) -> dict[str, float]:
        """What a training step's metrics record shows of ``result`` beyond the loss (e.g. a
        pair accuracy from metric sums); keys must not be metrics-schema keys."""
        return {}

    def trains(self, name: str) -> bool:
        """Whether the parameter ``name`` (Megatron's name; heads under ``output_head.``) is
        updated; frozen ones keep their initial or loaded values."""
        return True


def split_rows_and_columns(
    batch: Any, layout: Layout, *, columns: Iterable[str], rows: Iterable[str] = ()
) -> list[dict[str, torch.Tensor]]:
    """This rank's micro-batches of ``batch``: its DP rows in ``micro_batch_size`` groups,
    with this rank's CP columns of the per-token arrays ``columns`` (``rows`` names per-row
    arrays, which are split by rows only)."""
    columns, rows = tuple(columns), tuple(rows)
    n_global = len(getattr(batch, columns[0]))
    n = n_global // layout.dp
    mine = slice(layout.dp_rank * n, (layout.dp_rank + 1) * n)
    cols = layout.columns(getattr(batch, columns[0]).shape[1])
    out = []
    for i in range(0, n, layout.micro_batch_size):
        sl = slice(mine.start + i, mine.start + min(i + layout.micro_batch_size, n))
        micro = {
            name: torch.from_numpy(getattr(batch, name)[sl][:, cols].copy()).to(layout.device)
            for name in columns
        }
        micro.update(
            {
                name: torch.from_numpy(np.asarray(getattr(batch, name)[sl]).copy()).to(
                    layout.device
                )
                for name in rows
            }
        )
        out.append(micro)
    return out


_REGISTRY: dict[str, Callable[[RunConfig], Objective]] = {}


def register_objective(
    name: str,
) -> Callable[[Callable[[RunConfig], Objective]], Callable[[RunConfig], Objective]]:
    """Register a factory ``factory(cfg) -> Objective`` (usually the class) under ``name``."""

    def add(factory: Callable[[RunConfig], Objective]) -> Callable[[RunConfig], Objective]:
        if name in _REGISTRY and _REGISTRY[name] is not factory:
            raise ConfigError(f"objective {name!r} is registered twice")
        _REGISTRY[name] = factory
        return factory

    return add


def objective_names() -> list[str]:
    _register_builtins()
    return sorted(_REGISTRY)


def objective_named(name: str, cfg: RunConfig) -> Objective:
    """The objective registered as ``name``, built for ``cfg``."""
    _register_builtins()
    if name not in _REGISTRY:
        raise ConfigError(f"objective = {name!r} is not registered; known: {sorted(_REGISTRY)}")
    return _REGISTRY[name](cfg)


def _register_builtins() -> None:
    import l3_core.train.lm_objective  # noqa: F401  (registers "lm")

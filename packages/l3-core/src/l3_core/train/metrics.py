"""Per-step metrics: JSONL in the run folder, TensorBoard, a progress bar, a loss-curve PNG.

``metrics.jsonl`` holds one :class:`~l3_core.metrics_schema.MetricsRecord` per line (the schema
other packages read runs through). On resume from step ``k`` the lines after ``k`` (written by
the interrupted run after its last checkpoint) are dropped atomically, so the file never holds
a step twice.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from l3_core.io import atomic_write
from l3_core.metrics_schema import METRICS_FILE, MetricsRecord, read_metrics

log = logging.getLogger(__name__)


def truncate_metrics(run_dir: Path, last_step: int) -> None:
    """Keep only records with ``step <= last_step`` (atomically)."""
    path = run_dir / METRICS_FILE
    if not path.is_file():
        return
    keep = [r for r in read_metrics(path) if r.step <= last_step]
    with atomic_write(path, encoding="utf-8") as f:
        for r in keep:
            f.write(json.dumps(r.to_json()) + "\n")


class MetricsLogger:
    """Writes metrics on the logging rank; a no-op elsewhere."""

    def __init__(
        self,
        run_dir: Path,
        total_steps: int,
        start_step: int,
        enabled: bool,
        tensorboard: bool = True,
        progress: bool = True,
    ) -> None:
        self.run_dir = run_dir
        self.enabled = enabled
        self._tb = None
        self._bar = None
        if not enabled:
            return
        run_dir.mkdir(parents=True, exist_ok=True)
        self._file = (run_dir / METRICS_FILE).open("a", encoding="utf-8")
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self._tb = SummaryWriter(str(run_dir / "tensorboard"), purge_step=start_step + 1)
            except ImportError:
                log.warning("tensorboard is not installed: metrics go to %s only", METRICS_FILE)
        if progress:
            from tqdm.auto import tqdm

            self._bar = tqdm(total=total_steps, initial=start_step, unit="step", dynamic_ncols=True)

    def log(self, record: Mapping[str, Any]) -> None:
        """Write one step's figures; they must fit :class:`MetricsRecord` (checked first)."""
        if not self.enabled:
            return
        row = MetricsRecord.from_json(record, f"metrics of step {record.get('step')}").to_json()
        self._file.write(json.dumps(row) + "\n")
        self._file.flush()
        step = row["step"]
        if self._tb is not None:
            for k, v in row.items():
                if k != "step" and math.isfinite(v):
                    self._tb.add_scalar(k, v, step)
        if self._bar is not None:
            shown = {
                k: f"{row[k]:.4g}" for k in ("loss", "val_loss", "lr", "tokens_per_s") if k in row
            }
            self._bar.set_postfix(shown, refresh=False)
            self._bar.n = step
            self._bar.refresh()

    def close(self) -> None:
        if not self.enabled:
            return
        self._file.close()
        if self._tb is not None:
            self._tb.close()
        if self._bar is not None:
            self._bar.close()


def plot_loss_curve(run_dir: Path) -> Path | None:
    """Write ``loss.png`` (training and validation loss by step) from metrics.jsonl."""
    path = run_dir / METRICS_FILE
    if not path.is_file():
        return None
    records = read_metrics(path)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    train = [(r.step, r.loss) for r in records]
    val = [(r.step, r.val_loss) for r in records if r.val_loss is not None]
    if train:
        ax.plot(*zip(*train), label="train loss", lw=1)
    if val:
        ax.plot(*zip(*val), "o-", label="validation loss")
    ax.set_xlabel("step")
    ax.set_ylabel("loss (nats/token)")
    ax.grid(alpha=0.3)
    ax.legend()
    out = run_dir / "loss.png"
    with atomic_write(out, "wb") as f:
        fig.savefig(f, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return out

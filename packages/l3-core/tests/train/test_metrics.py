"""metrics.jsonl is written to the schema, cut back on resume, survives a half-written line, and
plots to PNG."""

from __future__ import annotations

import json

import pytest

from l3_core.errors import InputError
from l3_core.metrics_schema import read_metrics
from l3_core.train.metrics import MetricsLogger, plot_loss_curve, truncate_metrics


def _row(step: int, **extra) -> dict:
    return {
        "step": step,
        "loss": 1.0 / step,
        "lr": 1e-3,
        "grad_norm": 0.5,
        "tokens_per_s": 100.0,
        "mfu": 0.1,
        "seq_len": 16,
        "batch_size": 2,
        "tokens": 32 * step,
        "step_time_s": 0.3,
        **extra,
    }


def test_truncate_drops_steps_after_the_checkpoint(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text(
        "".join(json.dumps(_row(s)) + "\n" for s in range(1, 6)) + '{"step": 6, "lo'
    )  # a kill mid-line
    assert [r.step for r in read_metrics(path)] == [1, 2, 3, 4, 5]
    truncate_metrics(tmp_path, 3)
    assert [r.step for r in read_metrics(path)] == [1, 2, 3]
    assert path.read_text().endswith("}\n")  # the cut line is gone too


def test_the_logger_writes_schema_records_and_objective_figures_and_refuses_non_numbers(tmp_path):
    log = MetricsLogger(
        tmp_path, total_steps=3, start_step=0, enabled=True, tensorboard=False, progress=False
    )
    log.log(_row(1))
    log.log(_row(2, val_loss=0.75))
    log.log({**_row(3), "accuracy": 0.5})  # a figure an objective adds
    with pytest.raises(InputError, match=r"metrics of step 4: accuracy: expected float, got 'x'"):
        log.log({**_row(4), "accuracy": "x"})
    log.close()
    records = read_metrics(tmp_path)
    assert [r.to_json() for r in records] == [
        _row(1),
        _row(2, val_loss=0.75),
        {**_row(3), "accuracy": 0.5},
    ]
    assert records[2].extra == {"accuracy": 0.5}


def test_loss_curve_is_a_png(tmp_path):
    (tmp_path / "metrics.jsonl").write_text(
        "".join(
            json.dumps(_row(s, **({"val_loss": 5.0} if s % 5 == 0 else {}))) + "\n"
            for s in range(1, 21)
        )
    )
    out = plot_loss_curve(tmp_path)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

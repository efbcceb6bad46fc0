"""The metrics.jsonl contract: records round-trip, every bad line is named by file:line, and a
line cut by a kill is dropped."""

from __future__ import annotations

import gzip
import json
import math

import pytest

from l3_core.errors import InputError
from l3_core.metrics_schema import METRICS_FILE, MetricsRecord, read_metrics


def _step(step: int, **extra) -> MetricsRecord:
    return MetricsRecord(
        step=step,
        loss=5.0 - 0.1 * step,
        lr=3e-4 * step,
        grad_norm=1.5,
        tokens_per_s=1234.5,
        mfu=0.41,
        seq_len=128,
        batch_size=8,
        tokens=1024 * step,
        step_time_s=0.83,
        **extra,
    )


def _write(path, rows, tail: str = "") -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows) + tail, encoding="utf-8")


def test_records_round_trip_through_a_run_folder_and_unset_figures_are_left_out(tmp_path):
    records = [
        _step(1),
        _step(2, val_loss=4.5),
        _step(
            3,
            val_loss=4.4,
            stage=0,
            stage_seq_len=256,
            short_val_loss=4.4,
            long_val_loss=4.6,
            needle_recall=0.25,
            needle_nll=3.0,
        ),
    ]
    _write(tmp_path / METRICS_FILE, [r.to_json() for r in records])
    assert read_metrics(tmp_path) == records
    assert read_metrics(tmp_path / METRICS_FILE) == records
    assert "val_loss" not in records[0].to_json()
    assert list(records[1].to_json()) == [
        "step",
        "loss",
        "lr",
        "grad_norm",
        "tokens_per_s",
        "mfu",
        "seq_len",
        "batch_size",
        "tokens",
        "step_time_s",
        "val_loss",
    ]


def test_nan_grad_norm_and_integral_floats_are_read(tmp_path):
    row = {**_step(1).to_json(), "grad_norm": float("nan"), "tokens": 1024.0}
    _write(tmp_path / METRICS_FILE, [row])
    (rec,) = read_metrics(tmp_path)
    assert math.isnan(rec.grad_norm)
    assert rec.tokens == 1024 and isinstance(rec.tokens, int)


def test_a_line_cut_by_a_kill_is_dropped(tmp_path):
    _write(tmp_path / METRICS_FILE, [_step(s).to_json() for s in (1, 2)], tail='{"step": 3, "lo')
    assert [r.step for r in read_metrics(tmp_path)] == [1, 2]


def test_a_bad_line_before_the_end_names_file_and_line(tmp_path):
    path = tmp_path / METRICS_FILE
    path.write_text(json.dumps(_step(1).to_json()) + "\n\n" + '{"step": 2, "lo\n', encoding="utf-8")
    with pytest.raises(InputError, match=r"metrics.jsonl:3: invalid JSON"):
        read_metrics(tmp_path)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"accuracy": "high"}, r"metrics.jsonl:2: accuracy: expected float, got 'high'"),
        ({"extra": {"a": 1}}, r"metrics.jsonl:2: 'extra' is not a metrics key"),
        ({"loss": None}, r"metrics.jsonl:2: missing metrics key loss"),  # null = not measured
        ({"loss": "high"}, r"metrics.jsonl:2: loss: expected float, got 'high'"),
        ({"step": True}, r"metrics.jsonl:2: step: expected int, got True"),
        ({"seq_len": 127.5}, r"metrics.jsonl:2: seq_len: expected int, got 127.5"),
        ({"step": -1}, r"metrics.jsonl:2: step = -1 must be >= 0"),
    ],
)
def test_rows_that_do_not_fit_the_schema_are_refused_with_key_and_value(tmp_path, change, message):
    row = {**_step(2).to_json(), **change}
    _write(tmp_path / METRICS_FILE, [_step(1).to_json(), row])
    with pytest.raises(InputError, match=message):
        read_metrics(tmp_path)


def test_objective_figures_round_trip_as_top_level_keys(tmp_path):
    rec = MetricsRecord.from_json({**_step(1).to_json(), "accuracy": 0.75, "reward_margin": 2})
    assert rec.extra == {"accuracy": 0.75, "reward_margin": 2.0}
    assert rec.to_json()["accuracy"] == 0.75 and "extra" not in rec.to_json()
    _write(tmp_path / METRICS_FILE, [rec.to_json()])
    assert read_metrics(tmp_path) == [rec]


def test_an_objective_figure_cannot_shadow_a_schema_key():
    rec = MetricsRecord.from_json(_step(1).to_json())
    clash = MetricsRecord(**{**rec.__dict__, "extra": {"loss": 1.0}})
    with pytest.raises(InputError, match="objective figure loss would overwrite a schema key"):
        clash.to_json()


def test_missing_keys_are_all_named():
    row = _step(1).to_json()
    del row["lr"], row["mfu"]
    with pytest.raises(InputError, match=r"here: missing metrics key lr, mfu"):
        MetricsRecord.from_json(row, "here")


def test_compressed_metrics_are_read_by_content(tmp_path):
    path = tmp_path / METRICS_FILE
    path.write_bytes(gzip.compress(json.dumps(_step(7).to_json()).encode() + b"\n"))
    assert read_metrics(tmp_path) == [_step(7)]


def test_a_missing_run_is_an_input_error_naming_the_file(tmp_path):
    with pytest.raises(InputError, match=r"metrics.jsonl: file not found"):
        read_metrics(tmp_path / "nothing" / METRICS_FILE)

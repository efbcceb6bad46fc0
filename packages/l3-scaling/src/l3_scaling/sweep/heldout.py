"""Prediction before measurement: the results file of a held-out budget.

The prediction (compute-optimal N*, D*, loss and the downstream forecast at a budget above
the fitted range) is written to ``results.json`` before any run of that budget starts;
:func:`record_measurement` refuses a file without one, and keeps the prediction as written.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from l3_core.io import write_json
from l3_scaling.errors import SweepError

RESULTS = "results.json"


def write_prediction(out_dir: str | Path, prediction: dict[str, Any]) -> Path:
    """Write ``results.json`` holding only the prediction (and when it was made)."""
    path = Path(out_dir) / RESULTS
    write_json(path, {"prediction": {**prediction, "written_at": time.time()}, "measured": None})
    return path


def read_prediction(out_dir: str | Path) -> dict[str, Any]:
    """The prediction in ``results.json``; a :class:`SweepError` when there is none."""
    path = Path(out_dir) / RESULTS
    if not path.is_file():
        raise SweepError(
            f"{path}: no prediction written; predict before training the held-out runs"
        )
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or not isinstance(data.get("prediction"), dict):
        raise SweepError(f"{path}: holds no 'prediction' table")
    prediction: dict[str, Any] = data["prediction"]
    return prediction


def existing_prediction(out_dir: str | Path) -> dict[str, Any] | None:
    """The prediction already written (a rerun keeps it: it was made before the held-out runs
    were trained, a new one might not be), or None."""
    if not (Path(out_dir) / RESULTS).is_file():
        return None
    return read_prediction(out_dir)


def record_measurement(
    out_dir: str | Path, measured: dict[str, Any], errors: dict[str, Any]
) -> Path:
    """Add what the held-out runs measured, and the prediction's errors, to ``results.json``."""
    prediction = read_prediction(out_dir)
    path = Path(out_dir) / RESULTS
    write_json(
        path,
        {
            "prediction": prediction,
            "measured": {**measured, "written_at": time.time()},
            "errors": errors,
        },
    )
    return path


def relative_error(predicted: float, measured: float) -> float:
    """(predicted - measured) / measured."""
    return (predicted - measured) / measured

"""metrics.jsonl is cut back on resume, survives a half-written line, and plots to PNG."""

from __future__ import annotations

import json

from l3_core.train.metrics import plot_loss_curve, read_metrics, truncate_metrics


def test_truncate_drops_steps_after_the_checkpoint(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text("".join(json.dumps({"step": s, "loss": 1.0 / s}) + "\n" for s in range(1, 6))
                    + '{"step": 6, "lo')  # a kill mid-line
    assert [r["step"] for r in read_metrics(path)] == [1, 2, 3, 4, 5]
    truncate_metrics(tmp_path, 3)
    assert [r["step"] for r in read_metrics(path)] == [1, 2, 3]


def test_loss_curve_is_a_png(tmp_path):
    (tmp_path / "metrics.jsonl").write_text(
        "".join(json.dumps({"step": s, "loss": 5 - s * 0.1, **({"val_loss": 5.0} if s % 5 == 0 else {})}) + "\n"
                for s in range(1, 21)))
    out = plot_loss_curve(tmp_path)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

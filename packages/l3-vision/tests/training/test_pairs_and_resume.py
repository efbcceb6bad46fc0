"""Image-text pairs: unreadable images are excluded with file, line and reason; a short run
writes metrics, a checkpoint that captions, and resumes where it stopped."""

from __future__ import annotations

import json
from pathlib import Path

from l3_core.jsonl import Exclusions
from l3_vision.cli import main
from l3_vision.config import DataConfig, OptimConfig, RunConfig
from l3_vision.training.data import read_pairs
from l3_vision.training.loop import train
from l3_vision.training.synthetic import write_dataset


def test_unreadable_images_and_missing_text_are_excluded_with_reasons(tmp_path: Path) -> None:
    pairs = write_dataset(tmp_path, 3, 32, seed=0)
    (tmp_path / "images" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    with pairs.open("a") as f:
        f.write(json.dumps({"image": "images/broken.png", "text": "x"}) + "\n")
        f.write(json.dumps({"image": "images/absent.png", "text": "x"}) + "\n")
        f.write(json.dumps({"image": "images/00000.png"}) + "\n")
        f.write("{not json\n")
    exclusions = Exclusions()
    got = read_pairs(pairs, exclusions)
    assert len(got) == 3
    reasons = {r.line: r.reason for r in exclusions.rows}
    assert set(reasons) == {4, 5, 6, 7}
    assert "cannot decode image" in reasons[4] and "broken.png" in reasons[4]
    assert "not found" in reasons[5]
    assert "field 'text'" in reasons[6]


def test_short_run_writes_metrics_resumes_and_captions(tmp_path: Path, capsys) -> None:
    data = write_dataset(tmp_path / "data", 16, 32, seed=0)
    cfg = RunConfig(
        data=DataConfig(train=str(data), eval=str(data)),
        train=OptimConfig(steps=3, batch_size=4, eval_every=3, checkpoint_every=3, warmup_steps=1),
    )
    run = tmp_path / "run"
    first = train(cfg, run)
    assert first["train_pairs"] == 16 and 0.0 <= first["eval_exact_match_end"] <= 1.0
    cfg.train.steps = 5
    train(cfg, run)
    steps = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4, 5]  # resumed at 4, not restarted
    assert json.loads((run / "checkpoint" / "state.json").read_text())["step"] == 5
    image = tmp_path / "data" / "images" / "00000.png"
    assert main(["caption", "--checkpoint", str(run / "checkpoint" / "model"), str(image)]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and out[0].startswith(str(image))


def test_cli_errors_are_one_line_with_exit_codes(tmp_path: Path, capsys) -> None:
    assert main(["caption", "--checkpoint", str(tmp_path / "absent"), "x.png"]) == 5
    assert "checkpoint directory not found" in capsys.readouterr().err
    assert main(["train", "--run-dir", str(tmp_path / "r")]) == 3  # data.train missing
    assert "data.train is required" in capsys.readouterr().err

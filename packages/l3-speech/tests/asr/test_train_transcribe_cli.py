"""End to end on a few espeak-ng utterances: train, checkpoint, resume, transcribe, CLI errors."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import soundfile

from l3_speech.cli import main
from l3_speech.synth import SynthSpec, synthesize

pytestmark = pytest.mark.skipif(
    shutil.which("espeak-ng") is None,
    reason="espeak-ng is not installed (the nox session installs it)",
)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    out = tmp_path_factory.mktemp("corpus")
    return synthesize(out, SynthSpec(n_train=8, n_test=2, max_digits=4))


def _config(tmp_path, corpus, steps: int = 2) -> str:
    path = tmp_path / "run.toml"
    path.write_text(
        f'run_dir = "{tmp_path / "run"}"\n[data]\ntrain_manifest = "{corpus["train"]}"\n'
        f'eval_manifests = ["{corpus["test_held_out_voice"]}"]\n'
        f'[model]\nencoder = "test"\nadapter = "test"\ntiny_lm_steps = 2\n'
        f"[train]\nsteps = {steps}\nbatch_size = 2\ncheckpoint_every = 1\n"
    )
    return str(path)


def test_train_then_transcribe_prints_one_line_per_file_in_order(tmp_path, corpus, capsys) -> None:
    cfg = _config(tmp_path, corpus)
    assert main(["train", "--config", cfg]) == 0
    figures = json.loads(capsys.readouterr().out)
    assert (
        "wer_before_test_held_out_voice" in figures and "wer_after_test_held_out_voice" in figures
    )
    ckpt = tmp_path / "run" / "checkpoint"
    assert {p.name for p in ckpt.iterdir()} == {
        "speech.json",
        "speech.safetensors",
        "lm",
        "tokenizer.model",
    }
    rows = [
        json.loads(line)
        for line in (tmp_path / "run" / "run" / "metrics.jsonl").read_text().splitlines()
    ]
    assert [r["step"] for r in rows] == [0, 1]

    # A 44.1 kHz copy of the first file transcribes like the 22.05 kHz original.
    wav = corpus["train"].parent / json.loads(corpus["train"].read_text().splitlines()[0])["audio"]
    data, rate = soundfile.read(wav, dtype="float32")
    soundfile.write(tmp_path / "up.wav", np.repeat(data, 2), rate * 2)
    assert (
        main(
            ["transcribe", "--checkpoint", str(ckpt), str(wav), str(tmp_path / "up.wav"), str(wav)]
        )
        == 0
    )
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3 and lines[0] == lines[2]
    assert all(line == line.lower() for line in lines)

    # A file that is not audio stops transcription with exit 4, naming it.
    (tmp_path / "junk.wav").write_bytes(b"junk")
    assert (
        main(["transcribe", "--checkpoint", str(ckpt), str(wav), str(tmp_path / "junk.wav")]) == 4
    )
    assert "junk.wav: unreadable audio" in capsys.readouterr().err

    # Resume: more steps continue from the saved state, the first rows are kept.
    assert main(["train", "--config", cfg, "--set", "train.steps=3"]) == 0
    rows = [
        json.loads(line)
        for line in (tmp_path / "run" / "run" / "metrics.jsonl").read_text().splitlines()
    ]
    assert [r["step"] for r in rows] == [0, 1, 2]


def test_pretrain_runs_bestrq_and_saves_encoder_with_quantiser(tmp_path, corpus, capsys) -> None:
    cfg = tmp_path / "p.toml"
    cfg.write_text(
        f'run_dir = "{tmp_path / "p"}"\nmanifest = "{corpus["train"]}"\nencoder = "test"\n'
        "steps = 2\nbatch_size = 2\n[bestrq]\nn_codes = 64\n"
    )
    assert main(["pretrain", "--config", str(cfg)]) == 0
    figures = json.loads(capsys.readouterr().out)
    assert figures["utterances"] == 8 and figures["first_loss"] > 0
    from safetensors.torch import load_file

    state = load_file(str(tmp_path / "p" / "encoder" / "encoder.safetensors"))
    assert state["quantizer.codebooks"].shape == (16, 64, 16)


def test_errors_are_one_line_with_the_documented_exit_code(tmp_path, corpus, capsys) -> None:
    (tmp_path / "bad.toml").write_text("[train]\nstepz = 3\n")
    assert main(["train", "--config", str(tmp_path / "bad.toml")]) == 3
    assert "unknown config key train.stepz" in capsys.readouterr().err
    assert main(["transcribe", "--checkpoint", str(tmp_path), str(tmp_path / "x.wav")]) == 5
    assert "not a speech checkpoint" in capsys.readouterr().err
    assert main(["pretrain", "--config", str(tmp_path / "bad.toml")]) == 3
    capsys.readouterr()
    cfg = tmp_path / "p.toml"
    cfg.write_text(f'manifest = "{corpus["train"]}"\n[bestrq]\ncodes = 3\n')
    assert main(["pretrain", "--config", str(cfg)]) == 3
    assert "bestrq:" in capsys.readouterr().err

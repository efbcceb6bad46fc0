"""The base install imports no torch: every base module, the presets command, a run config, the
tokenizers and the metrics reader work in an interpreter where torch and the other extras
cannot be imported, and the commands that need an extra say which in one line."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import l3_core
from l3_core.args import list_presets
from l3_core.exit_codes import ExitCode

HERE = Path(__file__).resolve().parent
EXAMPLE = HERE.parents[1] / "examples" / "tiny-cpu.toml"
SRC = Path(l3_core.__file__).resolve().parent

# What the extras bring; none of it may be imported by the base.
BLOCKED = ["torch", "safetensors", "megatron", "transformers", "tensorboard", "matplotlib", "tqdm"]
# Subpackages that are torch code (the model, training, checkpoints, kernels)...
TORCH_PACKAGES = ["checkpoint", "kernels", "model", "parallel", "train"]
# ...but for the trainer's command and package front, which the CLI imports.
BASE_IN_TORCH_PACKAGES = ["l3_core.train", "l3_core.train.cli"]
BASE_MODULES = [
    "l3_core",
    "l3_core.args",
    "l3_core.cli",
    "l3_core.cli_runner",
    "l3_core.config",
    "l3_core.corpus",
    "l3_core.errors",
    "l3_core.exit_codes",
    "l3_core.io",
    "l3_core.jsonl",
    "l3_core.lazy",
    "l3_core.metrics_schema",
    "l3_core.model_file",
    "l3_core.run_config",
    "l3_core.shards",
    "l3_core.tokenizer",
    "l3_core.tokenizer.base",
    "l3_core.tokenizer.chat",
    "l3_core.tokenizer.llama3",
    "l3_core.tokenizer.resources",
    "l3_core.tokenizer.sentencepiece_bpe",
    "l3_core.tokenizer.special",
    "l3_core.versions",
    *BASE_IN_TORCH_PACKAGES,
]


def _module_name(path: Path) -> str:
    parts = ("l3_core", *path.relative_to(SRC).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def test_every_module_outside_the_torch_packages_is_listed_as_base():
    found = {
        _module_name(p)
        for p in SRC.rglob("*.py")
        if p.relative_to(SRC).parts[0] not in TORCH_PACKAGES
    }
    assert found == set(BASE_MODULES) - set(BASE_IN_TORCH_PACKAGES)


@pytest.fixture(scope="module")
def probe(tmp_path_factory) -> dict:
    work = tmp_path_factory.mktemp("no-torch")
    out = work / "result.json"
    # The child sees exactly this interpreter's import path, with the extras blocked in it.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    proc = subprocess.run(
        [
            sys.executable,
            str(HERE / "no_torch_probe.py"),
            str(out),
            json.dumps(BLOCKED),
            json.dumps(BASE_MODULES),
            str(EXAMPLE),
            str(work),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(out.read_text())


def test_the_base_modules_import_and_pull_in_no_extra(probe):
    assert set(BASE_MODULES) <= set(probe["imported"])
    assert probe["blocked_loaded"] == []
    torch_side = [
        m
        for m in probe["imported"]
        if m not in BASE_IN_TORCH_PACKAGES
        and m.split(".")[1:2]
        and m.split(".")[1] in TORCH_PACKAGES
    ]
    assert torch_side == []


def test_presets_and_the_run_config_work_without_torch(probe):
    assert probe["presets"]["code"] == ExitCode.OK
    assert [r["preset"] for r in probe["presets"]["rows"]] == list_presets()
    assert probe["run_config"] == {"world_1": 1, "round_trip": True, "vocab": 8192}
    assert probe["metrics_round_trip"] is True


def test_the_llama3_tokenizer_works_without_torch(probe):
    assert probe["llama3_ids"] == [128000, 2028, 374, 264, 1296, 11914, 13, 128001]


def test_the_small_bpe_works_without_torch(probe):
    if importlib.util.find_spec("sentencepiece") is None:
        pytest.skip("the small BPE needs the spm extra (sentencepiece), not installed here")
    assert probe["small_bpe"] == {"n_words": 400 + 256, "bos": True, "round_trip": True}


def test_commands_that_need_an_extra_say_which_in_one_line(probe):
    for command, extra in (("train", "l3-core[train]"), ("info", "l3-core[model]")):
        got = probe[command]
        assert got["code"] == ExitCode.DEPENDENCY, got
        assert got["err"].startswith(f"l3-core {command}: error: ") and extra in got["err"]
        assert got["err"].count("\n") == 1
    assert probe["lazy_model"].startswith("DependencyError: l3_core.Transformer needs the model")

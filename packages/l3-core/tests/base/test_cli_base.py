"""The l3-core command line without the model extra: presets, --version, and exit codes that
follow the error classes, each failure one line."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from l3_core import ModelArgs, list_presets
from l3_core.cli import main
from l3_core.exit_codes import ExitCode
from l3_core.versions import package_version


def test_presets_lists_every_preset_as_json_with_its_sizes(capsys):
    assert main(["presets", "--json"]) == ExitCode.OK
    rows = json.loads(capsys.readouterr().out)
    assert [r["preset"] for r in rows] == list_presets()
    big = next(r for r in rows if r["preset"] == "llama3.1-405b")
    args = ModelArgs.from_preset("llama3.1-405b")
    assert (big["params"], big["ffn"], big["kv_heads"]) == (args.num_params(), 53248, 8)
    assert big["rope_scaling"] and not big["tied"]


def test_presets_table_has_a_row_per_preset(capsys):
    assert main(["presets"]) == ExitCode.OK
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:3] == ["preset", "params", "dim"]
    assert [line.split()[0] for line in lines[1:]] == list_presets()
    assert "8.030B" in lines[1 + list_presets().index("llama3-8b")]


def test_version_comes_from_the_package_metadata(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0
    assert capsys.readouterr().out == f"l3-core {package_version('l3-core')}\n"


def test_an_unknown_command_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as e:
        main(["nonsense"])
    assert e.value.code == ExitCode.USAGE
    assert "invalid choice: 'nonsense'" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--set", "train.max_stepz=3"], r"unknown config key train\.max_stepz"),
        (["--set", "model.preset=llama9"], "unknown model preset 'llama9'"),
    ],
)
def test_train_refuses_a_bad_config_before_touching_the_trainer(tmp_path, capsys, extra, message):
    path = tmp_path / "run.toml"
    path.write_text('run_dir = "x"\n')
    assert main(["train", "--config", str(path), *extra]) == ExitCode.CONFIG
    err = capsys.readouterr().err
    assert err.startswith("l3-core train: error: ") and err.count("\n") == 1
    assert re.search(message, err)


def test_train_with_a_missing_config_names_the_file(tmp_path, capsys):
    assert main(["train", "--config", str(tmp_path / "none.toml")]) == ExitCode.CONFIG
    assert capsys.readouterr().err == (
        f"l3-core train: error: {tmp_path / 'none.toml'}: config file not found\n"
    )


def test_the_readme_exit_code_table_is_the_one_the_cli_uses():
    readme = Path(__file__).resolve().parents[2] / "README.md"
    rows = re.findall(r"^\| (\d+) \| (\w+)", readme.read_text(encoding="utf-8"), re.MULTILINE)
    assert [(int(code), name) for code, name in rows] == [
        (int(c), c.name.lower()) for c in ExitCode
    ]

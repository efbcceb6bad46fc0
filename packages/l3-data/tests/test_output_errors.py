"""An output that cannot be written is one line naming the path, exit 6 (OutputError), in each
of its forms: a parent that cannot be created, a file in the way, a read-only folder, a folder
where a file should go."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import pytest

from l3_core.exit_codes import ExitCode
from l3_data.cli import main


@pytest.fixture
def read_only(tmp_path, monkeypatch):
    """A folder nobody may write in. As root, permission bits do not stop writes, so the
    operating system's answer for such a folder (EACCES from creating a file) is given instead."""
    ro = tmp_path / "ro"
    ro.mkdir()
    os.chmod(ro, 0o555)
    if os.geteuid() == 0:
        for name in ("mkstemp", "mkdtemp"):
            real = getattr(tempfile, name)

            def refuse(*args, _real=real, **kwargs):
                if Path(kwargs.get("dir", "")).resolve().is_relative_to(ro):
                    raise PermissionError(13, "Permission denied")
                return _real(*args, **kwargs)

            monkeypatch.setattr(tempfile, name, refuse)
    yield ro
    os.chmod(ro, 0o755)


def _input(tmp_path) -> Path:
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps({"id": "a", "text": "a document with a few words in it"}) + "\n")
    return src


def _forms(tmp_path, ro) -> dict[str, Path]:
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    return {
        "missing parent": blocker / "sub" / "out",
        "file in the way": blocker,
        "read-only folder": ro / "out",
    }


def _run_cmd(tmp_path, workdir: Path, output: Path) -> list[str]:
    p = tmp_path / "p.toml"
    p.write_text(
        f'[pipeline]\nworkdir = "{workdir}"\nworkers = 1\n[input]\npaths = ["in.jsonl"]\n'
        f'[[steps]]\ntype = "write_jsonl"\noutput = "{output}"\ncompression = "none"\n'
    )
    return ["run", str(p), "--no-progress"]


def _check(capsys, argv, path: Path) -> None:
    assert main(argv) == ExitCode.IO
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(path) in err and "Traceback" not in err, err


@pytest.mark.parametrize("form", ["missing parent", "file in the way", "read-only folder"])
def test_unwritable_workdir_output_langid_and_dedup_outputs(tmp_path, read_only, capsys, form):
    _input(tmp_path)
    bad = _forms(tmp_path, read_only)[form]
    where = bad.parent if form == "missing parent" else bad
    _check(capsys, _run_cmd(tmp_path, bad, tmp_path / "out"), where)
    _check(capsys, _run_cmd(tmp_path, tmp_path / "w", bad), where)
    src = str(tmp_path / "in.jsonl")
    if form != "file in the way":  # a file there is the output being replaced, as intended
        _check(capsys, ["langid", src, str(bad / "out.jsonl")], bad)
    _check(capsys, ["dedup", src, str(bad)], bad)


def test_a_folder_where_a_file_should_go(tmp_path, capsys):
    src = str(_input(tmp_path))
    (tmp_path / "lang.jsonl").mkdir()
    _check(capsys, ["langid", src, str(tmp_path / "lang.jsonl")], tmp_path / "lang.jsonl")
    (tmp_path / "dd" / "kept.jsonl").mkdir(parents=True)
    _check(capsys, ["dedup", src, str(tmp_path / "dd")], tmp_path / "dd" / "kept.jsonl")
    (tmp_path / "out" / "t0000c00000.jsonl").mkdir(parents=True)
    target = tmp_path / "out" / "t0000c00000.jsonl"
    _check(capsys, _run_cmd(tmp_path, tmp_path / "w", tmp_path / "out"), target)
    (tmp_path / "w2" / "pipeline.json").mkdir(parents=True)
    _check(capsys, _run_cmd(tmp_path, tmp_path / "w2", tmp_path / "o2"), tmp_path / "w2")

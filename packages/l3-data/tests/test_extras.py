"""The base install runs without the heavy extras, and a step whose extra is missing is
refused when the pipeline is loaded, naming the step and the install command."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from l3_core.errors import DependencyError
from l3_core.exit_codes import ExitCode
from l3_data.cli import main
from l3_data.errors import MissingExtraError
from l3_data.pipeline import Pipeline

HEAVY = ("trafilatura", "sklearn", "fasttext", "pyarrow", "ray", "sentencepiece")


def test_base_steps_run_without_importing_any_extra(tmp_path):
    (tmp_path / "in.jsonl").write_text(
        "".join(
            json.dumps({"text": " ".join(f"w{i}x{k}" for k in range(30))}) + "\n" for i in range(5)
        )
    )
    script = textwrap.dedent(f"""
        import sys
        from l3_data import Pipeline, run_pipeline
        import l3_data.cli
        pipe = Pipeline.from_dict({{
            "pipeline": {{"workdir": {str(tmp_path / "w")!r}, "workers": 1}},
            "input": {{"paths": [{str(tmp_path / "in.jsonl")!r}]}},
            "steps": [{{"type": "length_filter", "min_chars": 10}}, {{"type": "exact_dedup"}},
                      {{"type": "minhash_dedup"}}, {{"type": "gopher_repetition"}},
                      {{"type": "write_jsonl", "output": {str(tmp_path / "out")!r}}}],
        }})
        report = run_pipeline(pipe, progress=False)
        assert report["documents_out"] == 5, report
        print(sorted(m for m in {HEAVY!r} if m in sys.modules))
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize(
    "step,module,extra",
    [
        ({"type": "html_to_text"}, "trafilatura", "html"),
        ({"type": "langid"}, "fasttext", "langid"),
        ({"type": "classify", "model": "q.bin"}, "sklearn", "classify"),
        ({"type": "tokenize", "output": "shards"}, "sentencepiece", "tokenize"),
    ],
)
def test_step_without_its_extra_is_refused_at_load_naming_step_and_command(
    tmp_path, monkeypatch, step, module, extra
):
    monkeypatch.setitem(sys.modules, module, None)  # find_spec then reports it missing
    data = {"input": {"paths": ["in.jsonl"]}, "steps": [{"type": "length_filter"}, step]}
    with pytest.raises(MissingExtraError) as info:
        Pipeline.from_dict(data, origin="p.toml")
    assert isinstance(info.value, DependencyError)
    msg = str(info.value)
    assert f"p.toml: steps[1] ({step['type']})" in msg and module in msg
    assert f"pip install 'l3-data[{extra}]'" in msg


def test_input_format_and_executor_without_their_extra_are_refused(monkeypatch):
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(MissingExtraError, match=r"input.format = 'parquet'.*l3-data\[parquet\]"):
        Pipeline.from_dict({"input": {"format": "parquet", "paths": ["a.parquet"]}})
    with pytest.raises(MissingExtraError, match=r"pipeline.executor = 'ray'.*l3-data\[ray\]"):
        Pipeline.from_dict({"pipeline": {"executor": "ray"}, "input": {"paths": ["a.jsonl"]}})


def test_cli_exits_with_the_dependency_code(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "trafilatura", None)
    p = tmp_path / "p.toml"
    p.write_text('[input]\npaths = ["in.jsonl"]\n[[steps]]\ntype = "html_to_text"\n')
    assert main(["run", str(p)]) == ExitCode.DEPENDENCY
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pip install 'l3-data[html]'" in err

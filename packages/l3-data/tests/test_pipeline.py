from __future__ import annotations

import pytest

from l3_data.errors import PipelineConfigError
from l3_data.pipeline import Pipeline, segments


def _toml(tmp_path, body: str):
    p = tmp_path / "pipe.toml"
    p.write_text('[input]\nformat = "jsonl"\npaths = ["in.jsonl"]\n' + body)
    return p


def test_unknown_step_type_names_file_index_and_known_steps(tmp_path):
    p = _toml(tmp_path, '[[steps]]\ntype = "minhash_dedup"\n[[steps]]\ntype = "dedupe"\n')
    with pytest.raises(PipelineConfigError, match=r"pipe\.toml: steps\[1\] \(dedupe\): unknown step type 'dedupe'; known: .*minhash_dedup"):
        Pipeline.from_toml(p)


def test_unknown_option_names_file_and_key(tmp_path):
    p = _toml(tmp_path, '[[steps]]\ntype = "gopher_quality"\nmin_wrods = 10\n')
    with pytest.raises(PipelineConfigError, match=r"pipe\.toml: unknown config key steps\[0\] \(gopher_quality\)\.min_wrods"):
        Pipeline.from_toml(p)


def test_wrong_value_type_and_unknown_table_are_errors(tmp_path):
    p = _toml(tmp_path, '[[steps]]\ntype = "minhash_dedup"\nbands = "many"\n')
    with pytest.raises(PipelineConfigError, match=r"bands: expected int, got 'many'"):
        Pipeline.from_toml(p)
    p = _toml(tmp_path, '[outputs]\nx = 1\n')
    with pytest.raises(PipelineConfigError, match="unknown table 'outputs'"):
        Pipeline.from_toml(p)
    p.write_text("[pipeline\n")
    with pytest.raises(PipelineConfigError, match="not valid TOML"):
        Pipeline.from_toml(p)


def test_relative_paths_resolve_against_the_pipeline_file(tmp_path):
    p = _toml(tmp_path, '[pipeline]\nworkdir = "w"\n[[steps]]\ntype = "write_jsonl"\noutput = "out"\n')
    pipe = Pipeline.from_toml(p)
    assert pipe.settings.workdir == str(tmp_path / "w")
    assert pipe.input.paths == [str(tmp_path / "in.jsonl")]
    assert pipe.steps[0]["output"] == str(tmp_path / "out")


def test_global_steps_split_the_pipeline_into_segments(tmp_path):
    p = _toml(tmp_path, "".join(f'[[steps]]\ntype = "{t}"\n' for t in
                                ("length_filter", "exact_dedup", "gopher_quality", "gopher_repetition",
                                 "minhash_dedup")))
    steps = Pipeline.from_toml(p).build_steps()
    assert segments(steps) == [([0], 1), ([2, 3], 4), ([], None)]


def test_shipped_example_pipeline_is_valid():
    from pathlib import Path

    example = Path(__file__).parents[1] / "examples" / "llama3_web.toml"
    steps = Pipeline.from_toml(example).build_steps()
    assert [s.type_name for s in steps][:3] == ["html_to_text", "url_dedup", "langid"]
    assert len(segments(steps)) == 7

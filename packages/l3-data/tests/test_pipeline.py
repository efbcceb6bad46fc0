from __future__ import annotations

from typing import ClassVar  # at module level: dataclasses look ClassVar up here

import pytest

from l3_data.errors import PipelineConfigError
from l3_data.pipeline import Pipeline, segments


def _toml(tmp_path, body: str):
    p = tmp_path / "pipe.toml"
    p.write_text('[input]\nformat = "jsonl"\npaths = ["in.jsonl"]\n' + body)
    return p


def test_unknown_step_type_names_file_index_and_known_steps(tmp_path):
    p = _toml(tmp_path, '[[steps]]\ntype = "minhash_dedup"\n[[steps]]\ntype = "dedupe"\n')
    with pytest.raises(
        PipelineConfigError,
        match=r"pipe\.toml: steps\[1\] \(dedupe\): unknown step type 'dedupe'; known: .*minhash_dedup",
    ):
        Pipeline.from_toml(p)


def test_unknown_option_names_file_and_key(tmp_path):
    p = _toml(tmp_path, '[[steps]]\ntype = "gopher_quality"\nmin_wrods = 10\n')
    with pytest.raises(
        PipelineConfigError,
        match=r"pipe\.toml: unknown config key steps\[0\] \(gopher_quality\)\.min_wrods",
    ):
        Pipeline.from_toml(p)


def test_wrong_value_type_and_unknown_table_are_errors(tmp_path):
    p = _toml(tmp_path, '[[steps]]\ntype = "minhash_dedup"\nbands = "many"\n')
    with pytest.raises(PipelineConfigError, match=r"bands: expected int, got 'many'"):
        Pipeline.from_toml(p)
    p = _toml(tmp_path, "[outputs]\nx = 1\n")
    with pytest.raises(PipelineConfigError, match="unknown table 'outputs'"):
        Pipeline.from_toml(p)
    p.write_text("[pipeline\n")
    with pytest.raises(PipelineConfigError, match="not valid TOML"):
        Pipeline.from_toml(p)


def test_relative_paths_resolve_against_the_pipeline_file(tmp_path):
    p = _toml(
        tmp_path, '[pipeline]\nworkdir = "w"\n[[steps]]\ntype = "write_jsonl"\noutput = "out"\n'
    )
    pipe = Pipeline.from_toml(p)
    assert pipe.settings.workdir == str(tmp_path / "w")
    assert pipe.input.paths == [str(tmp_path / "in.jsonl")]
    assert pipe.steps[0]["output"] == str(tmp_path / "out")


def test_global_steps_split_the_pipeline_into_segments(tmp_path):
    p = _toml(
        tmp_path,
        "".join(
            f'[[steps]]\ntype = "{t}"\n'
            for t in (
                "length_filter",
                "exact_dedup",
                "gopher_quality",
                "gopher_repetition",
                "minhash_dedup",
            )
        ),
    )
    steps = Pipeline.from_toml(p).build_steps()
    assert segments(steps) == [([0], 1), ([2, 3], 4), ([], None)]


def test_shipped_example_pipeline_is_valid():
    from pathlib import Path

    example = Path(__file__).parents[1] / "examples" / "llama3_web.toml"
    steps = Pipeline.from_toml(example).build_steps()
    assert [s.type_name for s in steps][:3] == ["html_to_text", "url_dedup", "langid"]
    assert len(segments(steps)) == 7


def test_every_steps_declared_path_fields_resolve_and_builtin_names_stay(tmp_path):
    from dataclasses import dataclass, field

    from l3_data.steps import STEPS, Step, register

    @register("test_paths")
    @dataclass(kw_only=True)
    class PathsStep(Step):
        path_fields = ("table", "files", "single")
        builtin_values: ClassVar[dict[str, tuple[str, ...]]] = {"single": ("builtin",)}

        table: dict[str, str] = field(default_factory=dict)
        files: list[str] = field(default_factory=list)
        single: str = ""
        other: str = ""

    try:
        pipe = Pipeline.from_dict(
            {
                "input": {"paths": ["in.jsonl"]},
                "steps": [
                    {
                        "type": "test_paths",
                        "table": {"en": "en.txt"},
                        "files": ["a", "/abs/b"],
                        "single": "builtin",
                        "other": "not/a/path",
                    },
                    {"type": "tokenize", "output": "shards", "tokenizer": "llama3"},
                    {"type": "tokenize", "output": "shards", "tokenizer": "tok.model"},
                    {"type": "dirty_words", "word_lists": {"fr": "fr.txt"}},
                    {"type": "langid"},
                ],
            },
            base=tmp_path,
        )
    finally:
        del STEPS["test_paths"]
    custom, llama3, spm, dirty, langid = pipe.steps
    assert custom == {
        "type": "test_paths",
        "table": {"en": str(tmp_path / "en.txt")},
        "files": [str(tmp_path / "a"), "/abs/b"],
        "single": "builtin",
        "other": "not/a/path",
    }
    assert llama3["tokenizer"] == "llama3" and llama3["output"] == str(tmp_path / "shards")
    assert spm["tokenizer"] == str(tmp_path / "tok.model")
    assert dirty["word_lists"] == {"fr": str(tmp_path / "fr.txt")}
    assert langid == {"type": "langid"}  # "" / unset: the built-in model


def test_set_reaches_any_key_including_one_step(tmp_path):
    p = _toml(tmp_path, '[[steps]]\ntype = "length_filter"\n[[steps]]\ntype = "minhash_dedup"\n')
    pipe = Pipeline.from_toml(
        p,
        [
            "pipeline.workers=3",
            'input.text_key="body"',
            "steps.1.threshold=0.8",
            "steps.0.min_chars=7",
        ],
    )
    assert pipe.settings.workers == 3 and pipe.input.text_key == "body"
    assert pipe.steps[1]["threshold"] == 0.8 and pipe.steps[0]["min_chars"] == 7
    with pytest.raises(PipelineConfigError, match=r"steps\.N\.option.*2 steps"):
        Pipeline.from_toml(p, ["steps.5.threshold=0.8"])
    with pytest.raises(PipelineConfigError, match=r"steps\[1\] \(minhash_dedup\)\.treshold"):
        Pipeline.from_toml(p, ["steps.1.treshold=0.8"])
    with pytest.raises(PipelineConfigError, match="unknown table 'workers'"):
        Pipeline.from_toml(p, ["workers=3"])


def test_unknown_executor_lists_the_registered_ones(tmp_path):
    p = _toml(tmp_path, '[pipeline]\nexecutor = "slurm"\n')
    with pytest.raises(
        PipelineConfigError, match=r"executor = 'slurm': expected one of \['local', 'ray'\]"
    ):
        Pipeline.from_toml(p)


@pytest.mark.parametrize(
    "step",
    [
        'type = "kl_outliers"\nbins = 1000',
        'type = "write_jsonl"\noutput = "o"\ncompression = "bz2"',
    ],
)
def test_invalid_option_values_are_refused_at_load(tmp_path, step):
    p = _toml(tmp_path, f"[[steps]]\n{step}\n")
    with pytest.raises(
        PipelineConfigError, match=r"pipe\.toml: .*(bins = 1000|compression = 'bz2')"
    ):
        Pipeline.from_toml(p)

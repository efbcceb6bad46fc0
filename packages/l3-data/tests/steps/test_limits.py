"""Every step option with a meaningless value is refused at load, naming step, option, value."""

from __future__ import annotations

import dataclasses
import typing

import pytest

from l3_data.errors import PipelineConfigError
from l3_data.pipeline import Pipeline
from l3_data.steps import STEPS
from l3_data.steps.limits import FRACTION, OneOf, PowerOfTwo, Range, violations

# Options whose every value is meaningful (any seed is a seed).
UNBOUNDED = {"seed"}


def _load(step: dict, **tables):
    return Pipeline.from_dict({"input": {"paths": ["in.jsonl"]}, "steps": [step], **tables})


def test_minhash_nonsense_is_refused_naming_step_option_and_value():
    with pytest.raises(PipelineConfigError) as e:
        _load({"type": "minhash_dedup", "bands": -3, "rows": 0, "threshold": 7.5})
    msg = str(e.value)
    assert "steps[0] (minhash_dedup)" in msg
    assert "bands = -3: expected a number >= 1" in msg
    assert "rows = 0: expected a number >= 1" in msg
    assert "threshold = 7.5: expected a number in [0, 1]" in msg


@pytest.mark.parametrize(
    ("step", "fragment"),
    [
        ({"type": "langid", "thresholds": {"en": 1.5}}, "thresholds.en = 1.5"),
        ({"type": "gopher_quality", "min_alpha_words_ratio": -0.1}, "min_alpha_words_ratio = -0.1"),
        ({"type": "gopher_repetition", "top_ngram_max": {"x": 0.2}}, "top_ngram_max.x"),
        ({"type": "gopher_repetition", "dup_ngram_max": {"5": 2.0}}, "dup_ngram_max.5 = 2.0"),
        ({"type": "line_dedup", "max_count": 0}, "max_count = 0"),
        ({"type": "kl_outliers", "z": 0}, "z = 0.0: expected a number > 0"),
        ({"type": "kl_outliers", "bins": 1000}, "bins = 1000: expected a power of two"),
        ({"type": "mix", "targets": {"a": 0.0}}, "positive sum"),
        ({"type": "mix", "targets": {"a": -1.0, "b": 2.0}}, "targets.a = -1.0"),
        ({"type": "write_jsonl", "output": "o", "compression": "bz2"}, "compression = 'bz2'"),
        ({"type": "minhash_dedup", "threshold": float("nan")}, "threshold = nan"),
    ],
)
def test_out_of_range_values_are_refused_at_load(step, fragment):
    with pytest.raises(PipelineConfigError, match=r"steps\[0\] \(\w+\): .*") as e:
        _load(step)
    assert fragment in str(e.value)


def test_in_range_edges_load():
    _load({"type": "minhash_dedup", "bands": 1, "rows": 1, "threshold": 1.0})
    _load({"type": "gopher_quality", "min_words": None, "min_alpha_words_ratio": 0.0})


def test_pipeline_and_input_settings_are_checked_too():
    with pytest.raises(PipelineConfigError, match=r"pipeline\.workers = -1"):
        _load({"type": "exact_dedup"}, pipeline={"workers": -1})
    with pytest.raises(PipelineConfigError, match=r"input\.max_chars = 0"):
        Pipeline.from_dict({"input": {"paths": ["x"], "max_chars": 0}})


def _numeric(hint) -> bool:
    args = typing.get_args(hint)
    if hint in (int, float):
        return True
    if typing.get_origin(hint) is dict:
        return _numeric(args[1])
    return any(a in (int, float) for a in args)  # int | None, float | None


@pytest.mark.parametrize("name", sorted(STEPS))
def test_every_numeric_option_of_every_step_has_a_limit(name):
    cls = STEPS[name]
    hints = typing.get_type_hints(cls)
    unbounded = [
        f.name
        for f in dataclasses.fields(cls)
        if f.init and _numeric(hints[f.name]) and f.name not in cls.limits
    ]
    assert [n for n in unbounded if n not in UNBOUNDED] == []
    assert set(cls.limits) <= {f.name for f in dataclasses.fields(cls)}


def test_checks_say_what_they_accept():
    assert str(Range(0, 1, high_open=True)) == "a number in [0, 1)"
    assert violations({"x": True}, {"x": FRACTION}) == []  # types are the loader's job
    assert violations({"c": "gz"}, {"c": OneOf(("gz", "none"))}) == []
    assert not PowerOfTwo().accepts(0) and PowerOfTwo().accepts(1 << 18)
    assert violations({"t": [0.5, 2]}, {"t": FRACTION}) == ["t[1] = 2: expected a number in [0, 1]"]

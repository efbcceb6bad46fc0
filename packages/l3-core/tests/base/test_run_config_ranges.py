"""Every numeric run-config field with a meaningless range is refused at start-up, naming the
file, the key, the value and what is allowed; through the CLI that is exit 3."""

from __future__ import annotations

import dataclasses
import re
import types
import typing

import pytest

from l3_core.cli import main
from l3_core.errors import ConfigError
from l3_core.exit_codes import ExitCode
from l3_core.run_config import RANGES, Range, RunConfig, load_run_config

BAD = [
    ("optimizer.min_lr_ratio=-5", r"optimizer\.min_lr_ratio = -5\.0: must be in \[0, 1\]"),
    ("optimizer.clip_grad=-1", r"optimizer\.clip_grad = -1\.0: must be >= 0"),
    ("optimizer.lr=nan", r"optimizer\.lr = nan: must be > 0"),
    ("optimizer.lr=-1", r"optimizer\.lr = -1\.0: must be > 0"),
    ("optimizer.lr=inf", r"optimizer\.lr = inf: must be > 0"),
    ("optimizer.beta1=1", r"optimizer\.beta1 = 1\.0: must be in \[0, 1\)"),
    ("optimizer.beta2=-0.1", r"optimizer\.beta2 = -0\.1: must be in \[0, 1\)"),
    ("optimizer.eps=0", r"optimizer\.eps = 0\.0: must be > 0"),
    ("optimizer.weight_decay=-0.1", r"optimizer\.weight_decay = -0\.1: must be >= 0"),
    ("schedule.warmup_steps=-4", r"schedule\.warmup_steps = -4: must be >= 0"),
    ("schedule.decay_steps=-1", r"schedule\.decay_steps = -1: must be >= 0"),
    ("schedule.anneal_fraction=1.5", r"schedule\.anneal_fraction = 1\.5: must be in \[0, 1\]"),
    ("schedule.anneal_weights={code = -1}", r"schedule\.anneal_weights\.code = -1\.0"),
    ("schedule.batch_ramp=[[0, 8], [5, 0]]", r"schedule\.batch_ramp\[1\]\[1\] = 0: must be >= 1"),
    ("schedule.seq_ramp=[[-1, 64]]", r"schedule\.seq_ramp\[0\]\[0\] = -1: must be >= 0"),
    ("train.global_batch_size=0", r"train\.global_batch_size = 0: must be >= 1"),
    ("train.micro_batch_size=0", r"train\.micro_batch_size = 0: must be >= 1"),
    ("train.max_steps=-1", r"train\.max_steps = -1: must be >= 0"),
    ("train.eval_every=-1", r"train\.eval_every = -1: must be >= 0"),
    ("train.eval_batches=0", r"train\.eval_batches = 0: must be >= 1"),
    ("train.seed=-1", r"train\.seed = -1: must be in \[0, 4294967295\]"),
    ("train.peak_flops=-1", r"train\.peak_flops = -1\.0: must be >= 0"),
    (
        "train.collective_timeout_s=0",
        r"train\.collective_timeout_s = 0\.0: must be in \(0, 604800\]",
    ),
    ("data.seq_len=0", r"data\.seq_len = 0: must be >= 1"),
    ("data.val_fraction=1", r"data\.val_fraction = 1\.0: must be in \[0, 1\)"),
    ("data.weights={web = nan}", r"data\.weights\.web = nan: must be >= 0"),
    ("model.dim=0", r"model\.dim = 0: must be >= 1"),
    ("model.norm_eps=-1e-5", r"model\.norm_eps = -1e-05: must be > 0"),
    ("model.init_std=0", r"model\.init_std = 0\.0: must be > 0"),
    ("checkpoint.keep_last=0", r"checkpoint\.keep_last = 0: must be >= 1"),
    ("checkpoint.every=-2", r"checkpoint\.every = -2: must be >= 0"),
    ("long_context.stages=[{seq_len = 0, steps = 1}]", r"stages\[0\]\.seq_len = 0"),
    ("long_context.needle_trials=-1", r"long_context\.needle_trials = -1: must be >= 0"),
    ("parallel.dp=-1", r"parallel\.dp = -1: must be >= 0"),
    ("parallel.tp=0", r"parallel\.tp = 0: must be >= 1"),
]


@pytest.mark.parametrize(("override", "message"), BAD)
def test_a_value_out_of_range_names_file_key_value_and_what_is_allowed(tmp_path, override, message):
    path = tmp_path / "run.toml"
    path.write_text('run_dir = "x"\n')
    with pytest.raises(ConfigError) as e:
        load_run_config(path, [override])
    assert str(e.value).startswith(f"{path}: ")
    assert re.search(message, str(e.value)), str(e.value)


@pytest.mark.parametrize(("override", "message"), BAD[:6])
def test_validate_refuses_the_same_values_in_a_config_built_in_code(override, message):
    key, value = override.split("=")
    table, name = key.split(".")
    cfg = RunConfig()
    setattr(getattr(cfg, table), name, float(value))
    with pytest.raises(ConfigError, match=message):
        cfg.validate(1)


@pytest.mark.parametrize("override", ["optimizer.min_lr_ratio=-5", "optimizer.lr=nan"])
def test_the_train_command_exits_3_with_one_line(tmp_path, capsys, override):
    path = tmp_path / "run.toml"
    path.write_text('run_dir = "x"\n')
    assert main(["train", "--config", str(path), "--set", override]) == ExitCode.CONFIG
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(path) in err and override.split("=")[0] in err


def test_the_defaults_and_the_edges_of_each_range_are_accepted():
    RunConfig().validate(1)
    load_run_config(
        None,
        [
            "optimizer.min_lr_ratio=0",
            "optimizer.min_lr_ratio=1",
            "optimizer.beta1=0",
            "optimizer.clip_grad=0",
            "optimizer.weight_decay=0",
            "schedule.warmup_steps=0",
            "train.eval_every=0",
            "checkpoint.keep_last=1",
            "data.val_fraction=0",
        ],
    )


def _numeric(tp) -> bool:
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return any(_numeric(a) for a in typing.get_args(tp) if a is not type(None))
    return tp in (int, float)


def _numeric_fields(cls, prefix: str = ""):
    for f in dataclasses.fields(cls):
        tp = typing.get_type_hints(cls)[f.name]
        if dataclasses.is_dataclass(tp):
            yield from _numeric_fields(tp, f"{prefix}{f.name}.")
        elif _numeric(tp):
            yield f"{prefix}{f.name}"


def test_every_numeric_field_of_every_table_has_a_range():
    missing = [name for name in _numeric_fields(RunConfig) if name not in RANGES]
    assert missing == []


@pytest.mark.parametrize(
    ("allowed", "text", "inside", "outside"),
    [
        (Range(0, 1, high_open=True), "in [0, 1)", [0, 0.5, 0.999], [1, -1e-9, float("nan")]),
        (Range(0, low_open=True), "> 0", [1e-300, 5], [0, -1, float("inf")]),
        (Range(None, 3), "<= 3", [-1e9, 3], [3.0001, True]),
    ],
)
def test_range_bounds_and_their_description(allowed, text, inside, outside):
    assert str(allowed) == text
    assert all(allowed.allows(v) for v in inside)
    assert not any(allowed.allows(v) for v in outside)

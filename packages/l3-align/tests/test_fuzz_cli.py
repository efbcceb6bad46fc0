"""Property tests over the reward-model, score and sample commands and the run configs: any
input rows, any damage to a reward-model directory and any setting either work (every row
scored, kept or excluded, none dropped) or give one line with a documented exit code, never a
traceback (exit 70).

Bounded (``max_examples``), a few seconds each on a 2-core machine."""

from __future__ import annotations

import json
import math
import shutil
import tempfile
from dataclasses import fields
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from l3_align import load_reward_model
from l3_align.commands_rm import COMMANDS
from l3_align.config import AlignConfig
from l3_align.rm.checkpoint import save_reward_model
from l3_align.rm.model import RewardModel
from l3_align.sampling.config import SampleRunConfig
from l3_align.synthetic import preference_rows, prompt_messages
from l3_core.args import ModelArgs
from l3_core.checkpoint import save_checkpoint
from l3_core.cli_runner import run_cli
from l3_core.errors import ConfigError, L3Error, ModelFileError
from l3_core.exit_codes import ExitCode
from l3_core.jsonl import read_jsonl
from l3_core.model import Transformer

FUZZ = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
_json = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 50) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=6,
)


def cli(argv: list[str]) -> int:
    return run_cli("l3-align", COMMANDS, argv)


@pytest.fixture(scope="module")
def dirs(tmp_path_factory, tokenizer) -> Path:
    work = tmp_path_factory.mktemp("fuzz")
    args = ModelArgs(
        dim=32, n_layers=1, n_heads=4, n_kv_heads=2, vocab_size=tokenizer.n_words, max_seq_len=96
    )
    policy = work / "policy"
    save_checkpoint(Transformer.build(args, seed=0), policy, format="l3")
    shutil.copyfile(tokenizer.path, policy / "tokenizer.model")
    rm = RewardModel(Transformer.build(args, seed=1))
    rm.init_score(torch.Generator().manual_seed(1))
    save_reward_model(rm, work / "rm", tokenizer.path, tokenizer.pad_id)
    return work


_good = preference_rows(4, seed=0)
_pref_line = st.one_of(
    st.sampled_from(_good).map(json.dumps),
    st.fixed_dictionaries(
        {"prompt": _json, "chosen": _json, "rejected": _json}, optional={"edited": _json}
    ).map(json.dumps),
    _json.map(json.dumps),
    st.text(max_size=20).map(lambda t: t.replace("\n", " ")),
)


@FUZZ
@given(lines=st.lists(_pref_line, max_size=6), batch=st.sampled_from(["1", "3", "16"]))
def test_score_gives_one_line_per_usable_row_and_excludes_the_rest(dirs, lines, batch):
    with tempfile.TemporaryDirectory() as d:
        data, out = Path(d) / "p.jsonl", Path(d) / "s.jsonl"
        data.write_text("".join(line + "\n" for line in lines))
        rc = cli(["score", "--reward-model", str(dirs / "rm"), "--data", str(data),
                  "--out", str(out), "--batch-size", batch])  # fmt: skip
        blank = sum(1 for line in lines if not line.strip())
        if rc == ExitCode.OK:
            scored = read_jsonl(out)
            excluded_file = out.with_suffix(".exclusions.jsonl")
            excluded = read_jsonl(excluded_file) if excluded_file.exists() else []
            assert len(scored) + len(excluded) == len(lines) - blank
            assert all(math.isfinite(r["chosen_score"]) for r in scored)
        else:
            assert rc == ExitCode.INPUT


@pytest.mark.parametrize("value", ["0", "-1"])
def test_a_batch_size_below_1_is_refused_not_an_empty_output(dirs, tmp_path, capsys, value):
    data = tmp_path / "p.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in _good))
    argv = ["score", "--reward-model", str(dirs / "rm"), "--data", str(data),
            "--batch-size", value]  # fmt: skip
    assert cli(argv) == ExitCode.CONFIG
    captured = capsys.readouterr()
    assert captured.out == "" and f"--batch-size = {value}" in captured.err


@FUZZ
@given(
    which=st.sampled_from(["config.json", "model.safetensors"]),
    cut=st.floats(0, 1),
    flips=st.lists(st.tuples(st.floats(0, 1), st.integers(0, 255)), max_size=3),
)
def test_a_damaged_reward_model_loads_or_is_a_model_file_error(dirs, which, cut, flips):
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "rm"
        shutil.copytree(dirs / "rm", path)
        data = (path / which).read_bytes()
        damaged = bytearray(data[: int(cut * len(data))])
        for pos, val in flips:
            if damaged:
                damaged[int(pos * (len(damaged) - 1))] = val
        (path / which).write_bytes(bytes(damaged))
        try:
            load_reward_model(path)
        except ModelFileError as e:
            assert str(path) in str(e)


_prompt_line = st.one_of(
    st.just(json.dumps({"messages": prompt_messages([3, 1, 2])})),
    st.fixed_dictionaries({"messages": st.one_of(_json, st.lists(_json, max_size=2))}).map(
        json.dumps
    ),
    _json.map(json.dumps),
)
_setting = st.one_of(
    st.tuples(st.sampled_from(["sample.k", "sample.max_new_tokens", "sample.batch_size"]),
              st.sampled_from(["-1", "0", "1", "2", "nan", "x"])),
    st.tuples(st.sampled_from(["sample.temperature", "sample.top_p"]),
              st.sampled_from(["-1", "0", "0.5", "1", "1.5", "nan", "inf"])),
)  # fmt: skip


@FUZZ
@given(lines=st.lists(_prompt_line, max_size=3), setting=_setting)
def test_sample_keeps_or_excludes_every_prompt_or_refuses_in_one_line(dirs, capsys, lines, setting):
    with tempfile.TemporaryDirectory() as d:
        prompts, out = Path(d) / "p.jsonl", Path(d) / "kept.jsonl"
        prompts.write_text("".join(line + "\n" for line in lines))
        key, value = setting
        capsys.readouterr()
        rc = cli(["sample", "--model", str(dirs / "policy"), "--reward-model", str(dirs / "rm"),
                  "--prompts", str(prompts), "--out", str(out), "--k", "2",
                  "--set", "sample.max_new_tokens=3", "--set", f"{key}={value}"])  # fmt: skip
        err = capsys.readouterr().err
        assert rc in (ExitCode.OK, ExitCode.CONFIG, ExitCode.INPUT), (rc, err)
        if rc != ExitCode.OK:
            assert len(err.strip().splitlines()) == 1, err
            return
        excluded_file = out.with_suffix(".exclusions.jsonl")
        excluded = read_jsonl(excluded_file) if excluded_file.exists() else []
        assert len(read_jsonl(out)) + len(excluded) == len(lines)


def _numeric_keys(cfg: object, prefix: str = "") -> list[str]:
    out = []
    for f in fields(cfg):
        value = getattr(cfg, f.name)
        if hasattr(value, "__dataclass_fields__"):
            out += _numeric_keys(value, f"{prefix}{f.name}.")
        elif type(value) in (int, float):
            out.append(prefix + f.name)
    return out


@FUZZ
@given(
    config=st.sampled_from([AlignConfig, SampleRunConfig]),
    data=st.data(),
    value=st.one_of(st.integers(-(10**6), 10**6), st.floats(allow_nan=True, allow_infinity=True)),
)
def test_a_setting_validates_only_when_it_is_finite(config, data, value):
    cfg = config()
    key = data.draw(
        st.sampled_from([k for k in _numeric_keys(cfg) if not k.startswith("parallel.")])
    )
    *path, name = key.split(".")
    section = cfg
    for part in path:
        section = getattr(section, part)
    setattr(section, name, value)
    try:
        cfg.validate()
    except ConfigError as e:
        assert key in str(e)
        return
    except L3Error:  # a value that only fails with another (e.g. the batch multiple)
        return
    assert math.isfinite(value), f"{key} = {value} was accepted"


@FUZZ
@given(weights=st.lists(st.floats(allow_nan=True, allow_infinity=True), min_size=1, max_size=3))
def test_averaging_weights_are_finite_normalised_or_refused(weights):
    from l3_align.average import check_weights

    try:
        ws = check_weights(weights, 2)
    except ConfigError as e:
        assert "--weights" in str(e)
        return
    assert len(ws) == 2 and all(math.isfinite(w) and w >= 0 for w in ws)
    assert math.isclose(sum(ws), 1.0)


@pytest.mark.parametrize("weights", [[math.nan, 1.0], [math.inf, 1.0]])
def test_a_weight_that_is_not_finite_is_refused(weights):
    from l3_align.average import check_weights

    with pytest.raises(ConfigError, match="finite non-negative weights"):
        check_weights(weights, 2)

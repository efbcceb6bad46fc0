"""Run configs: TOML + --set, unknown keys and inconsistent sizes rejected with the value named,
and written back as TOML that reads back equal."""

from __future__ import annotations

from pathlib import Path

import pytest

from l3_core.config import read_toml, to_dict
from l3_core.errors import ConfigError
from l3_core.run_config import (
    LongContextStage,
    ParallelSizes,
    RunConfig,
    load_run_config,
    write_run_config,
)

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_set_overrides_reach_every_table(tmp_path):
    cfg = load_run_config(
        EXAMPLES / "tiny-cpu.toml",
        [
            "parallel.tp=2",
            "parallel.pp=2",
            "parallel.cp=2",
            "parallel.dp=1",
            "train.max_steps=3",
            "train.seed=7",
            f"run_dir={tmp_path}",
            "model.n_layers=4",
        ],
    )
    assert (cfg.parallel.tp, cfg.parallel.pp, cfg.parallel.cp, cfg.parallel.dp) == (2, 2, 2, 1)
    assert (cfg.train.max_steps, cfg.train.seed, cfg.run_dir) == (3, 7, str(tmp_path))
    assert cfg.model.args().n_layers == 4
    assert cfg.model.args().vocab_size == 8192  # from the TOML, over the preset's 512


def test_unknown_key_is_named_with_the_valid_ones():
    with pytest.raises(ConfigError, match=r"unknown config key train\.max_stepz.*max_steps"):
        load_run_config(EXAMPLES / "tiny-cpu.toml", ["train.max_stepz=3"])


def test_unknown_preset_is_refused():
    with pytest.raises(ConfigError, match="unknown model preset 'llama9'"):
        load_run_config(None, ["model.preset=llama9"])


@pytest.mark.parametrize(
    ("overrides", "world", "message"),
    [
        (["parallel.tp=2"], 3, r"tp \* cp \* pp = 2\*1\*1 = 2 must divide the world size 3"),
        (["parallel.dp=3"], 2, r"parallel.dp = 3: tp\*cp\*pp\*dp = 3 must equal the world size 2"),
        (["parallel.tp=8"], 8, "parallel.tp = 8 must divide model n_heads = 4"),
        (["parallel.tp=4"], 4, "parallel.tp = 4 must divide model n_kv_heads = 2"),
        (
            ["parallel.pp=4", "model.n_layers=2"],
            4,
            r"parallel.pp \* vpp = 4 must divide model n_layers = 2",
        ),
        (
            ["parallel.cp=2", "data.seq_len=126"],
            2,
            r"data.seq_len = 126 must be divisible by 2 \* cp \* tp = 4",
        ),
        (
            [
                "parallel.pp=2",
                "parallel.vpp=2",
                "model.n_layers=4",
                "train.global_batch_size=6",
                "train.micro_batch_size=2",
            ],
            2,
            r"micro-batches \(3\) to be a multiple of pp = 2",
        ),
        (
            ["train.global_batch_size=6", "train.micro_batch_size=4"],
            1,
            "train.global_batch_size = 6 must be a multiple of micro_batch_size \\* dp = 4",
        ),
        (
            ["parallel.fsdp=2", "parallel.pp=2"],
            4,
            "parallel.fsdp = 2 is supported with cp = pp = 1",
        ),
        (["data.seq_len=1024"], 1, "data.seq_len = 1024 exceeds model max_seq_len = 512"),
    ],
)
def test_inconsistent_sizes_fail_at_start_up(overrides, world, message):
    cfg = load_run_config(EXAMPLES / "tiny-cpu.toml", overrides)
    with pytest.raises(ConfigError, match=message):
        cfg.validate(world)


def test_ramps_must_increase():
    with pytest.raises(ConfigError, match=r"schedule.seq_ramp: steps \[10, 5\] must increase"):
        load_run_config(None, ["schedule.seq_ramp=[[10, 64], [5, 128]]"])


@pytest.mark.parametrize(
    ("name", "world"),
    [
        ("llama3-8b.toml", 64),
        ("llama3-70b.toml", 512),
        ("llama3.1-405b.toml", 8192),
        ("llama3.1-405b-long-context.toml", 16384),
    ],
)
def test_paper_layouts_are_valid_for_their_world_size(name, world):
    cfg = load_run_config(EXAMPLES / name)
    sizes = cfg.validate(world)
    assert sizes.tp * sizes.cp * sizes.pp * sizes.dp == world


@pytest.mark.parametrize("name", sorted(p.name for p in EXAMPLES.glob("*.toml")))
def test_every_example_round_trips_through_write_run_config(name, tmp_path):
    cfg = load_run_config(EXAMPLES / name)
    path = write_run_config(tmp_path / "out" / "run.toml", cfg)
    assert load_run_config(path) == cfg


def test_a_config_with_every_kind_of_value_reads_back_identical(tmp_path):
    cfg = load_run_config(
        None,
        [
            "model.preset=llama3-20m",
            "model.dim=192",
            "model.ffn_dim_multiplier=1.3",
            "model.load=/ckpt/a b",
            "data.weights={code = 0.25, prose = 0.75}",
            "data.val_path=/val",
            "optimizer.lr=1e-300",
            "optimizer.eps=5e-324",  # the smallest subnormal double
            "schedule.batch_ramp=[[0, 4], [100, 8]]",
            "schedule.anneal_weights={code = 1.5}",
            "long_context.stages=[{seq_len = 4096, steps = 10}, {seq_len = 8192, steps = 5}]",
            "parallel.tp=2",
            "parallel.sequence_parallel=false",
            "logging.plot=false",
        ],
    )
    assert cfg.long_context.stages == [LongContextStage(4096, 10), LongContextStage(8192, 5)]
    assert cfg.parallel == ParallelSizes(tp=2, sequence_parallel=False)
    path = write_run_config(tmp_path / "run.toml", cfg)
    back = load_run_config(path)
    assert back == cfg
    assert back.optimizer.lr == 1e-300 and back.optimizer.eps == 5e-324


def test_written_toml_leaves_out_unset_options_and_holds_everything_else(tmp_path):
    cfg = RunConfig(run_dir=str(tmp_path / "run"))
    data = read_toml(write_run_config(tmp_path / "run.toml", cfg))
    assert "dim" not in data["model"] and "load" not in data["model"]  # None: the preset's value
    assert "fused_cross_entropy" not in data["train"]  # None: on in bf16, off in fp32
    expected = {
        table: {k: v for k, v in values.items() if v is not None}
        if isinstance(values, dict)
        else values
        for table, values in to_dict(cfg).items()
    }
    assert data == expected
    assert cfg.to_toml() == (tmp_path / "run.toml").read_text(encoding="utf-8")

"""Run configs from arbitrary TOML bytes and ``--set`` items: a config, or a ConfigError."""

from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from l3_core.config import parse_override
from l3_core.errors import ConfigError, L3Error
from l3_core.run_config import RANGES, load_run_config

FUZZ = settings(max_examples=150, deadline=None)

KEYS = [k.replace(".*", ".x").replace(".x.0", "") for k in RANGES] + [
    "run_dir",
    "model.preset",
    "train.precision",
    "schedule.batch_ramp",
    "long_context.stages",
    "nonsense.key",
]
SCALARS = st.one_of(
    st.integers(-(2**70), 2**70).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["true", "[]", "[[0, 4], [2, 8]]", "{a = 1}", "[{seq_len = 0}]", '"x"', "="]),
    st.text(max_size=20),
)


def _load(path: Path | None, overrides: list[str], world: int) -> None:
    try:
        cfg = load_run_config(path, overrides)
        cfg.validate(world)
    except ConfigError:
        pass


@FUZZ
@given(st.lists(st.tuples(st.sampled_from(KEYS), SCALARS), max_size=4), st.integers(1, 16))
def test_set_overrides_load_or_raise_a_config_error(items, world):
    _load(None, [f"{k}={v}" for k, v in items], world)


@FUZZ
@given(st.text(max_size=60))
def test_parse_override_of_any_text_parses_or_raises_a_config_error(item):
    try:
        keys, _ = parse_override(item)
    except ConfigError:
        return
    assert keys and all(isinstance(k, str) for k in keys)


@FUZZ
@given(
    st.one_of(
        st.binary(max_size=200),
        st.text(max_size=200).map(lambda t: t.encode("utf-8", "surrogatepass")),
        st.lists(st.tuples(st.sampled_from(KEYS), SCALARS), max_size=5).map(
            lambda kv: "\n".join(f"{k} = {v}" for k, v in kv).encode("utf-8", "surrogatepass")
        ),
    )
)
def test_any_bytes_as_a_config_file_load_or_raise_an_l3_error(content):
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "run.toml"
        path.write_bytes(content)
        with contextlib.suppress(L3Error):
            load_run_config(path).validate(1)

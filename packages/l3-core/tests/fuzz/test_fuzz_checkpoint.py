"""load_checkpoint on corrupted files (with and without files.json): a model or an L3Error."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch", reason="checkpoints need the model extra")

from l3_core import ModelArgs, Transformer, load_checkpoint, save_checkpoint  # noqa: E402
from l3_core.checkpoint.integrity import FILES  # noqa: E402
from l3_core.errors import L3Error  # noqa: E402

FUZZ = settings(max_examples=80, deadline=None)
NAMES = {
    "l3": ["model.safetensors", "params.json", FILES],
    "hf": ["model.safetensors", "config.json", FILES],
}


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> dict[str, Path]:
    args = ModelArgs.from_preset("llama3-tiny", n_layers=1, dim=32, n_heads=2, n_kv_heads=1)
    model = Transformer.build(args, seed=0)
    root = tmp_path_factory.mktemp("ck")
    return {fmt: save_checkpoint(model, root / fmt, format=fmt) for fmt in NAMES}


@FUZZ
@given(
    st.sampled_from(sorted(NAMES)),
    st.integers(0, 2),
    st.sampled_from(["truncate", "overwrite", "replace"]),
    st.integers(0, 10**6),
    st.binary(min_size=1, max_size=16),
    st.booleans(),
)
def test_a_corrupted_checkpoint_loads_or_raises_an_l3_error(
    saved, fmt, which, how, at, value, keep_record
):
    with tempfile.TemporaryDirectory() as d:
        ck = Path(d) / "ck"
        shutil.copytree(saved[fmt], ck)
        path = ck / NAMES[fmt][which]
        data = path.read_bytes()
        at %= len(data) + 1
        path.write_bytes(
            data[:at]
            if how == "truncate"
            else value
            if how == "replace"
            else data[:at] + value + data[at + len(value) :]
        )
        if not keep_record and path.name != FILES:
            (ck / FILES).unlink()
        with contextlib.suppress(L3Error):
            load_checkpoint(ck)

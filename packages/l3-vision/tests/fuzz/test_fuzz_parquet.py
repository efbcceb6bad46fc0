"""Property tests: any Parquet image-text dataset gives one pair or one exclusion per row, and a
file that is not Parquet is one named ``L3Error``. Bounded (``max_examples``), seconds."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_fuzz_readers import FUZZ, _image_bytes

from l3_core.errors import L3Error
from l3_core.jsonl import Exclusions
from l3_vision.training.data import read_pairs

pa = pytest.importorskip("pyarrow", reason="the parquet/test extras provide pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

_cell = st.one_of(
    _image_bytes,
    st.fixed_dictionaries({"bytes": _image_bytes}),
    st.fixed_dictionaries({"path": st.text(max_size=5)}),
    st.none(),
)


@FUZZ
@given(cells=st.lists(st.tuples(_cell, st.one_of(st.none(), st.text(max_size=8))), max_size=5))
def test_a_parquet_dataset_gives_one_pair_or_one_exclusion_per_row(cells):
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "pairs.parquet"
        images = [c for c, _ in cells]
        try:
            column = pa.array(images)
        except (pa.ArrowInvalid, pa.ArrowTypeError):  # mixed kinds in one column: not a table
            return
        pq.write_table(pa.table({"image": column, "text": [t for _, t in cells]}), path)
        exclusions = Exclusions()
        pairs = read_pairs(path, exclusions)
        assert len(pairs) + len(exclusions) == len(cells)


@FUZZ
@given(data=st.binary(max_size=200))
def test_a_parquet_file_that_is_not_parquet_is_a_named_error(data):
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "pairs.parquet"
        path.write_bytes(b"PAR1" + data)
        with pytest.raises(L3Error, match="pairs.parquet"):
            read_pairs(path, Exclusions())

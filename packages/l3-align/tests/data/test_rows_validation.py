"""Bad rows go to the exclusions with file, line and reason; good rows are read in full."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from l3_align.data import read_preference_rows, read_sft_rows
from l3_align.data.rows import to_json
from l3_core.jsonl import Exclusions

GOOD_PREF = {"messages": [{"role": "user", "content": "hi"}], "chosen": "a", "rejected": "b"}
GOOD_SFT = {
    "messages": [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "run it", "tool_call": True},
        {"role": "ipython", "content": "42"},
        {"role": "assistant", "content": "42"},
    ]
}


def _write(path, rows):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


@pytest.mark.parametrize(
    "row, reason",
    [
        (
            {"messages": [{"role": "user", "content": "x"}], "chosen": "a"},
            "missing field 'rejected'",
        ),
        ({**GOOD_PREF, "chosen": "  "}, "field 'chosen' is empty"),
        ({**GOOD_PREF, "rejected": "a "}, "'chosen' and 'rejected' are identical"),
        ({**GOOD_PREF, "edited": "b"}, "'edited' and 'rejected' are identical"),
        ({**GOOD_PREF, "chosen": 3}, "field 'chosen' must be a string"),
        ({**GOOD_PREF, "messages": [{"role": "robot", "content": "x"}]}, "role 'robot' is unknown"),
        ({**GOOD_PREF, "messages": []}, "field 'messages' is empty"),
        ({**GOOD_PREF, "messages": [{"role": "user"}]}, "missing field 'content'"),
        (
            {**GOOD_PREF, "messages": [{"role": "user", "content": "x", "x": 1}]},
            "unknown field 'x'",
        ),
        (
            {**GOOD_PREF, "messages": [{"role": "assistant", "content": "x"}]},
            "ends with an assistant turn",
        ),
    ],
)
def test_bad_preference_row_is_excluded_with_file_line_and_reason(tmp_path, row, reason):
    path = _write(tmp_path / "p.jsonl", [GOOD_PREF, row, "not json"])
    ex = Exclusions()
    rows = read_preference_rows(path, ex)
    assert [r.line for r in rows] == [1]
    assert [(b.path, b.line) for b in ex.rows] == [(str(path), 2), (str(path), 3)]
    assert reason in ex.rows[0].reason
    assert "invalid JSON" in ex.rows[1].reason


@pytest.mark.parametrize(
    "row, reason",
    [
        ({"messages": [{"role": "user", "content": "x"}]}, "no assistant turn"),
        (
            {"messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": ""}]},
            "empty assistant turn",
        ),
        (
            {"messages": [{"role": "user", "content": "x", "tool_call": True}]},
            "only assistant turns",
        ),
        ({"text": "x"}, "missing field 'messages'"),
    ],
)
def test_bad_sft_row_is_excluded(tmp_path, row, reason):
    path = _write(tmp_path / "s.jsonl", [row, GOOD_SFT])
    ex = Exclusions()
    rows = read_sft_rows(path, ex)
    assert [r.line for r in rows] == [2] and len(ex) == 1
    assert ex.rows[0].line == 1 and reason in ex.rows[0].reason


def test_rows_round_trip_through_json(tmp_path):
    pref = {**GOOD_PREF, "edited": "c"}
    ex = Exclusions()
    assert to_json(read_preference_rows(_write(tmp_path / "p.jsonl", [pref]), ex)[0]) == pref
    assert to_json(read_sft_rows(_write(tmp_path / "s.jsonl", [GOOD_SFT]), ex)[0]) == GOOD_SFT
    assert len(ex) == 0


def test_parquet_rows_are_read_like_jsonl(tmp_path):
    pa = pytest.importorskip("pyarrow", reason="Parquet needs the parquet extra")
    import pyarrow.parquet as pq

    path = tmp_path / "p.parquet"
    pq.write_table(pa.Table.from_pylist([GOOD_PREF, {**GOOD_PREF, "rejected": "a"}]), path)
    ex = Exclusions()
    rows = read_preference_rows(path, ex)
    assert [(r.chosen, r.rejected) for r in rows] == [("a", "b")]
    assert ex.rows[0].line == 2 and "identical" in ex.rows[0].reason


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda c: st.lists(c, max_size=3)
    | st.dictionaries(
        st.sampled_from(
            ["role", "content", "messages", "chosen", "rejected", "edited", "tool_call"]
        ),
        c,
        max_size=4,
    ),
    max_leaves=12,
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rows=st.lists(_json_values, max_size=5))
def test_any_json_row_is_read_or_excluded_never_raised(tmp_path, rows):
    path = _write(tmp_path / "f.jsonl", [json.dumps(r) for r in rows])
    for reader in (read_sft_rows, read_preference_rows):
        ex = Exclusions()
        good = reader(path, ex)
        assert len(good) + len(ex) == len(rows)

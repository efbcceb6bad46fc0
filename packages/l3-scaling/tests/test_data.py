from __future__ import annotations

import pytest

from l3_scaling.data import read_columns, read_runs
from l3_scaling.errors import TableError


def test_epoch_headers_are_accepted_as_aliases(tmp_path):
    p = tmp_path / "e.csv"
    p.write_text("N_params,D_tokens,C_flop,loss\n1e7,2e9,1.2e17,3.1\n2e7,1e9,1.2e17,3.0\n")
    runs = read_runs(p)
    assert runs.N.tolist() == [1e7, 2e7]
    assert runs.C.tolist() == [1.2e17, 1.2e17]
    assert runs.lines.tolist() == [2, 3]


def test_missing_column_names_file_and_expected_columns(tmp_path):
    p = tmp_path / "x.csv"
    p.write_text("N,loss\n1,2\n")
    with pytest.raises(TableError, match=r"x\.csv: missing column\(s\) D"):
        read_runs(p)


@pytest.mark.parametrize(
    "value,what",
    [("", "expected a number"), ("-3", "> 0"), ("nan", "> 0"), ("abc", "expected a number")],
)
def test_bad_value_names_file_line_column_and_value(tmp_path, value, what):
    p = tmp_path / "r.csv"
    p.write_text(f"C,N,D,loss\n1e18,1e7,1e10,3.0\n1e18,1e7,{value},3.0\n")
    with pytest.raises(TableError, match=rf"r\.csv:3: column 'D' has '{value}'.*{what}"):
        read_runs(p, required=("C", "N", "D", "loss"))


def test_missing_file_and_empty_table_are_errors(tmp_path):
    with pytest.raises(TableError, match="file not found"):
        read_runs(tmp_path / "none.csv")
    p = tmp_path / "empty.csv"
    p.write_text("N,D,loss\n")
    with pytest.raises(TableError, match="no data rows"):
        read_runs(p)


def test_columns_outside_positive_may_be_zero(tmp_path):
    p = tmp_path / "f.csv"
    p.write_text("nll,accuracy\n1.0,0\n0.5,0.9\n")
    cols = read_columns(p, ("nll", "accuracy"), positive=("nll",))
    assert cols["accuracy"].tolist() == [0.0, 0.9]

from __future__ import annotations

import json

import numpy as np
import pytest

from l3_scaling.cli import main
from l3_scaling.fits.parametric import LossLaw
from l3_scaling.synthetic import isoflop_runs

from .conftest import write_csv

PNG = b"\x89PNG\r\n\x1a\n"
LAW = LossLaw(E=1.69, A=406.4, B=410.7, alpha=0.34, beta=0.28)


@pytest.fixture
def runs_csv(tmp_path):
    r = isoflop_runs(LAW, np.logspace(18, 21, 4), decades=2, sizes_per_budget=9)
    return write_csv(tmp_path / "runs.csv", ["C", "N", "D", "loss"], zip(r.C, r.N, r.D, r.loss))


def test_fit_loss_json_holds_parameters_and_bootstrap_intervals(tmp_path, capsys):
    N, D = np.meshgrid(np.logspace(7, 10, 8), np.logspace(9, 12, 8))
    loss = LAW.loss(N, D) * np.exp(0.005 * np.random.default_rng(0).standard_normal(N.shape))
    csv = write_csv(tmp_path / "p.csv", ["N", "D", "loss"], zip(N.ravel(), D.ravel(), loss.ravel()))
    png = tmp_path / "fit.png"
    assert (
        main(
            [
                "fit-loss",
                str(csv),
                "--json",
                "--bootstrap",
                "100",
                "--drop-highest",
                "0",
                "--plot",
                str(png),
            ]
        )
        == 0
    )
    out = json.loads(capsys.readouterr().out)
    for k in ("E", "A", "B", "alpha", "beta"):
        lo, hi = out["intervals"][k]
        assert lo <= out[k] <= hi
    assert out["alpha"] == pytest.approx(LAW.alpha, abs=0.02)
    assert out["excluded_lines"] == []
    assert png.read_bytes().startswith(PNG)


def test_isoflops_json_gives_budgets_laws_and_target(runs_csv, tmp_path, capsys):
    png = tmp_path / "iso.png"
    assert (
        main(["isoflops", str(runs_csv), "--json", "--target-flops", "1e23", "--plot", str(png)])
        == 0
    )
    out = json.loads(capsys.readouterr().out)
    assert len(out["budgets"]) == 4
    assert out["alpha"] == pytest.approx(LAW.tokens_exponent, abs=1e-3)
    assert out["params_alpha"] == pytest.approx(LAW.params_exponent, abs=1e-3)
    assert out["target"]["D_opt"] == pytest.approx(out["A"] * 1e23 ** out["alpha"], rel=1e-9)
    assert png.read_bytes().startswith(PNG)


def test_isoflops_text_output_lists_every_budget(runs_csv, capsys):
    assert main(["isoflops", str(runs_csv)]) == 0
    text = capsys.readouterr().out
    assert "tokens: D* =" in text and text.count("e+") >= 4


def test_bad_input_exits_2_with_a_message_naming_the_line(tmp_path, capsys):
    p = tmp_path / "bad.csv"
    p.write_text("C,N,D,loss\n1e18,1e7,1e10,3.0\n1e18,0,1e10,3.0\n")
    assert main(["isoflops", str(p)]) == 2
    err = capsys.readouterr().err
    assert "bad.csv:3: column 'N' has '0'" in err and "Traceback" not in err


def test_downstream_cli_forecasts_with_interval(tmp_path, capsys):
    C = np.logspace(18, 22, 6)
    nll = 30 * C**-0.08
    s1 = write_csv(tmp_path / "nll.csv", ["C", "nll"], zip(C, nll))
    fam = np.linspace(0.5, 1.8, 8)
    s2 = write_csv(
        tmp_path / "fam.csv",
        ["nll", "accuracy"],
        zip(fam, 0.25 + 0.75 / (1 + np.exp(6 * (fam - 1)))),
    )
    png = tmp_path / "d.png"
    assert (
        main(
            [
                "downstream",
                str(s1),
                str(s2),
                "--target-flops",
                "1e24",
                "--json",
                "--bootstrap",
                "100",
                "--plot",
                str(png),
            ]
        )
        == 0
    )
    out = json.loads(capsys.readouterr().out)
    assert out["accuracy_interval"][0] <= out["accuracy"] <= out["accuracy_interval"][1]
    assert png.read_bytes().startswith(PNG)


def test_two_budget_isoflops_json_has_null_intervals_not_nan(tmp_path, capsys):
    r = isoflop_runs(LAW, [1e19, 1e21], decades=2, sizes_per_budget=7)
    csv = write_csv(tmp_path / "two.csv", ["C", "N", "D", "loss"], zip(r.C, r.N, r.D, r.loss))
    assert main(["isoflops", str(csv), "--json", "--target-flops", "1e22"]) == 0
    captured = capsys.readouterr()
    out = json.loads(captured.out)
    assert out["tokens_law"]["alpha_interval"] == [None, None]
    assert out["target"]["D_interval"] == [None, None]
    assert "only 2 budgets" in captured.err

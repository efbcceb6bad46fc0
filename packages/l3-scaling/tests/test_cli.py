from __future__ import annotations

import json
import sys

import numpy as np
import pytest

from l3_core.exit_codes import ExitCode
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


def test_bad_value_exits_with_the_input_code_and_one_line_naming_the_line(tmp_path, capsys):
    p = tmp_path / "bad.csv"
    p.write_text("C,N,D,loss\n1e18,1e7,1e10,3.0\n1e18,0,1e10,3.0\n")
    assert main(["isoflops", str(p)]) == ExitCode.INPUT
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("l3-scaling isoflops: error: ") and "bad.csv:3: column 'N' has '0'" in err


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


def _points_csv(tmp_path, n=64, name="p.csv"):
    N, D = np.meshgrid(np.logspace(7, 10, 8), np.logspace(9, 12, 8))
    loss = LAW.loss(N, D) * np.exp(0.005 * np.random.default_rng(0).standard_normal(N.shape))
    rows = list(zip(N.ravel(), D.ravel(), loss.ravel()))[:n]
    return write_csv(tmp_path / name, ["N", "D", "loss"], rows)


@pytest.mark.parametrize(
    "command,flags,message",
    [
        ("fit-loss", ["--drop-highest", "-3"], "--drop-highest = -3: expected an integer >= 0"),
        ("fit-loss", ["--bootstrap", "-5"], "--bootstrap = -5: expected an integer >= 0"),
        (
            "fit-loss",
            ["--level", "1.5"],
            "--level = 1.5: expected a level strictly between 0 and 1",
        ),
        ("fit-loss", ["--target-flops=-1e22"], "--target-flops = -1e+22: expected a finite"),
        ("isoflops", ["--window", "-1"], "--window = -1.0: expected a finite number > 0"),
        ("isoflops", ["--target-flops=-1e22"], "--target-flops = -1e+22: expected a finite"),
        ("isoflops", ["--level", "0"], "--level = 0.0: expected a level strictly between"),
    ],
)
def test_out_of_range_flags_exit_with_the_config_code_naming_flag_and_value(
    tmp_path, runs_csv, capsys, command, flags, message
):
    table = _points_csv(tmp_path) if command == "fit-loss" else runs_csv
    assert main([command, str(table), "--json", *flags]) == (ExitCode.CONFIG)
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_negative_downstream_target_and_zero_resamples_are_config_errors(tmp_path, capsys):
    C = np.logspace(18, 22, 6)
    s1 = write_csv(tmp_path / "nll.csv", ["C", "nll"], zip(C, 30 * C**-0.08))
    fam = np.linspace(0.5, 1.8, 8)
    s2 = write_csv(tmp_path / "fam.csv", ["nll", "accuracy"], zip(fam, 1 - fam / 2))
    assert main(["downstream", str(s1), str(s2), "--target-flops", "-1"]) == ExitCode.CONFIG
    assert "--target-flops = -1.0" in capsys.readouterr().err
    args = ["downstream", str(s1), str(s2), "--target-flops", "1e24", "--bootstrap", "0"]
    assert main(args) == ExitCode.CONFIG
    assert "--bootstrap = 0: expected an integer >= 1" in capsys.readouterr().err


def test_duplicated_rows_are_refused_naming_their_lines(tmp_path, capsys):
    r = isoflop_runs(LAW, np.logspace(18, 21, 4), decades=2, sizes_per_budget=9)
    rows = list(zip(r.C, r.N, r.D, r.loss))
    csv = write_csv(tmp_path / "dup.csv", ["C", "N", "D", "loss"], rows + rows[3:4])
    assert main(["isoflops", str(csv)]) == ExitCode.INPUT
    err = capsys.readouterr().err
    assert f"dup.csv lines 5, {len(rows) + 2} are duplicates" in err


def test_all_equal_losses_are_refused(tmp_path, capsys):
    csv = write_csv(
        tmp_path / "flat.csv",
        ["N", "D", "loss"],
        [(10**7 * (i + 1), 10**9 * (i + 2), 3.0) for i in range(20)],
    )
    assert main(["fit-loss", str(csv), "--drop-highest", "0"]) == ExitCode.INPUT
    assert "every row has loss=3; a law cannot be fitted to a constant loss" in (
        capsys.readouterr().err
    )


def test_few_points_are_refused_unless_forced_and_then_warn(tmp_path, capsys):
    csv = _points_csv(tmp_path, n=7)
    args = ["fit-loss", str(csv), "--drop-highest", "0", "--bootstrap", "20", "--json"]
    assert main(args) == ExitCode.RUNTIME
    assert "7 points for 5 parameters; below 10" in capsys.readouterr().err
    assert main([*args, "--allow-few-points"]) == ExitCode.OK
    captured = capsys.readouterr()
    assert "warning:" in captured.err and "below 10" in captured.err
    assert json.loads(captured.out)["n_points"] == 7


def test_a_latin1_byte_is_an_input_error_naming_file_and_line(tmp_path, capsys):
    p = tmp_path / "latin.csv"
    p.write_bytes(b"N,D,loss,note\n1e7,1e9,3.0,ok\n2e7,1e9,2.9,caf\xe9\n")
    assert main(["fit-loss", str(p)]) == ExitCode.INPUT
    assert "latin.csv:3: not UTF-8 (byte b'\\xe9' at column 16)" in capsys.readouterr().err


def test_version_comes_from_the_package_metadata(capsys):
    from l3_core.versions import package_version

    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0
    assert capsys.readouterr().out.strip() == f"l3-scaling {package_version('l3-scaling')}"


def test_plot_without_matplotlib_is_a_dependency_error(runs_csv, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now fails
    assert main(["isoflops", str(runs_csv), "--plot", str(tmp_path / "x.png")]) == (
        ExitCode.DEPENDENCY
    )
    assert "pip install 'l3-scaling[plot]'" in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()


@pytest.mark.parametrize("command", ["fit-loss", "isoflops"])
def test_a_negative_target_is_refused_before_the_table_is_read_or_fitted(tmp_path, capsys, command):
    # The table does not exist: the flag is checked first, so the answer is about the flag.
    assert main([command, str(tmp_path / "absent.csv"), "--target-flops=-1e22"]) == ExitCode.CONFIG
    assert capsys.readouterr().err.splitlines() == [
        f"l3-scaling {command}: error: --target-flops = -1e+22: expected a finite number > 0"
    ]

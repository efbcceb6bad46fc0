"""Bias of the IsoFLOP tokens exponent: windowed parabolas (ours) vs one global parabola per
budget (the peer: the textbook fit over every run of the budget), on synthetic runs from a
known law L = E + A/N^alpha + B/D^beta with C = 6ND, whose true exponent is alpha/(alpha+beta).

Two sweep designs: a fixed ladder of model sizes shared by all budgets (what real sweeps do;
each budget's minimum then sits elsewhere in its sweep) over 2 and 3 decades, and sweeps
centred on each budget's optimum (where even the global parabola is unbiased, because the
isoFLOP curve has the same shape around every minimum). Also a noisy case (0.3% noise).

  python benchmarks/bench_scaling_isoflop_bias.py
"""

from __future__ import annotations

import warnings

import numpy as np

from l3_scaling.fits.isoflops import BudgetWarning, fit_isoflops
from l3_scaling.fits.parametric import LossLaw
from l3_scaling.synthetic import isoflop_runs

LAWS = {
    "Hoffmann 2022": LossLaw(E=1.69, A=406.4, B=410.7, alpha=0.34, beta=0.28),
    "Epoch 2024": LossLaw(E=1.81686, A=482.0, B=2085.4, alpha=0.34781, beta=0.36585),
}
DESIGNS = {
    "fixed ladder, 3 decades": dict(
        model_sizes=np.logspace(7.5, 10.5, 25), budgets=np.logspace(18.3, 20.7, 7)
    ),
    "fixed ladder, 2 decades": dict(
        model_sizes=np.logspace(7.5, 9.5, 17), budgets=np.logspace(18.0, 19.8, 7)
    ),
    "centred, 3 decades": dict(decades=3.0, sizes_per_budget=25, budgets=np.logspace(18, 22, 9)),
    "centred, 3 decades, 0.3% noise": dict(
        decades=3.0, sizes_per_budget=25, noise=0.003, budgets=np.logspace(18, 22, 9)
    ),
}


def main() -> None:
    print(
        f"{'law':<14} {'design':<32} {'true':>7} {'windowed':>9} {'global':>9} "
        f"{'|bias| ours':>11} {'|bias| peer':>11} {'ratio':>7}"
    )
    for law_name, law in LAWS.items():
        for design, kw in DESIGNS.items():
            kw = dict(kw)
            budgets = kw.pop("budgets")
            runs = isoflop_runs(law, budgets, seed=1, **kw)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", BudgetWarning)
                ours = fit_isoflops(runs).tokens_law.alpha
                peer = fit_isoflops(runs, window_decades=None).tokens_law.alpha
            truth = law.tokens_exponent
            b_ours, b_peer = abs(ours - truth), abs(peer - truth)
            # both exact to rounding on centred noise-free sweeps: no ratio to speak of
            ratio = f"{b_peer / b_ours:7.1f}" if max(b_ours, b_peer) > 1e-10 else "    n/a"
            print(
                f"{law_name:<14} {design:<32} {truth:7.4f} {ours:9.4f} {peer:9.4f} "
                f"{b_ours:11.2e} {b_peer:11.2e} {ratio}"
            )


if __name__ == "__main__":
    main()

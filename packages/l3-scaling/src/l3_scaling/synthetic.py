"""Synthetic runs from a known law, for checking fits and designing sweeps."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from l3_scaling.data import Runs
from l3_scaling.fits.parametric import LossLaw


def isoflop_runs(
    law: LossLaw,
    budgets: Sequence[float],
    model_sizes: Sequence[float] | None = None,
    *,
    decades: float = 2.0,
    sizes_per_budget: int = 15,
    noise: float = 0.0,
    seed: int = 0,
) -> Runs:
    """IsoFLOP runs with C = 6ND and loss from ``law`` (times lognormal noise of sd ``noise``).

    With ``model_sizes`` every budget trains the same sizes (as a real ladder does, so each
    budget's optimum sits elsewhere in its sweep); otherwise each budget sweeps ``decades`` of
    sizes centred on its own optimum.
    """
    rng = np.random.default_rng(seed)
    Cs, Ns = [], []
    for budget in budgets:
        if model_sizes is None:
            n_opt, _ = law.optimal_allocation(budget)
            sizes = n_opt * np.logspace(-decades / 2, decades / 2, sizes_per_budget)
        else:
            sizes = np.asarray(model_sizes, float)
        Cs.append(np.full(len(sizes), float(budget)))
        Ns.append(sizes)
    C = np.concatenate(Cs)
    N = np.concatenate(Ns)
    D = C / (6.0 * N)
    loss = law.loss(N, D) * np.exp(noise * rng.standard_normal(len(N)))
    return Runs(N=N, D=D, loss=loss, C=C, lines=np.arange(len(N)), source="synthetic")

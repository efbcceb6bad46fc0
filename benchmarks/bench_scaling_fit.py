"""l3-scaling's parametric fit on the Chinchilla points (Epoch's protocol), against the peer.

Ours: ``fit_parametric`` (vectorised grid scoring, L-BFGS-B from the best 32 of Epoch's 4,500
starts, then all bootstrap resamples solved together by a batched reweighted Levenberg-
Marquardt). Peer: Epoch's published approach, a straightforward per-resample loop of
``scipy.optimize.minimize(method="L-BFGS-B")`` on the same Huber objective (given our analytic
gradient, which only helps it), over the same resamples, from the same full-data optimum.
A second peer runs the same loop with scipy's finite-difference gradient (an objective
function only). All run in this process with one BLAS thread. Prints time, ours vs peer, ratio, the
per-resample agreement, and both sets of 95% intervals against Epoch's published ones.

  python benchmarks/bench_scaling_fit.py [--points ../shared/eval/chinchilla_fig4_points.csv]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from scipy.optimize import minimize
from threadpoolctl import threadpool_limits

from l3_scaling.data import read_runs
from l3_scaling.fits.parametric import (
    PARAM_NAMES,
    HuberLogObjective,
    bootstrap_weights,
    fit_parametric,
)

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"


def report(name: str, ours: float, peer: float, unit: str, peer_name: str) -> None:
    print(
        f"{name:<44} ours {ours:>10.2f} {unit:<4} {peer_name} {peer:>10.2f}  "
        f"ratio {peer / ours:6.1f}x faster",
        flush=True,
    )


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--points", type=Path, default=SHARED / "eval" / "chinchilla_fig4_points.csv")
    p.add_argument("--facts", type=Path, default=SHARED / "reference" / "scaling_laws.json")
    p.add_argument("--resamples", type=int, default=1000)
    opts = p.parse_args()
    runs = read_runs(opts.points)
    epoch = json.loads(opts.facts.read_text())["besiroglu_2024_epoch_replication"]

    t0 = time.perf_counter()
    fit = fit_parametric(
        runs.N, runs.D, runs.loss, drop_highest=5, n_bootstrap=opts.resamples, seed=0
    )
    ours_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    point = fit_parametric(runs.N, runs.D, runs.loss, drop_highest=5)
    ours_point_s = time.perf_counter() - t0

    keep = np.setdiff1d(np.arange(len(runs)), fit.excluded_rows)
    obj = HuberLogObjective(runs.N[keep], runs.D[keep], runs.loss[keep])
    law = point.law
    q0 = obj.centre(np.array([np.log(law.A), np.log(law.B), np.log(law.E), law.alpha, law.beta]))[0]
    weights = bootstrap_weights(opts.resamples, len(keep), seed=0)
    peer_theta, peer_f = [], []
    t0 = time.perf_counter()
    with threadpool_limits(limits=1, user_api="blas"):
        for w in weights:

            def fun(x, w=w):
                v, g = obj.value_and_grad(x[None], w[None])
                return float(v[0]), g[0]

            res = minimize(fun, q0, jac=True, method="L-BFGS-B")
            peer_theta.append(res.x)
            peer_f.append(res.fun)
    peer_s = time.perf_counter() - t0
    # The same loop without an analytic gradient (scipy's finite differences), i.e. a plain
    # objective handed to minimize as a notebook would.
    t0 = time.perf_counter()
    with threadpool_limits(limits=1, user_api="blas"):
        for w in weights:
            minimize(lambda x, w=w: float(obj.value(x[None], w[None])[0]), q0, method="L-BFGS-B")
    peer_fd_s = time.perf_counter() - t0
    peer = obj.uncentre(np.array(peer_theta))
    peer_samples = np.column_stack(
        [np.exp(peer[:, 2]), np.exp(peer[:, 0]), np.exp(peer[:, 1]), peer[:, 3], peer[:, 4]]
    )

    # Our resample objectives, recomputed from our samples.
    ours_q = obj.centre(
        np.column_stack(
            [
                np.log(fit.bootstrap.samples[:, 1]),
                np.log(fit.bootstrap.samples[:, 2]),
                np.log(fit.bootstrap.samples[:, 0]),
                fit.bootstrap.samples[:, 3:],
            ]
        )
    )
    ours_f = obj.value(ours_q, weights)
    rel = (ours_f - np.array(peer_f)) / np.array(peer_f)

    print(
        f"points: {len(runs)} ({len(keep)} after dropping the 5 highest losses), "
        f"{opts.resamples} bootstrap resamples"
    )
    report(
        f"fit + {opts.resamples} bootstrap resamples (s)",
        ours_s,
        peer_s + ours_point_s,
        "s",
        "per-resample scipy loop",
    )
    report(
        f"{opts.resamples} bootstrap resamples only (s)",
        ours_s - ours_point_s,
        peer_s,
        "s",
        "scipy loop, analytic grad",
    )
    report(
        f"{opts.resamples} bootstrap resamples only (s)",
        ours_s - ours_point_s,
        peer_fd_s,
        "s",
        "scipy loop, finite-diff grad",
    )
    print(f"  ours: point fit {ours_point_s:.2f} s (32 L-BFGS-B starts + polish)")
    print(
        f"  per-resample Huber objective, ours vs peer: ours lower or equal in "
        f"{np.mean(rel <= 1e-9):.1%} of resamples, median relative difference {np.median(rel):.2e}"
    )
    print(
        f"{'param':<6} {'ours':>10} {'Epoch':>10} {'Epoch SE':>9}  {'ours 95% CI':>22}  "
        f"{'peer 95% CI':>22}  {'Epoch 95% CI':>22}"
    )
    for i, k in enumerate(PARAM_NAMES):
        lo, hi = fit.bootstrap.interval(k)
        plo, phi = np.percentile(peer_samples[:, i], [2.5, 97.5])
        elo, ehi = epoch["bootstrap_95ci"][k]
        print(
            f"{k:<6} {getattr(fit.law, k):>10.5g} {epoch[k]:>10.5g} "
            f"{epoch['standard_errors'][k]:>9.4g}  [{lo:>9.4g}, {hi:>9.4g}]  "
            f"[{plo:>9.4g}, {phi:>9.4g}]  [{elo:>9.4g}, {ehi:>9.4g}]"
        )
    print(
        "SE ours/Epoch: "
        + ", ".join(
            f"{k} {fit.bootstrap.se(k) / epoch['standard_errors'][k]:.2f}" for k in PARAM_NAMES
        )
    )


if __name__ == "__main__":
    main()

"""The FFN GEMMs in bf16 vs FP8 row-wise (l3-infer-fp8's two backends), on this CPU.

For each shape (tokens M, model dim, FFN hidden) it times the up projection (dim -> hidden,
w1/w3) and the down projection (hidden -> dim, w2): bf16 ``F.linear`` (the peer: what the
unquantised model runs), and ``Fp8RowwiseLinear`` with the ``emulated`` and ``scaled_mm``
backends (activation quantisation included). The bf16 matmul peak is measured in the same run,
and each path's achieved FLOP/s is printed as a fraction of it.

    python benchmarks/bench_infer_fp8_gemm.py [--small]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).parent))
from common import best_of_interleaved, machine_peak, report

from l3_infer_fp8.quant import BACKENDS, Fp8RowwiseLinear

SHAPES = [(1, 1024, 3584), (64, 1024, 3584), (256, 1024, 3584), (64, 2048, 8192)]
SMALL = [(1, 256, 768), (32, 256, 768)]


def run(shapes: list[tuple[int, int, int]], repeats: int) -> list[str]:
    peak = machine_peak(torch.bfloat16)
    print(f"bf16 matmul peak on this machine: {peak / 1e9:,.1f} GFLOP/s", flush=True)
    lines = []
    g = torch.Generator().manual_seed(0)
    for m, dim, hidden in shapes:
        for name, (k, n) in {"up (w1/w3)": (dim, hidden), "down (w2)": (hidden, dim)}.items():
            linear = torch.nn.Linear(k, n, bias=False).bfloat16()
            x = torch.randn(m, k, generator=g).bfloat16()
            fns = {"bf16": lambda linear=linear, x=x: F.linear(x, linear.weight)}
            for backend in BACKENDS:
                q = Fp8RowwiseLinear.from_linear(linear, backend=backend)
                fns[backend] = lambda q=q, x=x: q(x)
            times = best_of_interleaved(fns, repeats=repeats)
            flops = 2 * m * k * n
            for backend in BACKENDS:
                label = f"M={m} {name} {k}x{n} fp8/{backend}"
                lines.append(report(label, times[backend] * 1e3, times["bf16"] * 1e3, "ms", "bf16"))
            print(
                "    fraction of bf16 peak: "
                + ", ".join(f"{p} {flops / times[p] / peak:.1%}" for p in times),
                flush=True,
            )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="two tiny shapes (a smoke run)")
    parser.add_argument("--repeats", type=int, default=5)
    opts = parser.parse_args()
    run(SMALL if opts.small else SHAPES, opts.repeats)


if __name__ == "__main__":
    main()

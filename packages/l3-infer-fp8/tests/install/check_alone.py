"""Run by ``nox -s l3-infer-fp8-alone`` in a fresh environment holding only l3-infer-fp8 (and
what pip resolved for it): the heavy stacks of other packages must be absent, and the package
must work on its own (quantise a tiny model, round-trip it, run the CLI's --help)."""

from __future__ import annotations

import importlib.metadata as md
import subprocess
import sys
import tempfile

FORBIDDEN = ("megatron-core", "tensorboard", "scikit-learn")


def _installed(name: str) -> bool:
    try:
        md.distribution(name)
    except md.PackageNotFoundError:
        return False
    return True


def main() -> int:
    present = [name for name in FORBIDDEN if _installed(name)]
    if present:
        print(f"l3-infer-fp8 alone pulled in {present}", file=sys.stderr)
        return 1
    import torch

    from l3_core import ModelArgs
    from l3_core.model import Transformer
    from l3_infer_fp8 import load_model, quantize_model, save_quantized

    model = Transformer.build(
        ModelArgs.from_preset("llama3-tiny", n_layers=3), dtype=torch.bfloat16, seed=0
    ).eval()
    assert quantize_model(model) == [f"layers.1.feed_forward.{p}" for p in ("w1", "w3", "w2")]
    with tempfile.TemporaryDirectory() as tmp:
        loaded = load_model(save_quantized(model, f"{tmp}/q"))
        tokens = torch.arange(8)[None]
        with torch.no_grad():
            assert torch.equal(model(tokens), loaded(tokens))
    subprocess.run(["l3-infer-fp8", "--help"], check=True, capture_output=True)
    print(f"l3-infer-fp8 alone: none of {list(FORBIDDEN)} installed; quantise, round trip, CLI ok")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

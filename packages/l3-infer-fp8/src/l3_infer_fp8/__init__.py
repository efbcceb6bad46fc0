"""FP8 row-wise inference for the l3 herd: a paged continuous-batching engine and an OpenAI-compatible server (Llama 3 paper, section 6).

The FP8 recipe (``quantize_model``, ``Fp8RowwiseLinear``) and the checkpoint helpers need torch;
they are imported on first use so that ``import l3_infer_fp8`` stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from l3_core.lazy import lazy_attributes
from l3_core.versions import package_version
from l3_infer_fp8.errors import (
    InferConfigError,
    InferError,
    InferInputError,
    InferModelError,
    QuantizedCheckpointError,
)

__version__ = package_version("l3-infer-fp8")

_LAZY = {
    "Fp8Recipe": "l3_infer_fp8.quant",
    "Fp8RowwiseLinear": "l3_infer_fp8.quant",
    "quantize_model": "l3_infer_fp8.quant",
    "load_model": "l3_infer_fp8.checkpoint",
    "load_quantized": "l3_infer_fp8.checkpoint",
    "save_quantized": "l3_infer_fp8.checkpoint",
}

if TYPE_CHECKING:
    from l3_infer_fp8.checkpoint import load_model, load_quantized, save_quantized
    from l3_infer_fp8.quant import Fp8Recipe, Fp8RowwiseLinear, quantize_model


__getattr__ = lazy_attributes("l3_infer_fp8", _LAZY)


__all__ = [
    "Fp8Recipe",
    "Fp8RowwiseLinear",
    "InferConfigError",
    "InferError",
    "InferInputError",
    "InferModelError",
    "QuantizedCheckpointError",
    "__version__",
    "load_model",
    "load_quantized",
    "quantize_model",
    "save_quantized",
]

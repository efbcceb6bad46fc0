"""FP8 row-wise quantisation of the feed-forward GEMMs (Llama 3 paper, section 6.2)."""

from l3_infer_fp8.quant.backends import BACKENDS, Backend, get_backend, select_backend
from l3_infer_fp8.quant.linear import Fp8RowwiseLinear
from l3_infer_fp8.quant.model import (
    FFN_PROJECTIONS,
    Fp8Recipe,
    apply_recipe,
    quantize_model,
    quantized_modules,
)
from l3_infer_fp8.quant.rowwise import (
    AMAX_FLOOR,
    DEFAULT_BOUND,
    FP8_DTYPE,
    FP8_MAX,
    dequantize,
    quantize_activation,
    quantize_weight,
)

__all__ = [
    "AMAX_FLOOR",
    "BACKENDS",
    "DEFAULT_BOUND",
    "FFN_PROJECTIONS",
    "FP8_DTYPE",
    "FP8_MAX",
    "Backend",
    "Fp8Recipe",
    "Fp8RowwiseLinear",
    "apply_recipe",
    "dequantize",
    "get_backend",
    "quantize_activation",
    "quantize_model",
    "quantize_weight",
    "quantized_modules",
    "select_backend",
]

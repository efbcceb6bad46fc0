"""FP8 row-wise inference for the l3 herd: a paged continuous-batching engine and an OpenAI-compatible server (Llama 3 paper, section 6)."""

from __future__ import annotations

from l3_core.versions import package_version
from l3_infer_fp8.errors import InferConfigError, InferError, InferInputError, InferModelError

__version__ = package_version("l3-infer-fp8")

__all__ = ["InferConfigError", "InferError", "InferInputError", "InferModelError", "__version__"]

"""Post-training for the l3 herd: reward model, SFT with rejection sampling, DPO (Llama 3 paper, section 4)."""

from __future__ import annotations

from l3_align.errors import AlignConfigError, AlignError, AlignInputError, AlignModelError
from l3_core.versions import package_version

__version__ = package_version("l3-align")

__all__ = ["AlignConfigError", "AlignError", "AlignInputError", "AlignModelError", "__version__"]

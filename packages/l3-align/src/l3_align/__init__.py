"""Post-training for the l3 herd: reward model, SFT with rejection sampling, DPO (Llama 3 paper, section 4)."""

from __future__ import annotations

from l3_align.errors import AlignConfigError, AlignError, AlignInputError, AlignModelError
from l3_core.lazy import lazy_attributes
from l3_core.versions import package_version

__version__ = package_version("l3-align")

# Names that need torch, imported on first use so that ``import l3_align`` stays light.
_LAZY = {
    "load_reward_model": "l3_align.rm.checkpoint",
    "RewardModel": "l3_align.rm.model",
}


__getattr__ = lazy_attributes("l3_align", _LAZY)


__all__ = [
    "AlignConfigError",
    "AlignError",
    "AlignInputError",
    "AlignModelError",
    "RewardModel",
    "__version__",
    "load_reward_model",
]

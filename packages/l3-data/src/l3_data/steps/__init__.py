"""Pipeline steps; importing this package registers every built-in step in ``STEPS``."""

from l3_data.steps import (  # noqa: F401  (imported for their registration)
    classify,
    dedup,
    filters,
    html,
    kl_outliers,
    langid,
    line_dedup,
    minhash,
    mix,
    pii,
    tokenize,
    url_filter,
    writers,
)
from l3_data.steps.base import (
    STEPS,
    ChunkContext,
    Filter,
    GlobalStep,
    PartitionedStep,
    Step,
    register,
)

__all__ = [
    "STEPS",
    "ChunkContext",
    "Filter",
    "GlobalStep",
    "PartitionedStep",
    "Step",
    "register",
]

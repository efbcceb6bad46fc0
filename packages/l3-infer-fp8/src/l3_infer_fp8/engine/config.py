"""The engine's sizes and limits."""

from __future__ import annotations

from dataclasses import dataclass

from l3_infer_fp8.errors import InferConfigError


@dataclass(frozen=True)
class EngineConfig:
    """``num_blocks`` None: as many as ``kv_cache_mib`` holds, but no more than every running
    request at full context needs. ``max_batched_tokens`` is the per-step token budget: a
    prompt longer than what is left of it is prefilled in chunks over several steps."""

    block_size: int = 16
    num_blocks: int | None = None
    kv_cache_mib: float = 1024.0
    max_running: int = 64
    max_batched_tokens: int = 512
    max_waiting: int = 256
    prefix_caching: bool = True

    def validate(self) -> None:
        for name in ("block_size", "max_running", "max_batched_tokens", "max_waiting"):
            if getattr(self, name) < 1:
                raise InferConfigError(f"engine.{name} must be >= 1, got {getattr(self, name)}")
        if self.num_blocks is not None and self.num_blocks < 1:
            raise InferConfigError(f"engine.num_blocks must be >= 1, got {self.num_blocks}")
        if self.kv_cache_mib <= 0:
            raise InferConfigError(f"engine.kv_cache_mib must be > 0, got {self.kv_cache_mib}")

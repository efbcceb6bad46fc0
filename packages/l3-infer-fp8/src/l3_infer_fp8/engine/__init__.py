"""The paged continuous-batching engine (vLLM's design on l3-core's ``Transformer``).

- :mod:`.blocks`: block allocator (free list, reference counts, prefix hashes of full blocks)
- :mod:`.kv_cache`: the paged KV tensors; :mod:`.step_batch`: a step's chunks as tensors;
  :mod:`.paged_attention`: attention over gathered cache slots; :mod:`.runner`: the batched
  step over the modules; :mod:`.pipeline`: the layers split over processes, micro-batched
- :mod:`.scheduler`: continuous batching, chunked prefill, preemption by recompute
- :mod:`.sampling`: per-request logits processors and seeded generators; :mod:`.text`: stop
  strings; :mod:`.engine`: the engine; :mod:`.loop`: a background thread, streams, cancellation
"""

from l3_infer_fp8.engine.config import EngineConfig
from l3_infer_fp8.engine.engine import Engine
from l3_infer_fp8.engine.request import RequestOutput, TokenLogprob
from l3_infer_fp8.engine.sampling import SamplingParams

__all__ = ["Engine", "EngineConfig", "RequestOutput", "SamplingParams", "TokenLogprob"]

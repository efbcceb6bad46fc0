"""The Prometheus text exposition of the engine's counters and gauges."""

from __future__ import annotations

from collections.abc import Mapping

# engine stat -> (metric name, type, help)
METRICS: dict[str, tuple[str, str, str]] = {
    "tokens_per_s": ("l3_infer_tokens_per_second", "gauge", "generated tokens/s, last 10 s"),
    "running": ("l3_infer_requests_running", "gauge", "requests in the running batch"),
    "waiting": ("l3_infer_requests_waiting", "gauge", "requests waiting to be scheduled"),
    "kv_blocks_used": ("l3_infer_kv_blocks_used", "gauge", "KV cache blocks in use"),
    "kv_blocks_total": ("l3_infer_kv_blocks_total", "gauge", "KV cache blocks in the pool"),
    "generated_tokens": ("l3_infer_generated_tokens_total", "counter", "tokens generated"),
    "prompt_tokens": ("l3_infer_prompt_tokens_total", "counter", "prompt tokens received"),
    "preemptions": ("l3_infer_preemptions_total", "counter", "requests preempted for recompute"),
    "rejected": ("l3_infer_requests_rejected_total", "counter", "requests refused with 429"),
}


def prometheus_text(stats: Mapping[str, float]) -> str:
    lines = []
    for key, (name, kind, help_) in METRICS.items():
        lines += [
            f"# HELP {name} {help_}",
            f"# TYPE {name} {kind}",
            f"{name} {float(stats.get(key, 0)):g}",
        ]
    return "\n".join(lines) + "\n"

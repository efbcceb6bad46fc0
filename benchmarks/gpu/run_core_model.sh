#!/usr/bin/env bash
# l3-core's plain model on one GPU against transformers, same weights (run through the device
# tool from the repository root; the GPU image has torch, transformers, safetensors, tiktoken).
set -euo pipefail
export PYTHONPATH=packages/l3-core/src PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name --format=csv,noheader
python3 benchmarks/bench_core_model.py --device cuda --preset llama3.2-1b --batch 1 --seq 2048 \
  --decode-tokens 128 --repeats 3 2>&1 | grep -v -i "warn\|Loading weights"

"""Helpers for checking the parallel layouts: several jobs in the same spawned ranks.

Importing Megatron-core costs seconds per process, so the equality tests run their jobs one
after another inside the same ranks (as :func:`l3_core.train.testing.run_configs` does); rank 0
writes ``{name: metrics records}`` to ``out`` (or ``{name: {"error": ...}}``).
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import asdict
from pathlib import Path
from typing import Any

from l3_align.train.job import AlignJob, run_job
from l3_core.io import write_json
from l3_core.jsonl import read_jsonl


def run_jobs(jobs: dict[str, dict[str, Any]], out: str) -> None:
    """Run each job (``asdict(AlignJob)``) in turn on this rank; see the module docstring."""
    import torch.distributed as dist

    warnings.filterwarnings("ignore")
    logging.getLogger("megatron").setLevel(logging.ERROR)
    results: dict[str, Any] = {}
    for name, spec in jobs.items():
        job = AlignJob(**spec)
        try:
            summary = run_job(job)
            results[name] = {
                "records": read_jsonl(Path(job.run_dir) / "metrics.jsonl"),
                "summary": summary,
            }
        except Exception as e:  # reported per job so one failure does not hide the others
            results[name] = {"error": f"{type(e).__name__}: {e}"}
            logging.getLogger(__name__).exception("job %s failed", name)
        dist.barrier()
    if dist.get_rank() == 0:
        write_json(out, results)
    dist.destroy_process_group()


def job_dict(job: AlignJob) -> dict[str, Any]:
    return asdict(job)

"""The main job: the herd end to end on a small embedded default (CPU, minutes).

Each stage lives in ``integration/stages/<name>.py`` and exposes ``run(workdir) -> dict`` of
figures. Stages run in the order of the Llama 3 flow; the summary is printed and written to
``<workdir>/summary.json``.

    python integration/main_job.py [--workdir out/main-job] [--only core,guard]
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

# The Llama 3 flow: data -> pre-training -> scaling fit -> (alignment) -> safety -> (inference).
ORDER = ["data", "core", "scaling", "align", "guard", "infer_fp8", "vision", "speech"]


def available_stages() -> list[str]:
    here = Path(__file__).parent / "stages"
    present = {p.stem for p in here.glob("*.py") if not p.stem.startswith("_")}
    return [s for s in ORDER if s in present]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--workdir", type=Path, default=Path("out/main-job"))
    p.add_argument("--only", default="", help="comma-separated stage names (default: all)")
    opts = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    stages = available_stages()
    if opts.only:
        wanted = opts.only.split(",")
        unknown = sorted(set(wanted) - set(stages))
        if unknown:
            p.error(f"unknown stage(s) {unknown}; available: {stages}")
        stages = [s for s in stages if s in wanted]
    opts.workdir.mkdir(parents=True, exist_ok=True)
    summary: dict[str, dict] = {}
    for name in stages:
        print(f"\n=== stage {name} ===", flush=True)
        t0 = time.perf_counter()
        module = importlib.import_module(f"stages.{name}")
        figures = module.run(opts.workdir / name)
        figures["seconds"] = round(time.perf_counter() - t0, 1)
        summary[name] = figures
        for key, value in figures.items():
            print(f"  {key}: {value}")
    (opts.workdir / "summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    print(f"\nmain job done: {', '.join(stages)}; summary in {opts.workdir / 'summary.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The work of a run, independent of where it runs: units, markers, reduce, report.

A run is a list of segments (see :func:`l3_data.pipeline.segments`). In segment 0 each input
file is a task read in chunks of ``chunk_size`` records; chunk ``c`` of task ``t`` is the unit
``t0000c00000``, and every later segment processes the same units. A unit's results (its
intermediate documents, the arrays its barrier collected, its exclusions, its outputs) are
written atomically, then its marker (with its counters) last: a unit with a marker is done, a
unit without one is redone whole. So a killed run resumes at chunk granularity without losing
or duplicating a document, and the report is the sum of the markers.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from l3_core.io import atomic_write, remove_stale_temporaries, write_json
from l3_core.jsonl import iter_jsonl
from l3_data.document import BadRecord, Document
from l3_data.errors import InputChangedError, WorkdirMismatchError
from l3_data.executors.inputs import check_inputs, record_inputs
from l3_data.memory import peak_rss_mib, reset_peak, rss_mib
from l3_data.pipeline import Pipeline, segments
from l3_data.steps import ChunkContext, GlobalStep, PartitionedStep, Step
from l3_data.steps.global_arrays import Loader
from l3_data.steps.readers import Record
from l3_data.steps.writers import write_compressed_jsonl

log = logging.getLogger(__name__)


def unit_name(task: int, chunk: int) -> str:
    return f"t{task:04d}c{chunk:05d}"


@dataclass(frozen=True)
class PartitionItem:
    """A work item of a barrier's reduce: one part of a :class:`PartitionedStep`."""

    part: int


class Engine:
    """Everything a worker or a driver needs; rebuilt from ``pipeline.to_dict()`` in workers."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline
        self.workdir = Path(pipeline.settings.workdir)
        self.steps: list[Step] = pipeline.build_steps()
        self.segments = segments(self.steps)
        self._ready = False

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Engine:
        return cls(Pipeline.from_dict(config["pipeline"], origin=config["origin"]))

    def config(self) -> dict[str, Any]:
        return {"pipeline": self.pipeline.to_dict(), "origin": self.pipeline.origin}

    def setup(self) -> None:
        if not self._ready:
            for step in self.steps:
                step.setup()
            self._ready = True

    # -- paths ------------------------------------------------------------------------------

    def marker(self, seg: int, unit: str) -> Path:
        return self.workdir / "markers" / f"s{seg}" / f"{unit}.json"

    def task_marker(self, task: int) -> Path:
        return self.workdir / "markers" / "s0" / f"task{task:04d}.done.json"

    def reduce_marker(self, seg: int) -> Path:
        return self.workdir / "markers" / f"reduce{seg}.json"

    def partition_marker(self, seg: int, part: int) -> Path:
        return self.workdir / "markers" / f"reduce{seg}" / f"p{part:04d}.json"

    def data(self, seg: int, unit: str, ext: str) -> Path:
        return self.workdir / "data" / f"s{seg}" / f"{unit}{ext}"

    def state_dir(self, seg: int) -> Path:
        return self.workdir / "state" / f"s{seg}"

    # -- planning ---------------------------------------------------------------------------

    def prepare(self, restart: bool = False) -> None:
        """Create the workdir, or check that it holds a run of this same pipeline over the same
        input files (:mod:`l3_data.executors.inputs`); clear what killed writes left."""
        fp_path = self.workdir / "pipeline.json"
        inputs_path = self.workdir / "inputs.json"
        fp = self.pipeline.fingerprint()
        if fp_path.exists() and not restart:
            if fp_path.read_text(encoding="utf-8") != fp:
                raise WorkdirMismatchError(
                    f"{self.workdir}: holds a run of a different pipeline; use another "
                    "workdir or --force (--restart) to discard it"
                )
            if not inputs_path.is_file():
                raise InputChangedError(
                    f"{self.workdir}: has no record of its input files (started by an older "
                    "l3-data), so a resume cannot prove it reads the same inputs: use a new "
                    "workdir, or --force (--restart) to discard the work done"
                )
            recorded = json.loads(inputs_path.read_text(encoding="utf-8"))
            check_inputs(recorded, self.tasks(), self.workdir)
            self._remove_stale_temporaries()
            return
        if restart and self.workdir.exists():
            for sub in ("markers", "data", "state", "excluded"):
                shutil.rmtree(self.workdir / sub, ignore_errors=True)
        self._remove_stale_temporaries()
        # The input record first, the fingerprint last: a workdir with a fingerprint is
        # always one whose inputs were recorded.
        write_json(inputs_path, record_inputs(self.tasks()))
        with atomic_write(fp_path, encoding="utf-8") as f:
            f.write(fp)

    def _remove_stale_temporaries(self) -> None:
        """Delete the partial files of atomic writes a kill -9 interrupted: in the workdir and
        in the output folders the steps write."""
        dirs = [self.workdir, *(Path(d) for s in self.steps for d in s.output_dirs())]
        for top in dirs:
            if not top.is_dir():
                continue
            for d in [top, *(p for p in top.rglob("*") if p.is_dir())]:
                for p in remove_stale_temporaries(d):
                    log.info("removed %s, left by an interrupted write", p)

    def tasks(self) -> list[Path]:
        return self.pipeline.input.tasks()

    def status(self) -> dict[str, Any]:
        """How far the run in ``workdir`` got, without running anything: per segment, the
        units done and (once segment 0 has finished every task) the units in all; whether its
        barrier was reduced; whether the run finished (``report.json`` written)."""
        n_tasks = len(self.tasks())
        tasks_done = sum(self.task_marker(t).exists() for t in range(n_tasks))
        total = len(self.units()) if tasks_done == n_tasks else None
        out = []
        for seg, (_, barrier) in enumerate(self.segments):
            out.append(
                {
                    "segment": seg,
                    "barrier": self.steps[barrier].label if barrier is not None else None,
                    "units_done": len(
                        list((self.workdir / "markers" / f"s{seg}").glob("t*c*.json"))
                    ),
                    "units_total": total,
                    "reduced": barrier is not None and self.reduce_marker(seg).exists(),
                }
            )
        return {
            "workdir": str(self.workdir),
            "tasks": n_tasks,
            "tasks_done": tasks_done,
            "segments": out,
            "finished": (self.workdir / "report.json").exists(),
        }

    def units(self) -> list[str]:
        """Every unit of segment 0, once all its tasks are done."""
        out: list[str] = []
        for t in range(len(self.tasks())):
            info = json.loads(self.task_marker(t).read_text(encoding="utf-8"))
            out.extend(unit_name(t, c) for c in range(info["chunks"]))
        return out

    def pending(self, seg: int) -> list[Any]:
        """Work items not done yet: task indices in segment 0, unit names later."""
        if seg == 0:
            return [t for t in range(len(self.tasks())) if not self.task_marker(t).exists()]
        return [u for u in self.units() if not self.marker(seg, u).exists()]

    def pending_partitions(self, seg: int) -> list[PartitionItem]:
        """The parts of segment ``seg``'s barrier reduce not done yet (none unless the barrier
        is a :class:`PartitionedStep` whose reduce is still to do)."""
        g = self._barrier(seg)
        if not isinstance(g, PartitionedStep) or self.reduce_marker(seg).exists():
            return []
        return [
            PartitionItem(p)
            for p in range(g.partitions)
            if not self.partition_marker(seg, p).exists()
        ]

    # -- work -------------------------------------------------------------------------------

    def item_kind(self, seg: int) -> str:
        """What the work items of segment ``seg`` are: input files, or chunks."""
        return "tasks" if seg == 0 else "chunks"

    def run_item(self, seg: int, item: Any) -> int:
        """Do one work item; return the number of units it completed."""
        self.setup()
        if isinstance(item, PartitionItem):
            return self._run_partition(seg, item.part)
        if seg == 0:
            return self._run_task(int(item))
        return self._run_unit(seg, str(item), self._load_docs(seg - 1, str(item)))

    def _run_task(self, task: int) -> int:
        path = self.tasks()[task]
        size = self.pipeline.settings.chunk_size
        chunk, n_done = 0, 0
        while self.marker(0, unit_name(task, chunk)).exists():
            chunk += 1
        records = self.pipeline.input.read(path, skip=chunk * size)
        buf: list[Record] = []
        current = chunk
        for index, rec in records:
            c = index // size
            while c > current:
                n_done += self._finish_chunk(task, current, buf)
                buf = []
                current += 1
            buf.append(rec)
        # The last chunk exists if it has records, or if the file has none at all; a resumed
        # task whose chunks were all done before the kill must not add an empty one.
        if buf or current == 0:
            n_done += self._finish_chunk(task, current, buf)
            current += 1
        write_json(self.task_marker(task), {"path": str(path), "chunks": current})
        return n_done

    def _finish_chunk(self, task: int, chunk: int, records: list[Record]) -> int:
        unit = unit_name(task, chunk)
        if self.marker(0, unit).exists():
            return 0
        ctx = ChunkContext(unit=unit, workdir=self.workdir)
        docs = []
        for rec in records:
            if isinstance(rec, BadRecord):
                ctx.stats[f"read/rejected:{rec.reason}"] += 1
                ctx.excluded.append({**rec.to_json(), "reason": f"read:{rec.reason}"})
            else:
                docs.append(rec)
        ctx.stats["read/docs_out"] += len(docs)
        return self._run_unit(0, unit, docs, ctx)

    def _run_unit(
        self, seg: int, unit: str, docs: list[Document], ctx: ChunkContext | None = None
    ) -> int:
        ctx = ctx or ChunkContext(unit=unit, workdir=self.workdir)
        indices, barrier = self.segments[seg]
        stream: Iterator[Document] = iter(docs)
        if seg > 0:
            previous = self.segments[seg - 1][1]
            # every segment but the last ends at a global step, whose apply starts the next
            assert previous is not None
            g = self.steps[previous]
            assert isinstance(g, GlobalStep)
            stream = _count(stream, ctx.stats, g.label, "in")
            stream = g.apply(list(stream), ctx, self.state_dir(seg - 1))
            stream = _timed(stream, ctx.stats, g.label)
        for i in indices:
            step = self.steps[i]
            stream = step.run(_count(stream, ctx.stats, step.label, "in"), ctx)
            stream = _timed(stream, ctx.stats, step.label)
        out = list(stream)
        if barrier is not None:
            g = self.steps[barrier]
            assert isinstance(g, GlobalStep)
            t0 = time.perf_counter()
            arrays = g.collect(out)
            _add_seconds(ctx.stats, f"{g.label}/time_collect_s", time.perf_counter() - t0)
            with atomic_write(self.data(seg, unit, ".npz"), "wb") as f:
                # numpy types **kwds against its allow_pickle: bool keyword
                np.savez(f, **arrays)  # type: ignore[arg-type]
            write_compressed_jsonl(self.data(seg, unit, ".jsonl.zst"), (d.to_json() for d in out))
        if ctx.excluded:
            write_compressed_jsonl(
                self.workdir / "excluded" / f"s{seg}" / f"{unit}.jsonl.gz", ctx.excluded
            )
        ctx.stats[f"s{seg}/docs_out"] += len(out)
        write_json(self.marker(seg, unit), dict(ctx.stats))
        return 1

    def _load_docs(self, seg: int, unit: str) -> list[Document]:
        return [
            Document(row.pop("text"), row.pop("id"), row.pop("source", ""), row)
            for _, row in iter_jsonl(self.data(seg, unit, ".jsonl.zst"))
        ]

    # -- barriers and the end ---------------------------------------------------------------

    def _barrier(self, seg: int) -> GlobalStep | None:
        barrier = self.segments[seg][1]
        if barrier is None:
            return None
        g = self.steps[barrier]
        assert isinstance(g, GlobalStep)
        return g

    def _loader(self, seg: int) -> Loader:
        def load(unit: str) -> dict[str, np.ndarray]:
            return np.load(self.data(seg, unit, ".npz"), allow_pickle=False)

        return load

    def _run_partition(self, seg: int, part: int) -> int:
        """One part of a partitioned reduce; its figures (with the peak resident memory of
        this worker while it ran) go to its marker, written last."""
        g = self._barrier(seg)
        assert isinstance(g, PartitionedStep)
        marker = self.partition_marker(seg, part)
        if marker.exists():
            return 0
        reset_peak()
        rss0, t0 = rss_mib(), time.perf_counter()
        summary = g.reduce_partition(part, self.units(), self._loader(seg), self.state_dir(seg))
        summary.update(
            time_s=round(time.perf_counter() - t0, 3),
            rss_start_mib=rss0,
            rss_peak_mib=peak_rss_mib(),
        )
        write_json(marker, summary)
        return 1

    def reduce(self, seg: int) -> None:
        """The barrier's reduce; for a partitioned step, the parts not done yet (an executor
        has normally run them in its workers) and then the merge."""
        g = self._barrier(seg)
        if g is None or self.reduce_marker(seg).exists():
            return
        self.setup()
        units = self.units()
        load = self._loader(seg)
        t0 = time.perf_counter()
        if isinstance(g, PartitionedStep):
            for item in self.pending_partitions(seg):
                self._run_partition(seg, item.part)
            parts = [
                json.loads(self.partition_marker(seg, p).read_text(encoding="utf-8"))
                for p in range(g.partitions)
            ]
            summary = g.merge(units, load, self.state_dir(seg), parts)
            summary["partition_time_s"] = round(sum(p["time_s"] for p in parts), 3)
            summary["partition_rss_peak_mib"] = max(p["rss_peak_mib"] for p in parts)
        else:
            summary = g.reduce(units, load, self.state_dir(seg))
        summary["time_s"] = round(time.perf_counter() - t0, 3)
        log.info("%s reduced over %d chunks: %s", g.label, len(units), summary)
        write_json(self.reduce_marker(seg), summary)

    def finalize(self) -> dict[str, Any]:
        self.setup()
        finals = {s.label: s.finalize(self.workdir) for s in self.steps}
        report = self.report({k: v for k, v in finals.items() if v})
        write_json(self.workdir / "report.json", report)
        return report

    def report(self, finals: dict[str, Any] | None = None) -> dict[str, Any]:
        """Sum every marker: documents and characters in/out per step, rejections by reason,
        languages and other step counters, time per step, and the reduce summaries."""
        totals: Counter = Counter()
        for seg in range(len(self.segments)):
            for p in sorted((self.workdir / "markers" / f"s{seg}").glob("t*c*.json")):
                totals.update(json.loads(p.read_text(encoding="utf-8")))
        labels = ["read"] + [s.label for s in self.steps]
        steps: dict[str, dict[str, Any]] = {}
        prev_inclusive = 0.0
        global_labels = {self.steps[b].label for _, b in self.segments if b is not None}
        for label in labels:
            if label in global_labels:
                prev_inclusive = 0.0  # its apply starts a new segment: nothing upstream
            mine = {k.split("/", 1)[1]: v for k, v in totals.items() if k.startswith(label + "/")}
            inclusive = mine.pop("time_s", 0.0)
            rejected = {
                k.removeprefix("rejected:"): v for k, v in mine.items() if k.startswith("rejected:")
            }
            entry: dict[str, Any] = {k: v for k, v in mine.items() if not k.startswith("rejected:")}
            if inclusive:
                entry["time_s"] = round(max(inclusive - prev_inclusive, 0.0), 3)
                prev_inclusive = inclusive
            if rejected:
                entry["rejected"] = dict(sorted(rejected.items()))
            steps[label] = entry
        reduces = {}
        for seg, (_, barrier) in enumerate(self.segments):
            if barrier is not None and self.reduce_marker(seg).exists():
                reduces[self.steps[barrier].label] = json.loads(
                    self.reduce_marker(seg).read_text(encoding="utf-8")
                )
        last = len(self.segments) - 1
        return {
            "pipeline": self.pipeline.origin,
            "workdir": str(self.workdir),
            "documents_in": int(
                sum(
                    v
                    for k, v in totals.items()
                    if k == "read/docs_out" or k.startswith("read/rejected:")
                )
            ),
            "documents_out": int(totals.get(f"s{last}/docs_out", 0)),
            "rejected_total": int(sum(v for k, v in totals.items() if "/rejected:" in k)),
            "steps": steps,
            "global": reduces,
            "outputs": finals or {},
            "excluded": str(self.workdir / "excluded"),
        }


def _count(it: Iterable[Document], stats: Counter, label: str, kind: str) -> Iterator[Document]:
    docs_key, chars_key = f"{label}/docs_{kind}", f"{label}/chars_{kind}"
    for doc in it:
        stats[docs_key] += 1
        stats[chars_key] += len(doc.text)
        yield doc


def _timed(it: Iterator[Document], stats: Counter, label: str) -> Iterator[Document]:
    """Count the step's output and the time spent producing it (including upstream steps; the
    report subtracts the previous step's to get the step's own)."""
    key = f"{label}/time_s"
    docs_key, chars_key = f"{label}/docs_out", f"{label}/chars_out"
    clock = time.perf_counter
    while True:
        t0 = clock()
        try:
            doc = next(it)
        except StopIteration:
            _add_seconds(stats, key, clock() - t0)
            return
        _add_seconds(stats, key, clock() - t0)
        stats[docs_key] += 1
        stats[chars_key] += len(doc.text)
        yield doc


def _add_seconds(stats: Counter, key: str, seconds: float) -> None:
    # A Counter holds any number; typeshed types its values int, and these are float seconds.
    stats[key] += seconds  # type: ignore[assignment]

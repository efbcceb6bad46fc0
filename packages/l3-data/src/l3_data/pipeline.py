"""A pipeline: its settings, its input and its steps, read from a TOML file or built in Python.

A pipeline file::

    [pipeline]
    workdir = "work"          # markers, intermediate chunks, exclusions, report
    chunk_size = 10000        # documents per unit of work (and of resumption)
    workers = 2               # local processes (0: one per CPU)
    executor = "local"        # or "ray" (needs l3-data[ray]); ray_address = "auto" for a cluster

    [input]
    format = "jsonl"          # jsonl (plain, .gz, .zst) | parquet | text (folders of files)
    paths = ["raw/*.jsonl.gz"]

    [[steps]]
    type = "langid"
    keep = ["en"]

Unknown tables, step types and options are errors naming the file and the key. Relative paths
(input paths, the workdir, step outputs and models) are relative to the pipeline file.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from l3_core.config import from_dict, read_toml
from l3_core.errors import ConfigError
from l3_data.errors import PipelineConfigError
from l3_data.steps import STEPS, GlobalStep, Step
from l3_data.steps.readers import InputSpec

_PATH_OPTIONS = ("output", "model")


@dataclass(kw_only=True)
class Settings:
    workdir: str = "l3-data-work"
    chunk_size: int = 10_000
    workers: int = 0
    executor: str = "local"
    ray_address: str = ""


@dataclass
class Pipeline:
    settings: Settings
    input: InputSpec
    steps: list[dict[str, Any]] = field(default_factory=list)
    origin: str = "<python>"

    @classmethod
    def from_toml(cls, path: str | Path, overrides: dict[str, Any] | None = None) -> Pipeline:
        path = Path(path)
        try:
            data = read_toml(path)
        except ConfigError as e:
            raise PipelineConfigError(str(e)) from None
        for key, value in (overrides or {}).items():
            data.setdefault("pipeline", {})[key] = value
        return cls.from_dict(data, base=path.parent, origin=str(path))

    @classmethod
    def from_dict(cls, data: dict[str, Any], base: Path = Path("."),
                  origin: str = "<python>") -> Pipeline:
        unknown = sorted(set(data) - {"pipeline", "input", "steps"})
        if unknown:
            raise PipelineConfigError(f"{origin}: unknown table {unknown[0]!r}; expected "
                                      "[pipeline], [input] and [[steps]]")
        try:
            settings = from_dict(Settings, data.get("pipeline", {}), "pipeline")
            spec = from_dict(InputSpec, data.get("input", {}), "input")
        except ConfigError as e:
            raise PipelineConfigError(f"{origin}: {e}") from None
        if settings.executor not in ("local", "ray"):
            raise PipelineConfigError(f"{origin}: pipeline.executor = {settings.executor!r}: "
                                      "expected 'local' or 'ray'")
        if settings.chunk_size < 1:
            raise PipelineConfigError(f"{origin}: pipeline.chunk_size must be positive")
        settings.workdir = _resolve(base, settings.workdir)
        spec.paths = [_resolve(base, p) for p in spec.paths]
        steps = data.get("steps", [])
        if not isinstance(steps, list):
            raise PipelineConfigError(f"{origin}: 'steps' must be an array of tables ([[steps]])")
        resolved = []
        for i, raw in enumerate(steps):
            if not isinstance(raw, dict) or "type" not in raw:
                raise PipelineConfigError(f"{origin}: steps[{i}] has no 'type'")
            opts = dict(raw)
            for key in _PATH_OPTIONS:
                if isinstance(opts.get(key), str) and opts[key]:
                    opts[key] = _resolve(base, opts[key])
            if raw["type"] == "tokenize" and opts.get("tokenizer", "llama3") != "llama3":
                opts["tokenizer"] = _resolve(base, opts["tokenizer"])
            if raw["type"] == "dirty_words" and isinstance(opts.get("word_lists"), dict):
                opts["word_lists"] = {k: _resolve(base, v) for k, v in opts["word_lists"].items()}
            resolved.append(opts)
        pipe = cls(settings, spec, resolved, origin)
        pipe.build_steps()  # validate every step now, not in a worker later
        return pipe

    def build_steps(self) -> list[Step]:
        out = []
        for i, raw in enumerate(self.steps):
            opts = dict(raw)
            name = opts.pop("type")
            where = f"steps[{i}] ({name})"
            if name not in STEPS:
                raise PipelineConfigError(f"{self.origin}: {where}: unknown step type {name!r}; "
                                          f"known: {', '.join(sorted(STEPS))}")
            cls = STEPS[name]
            try:
                step = from_dict(cls, opts, where)
            except ConfigError as e:
                raise PipelineConfigError(f"{self.origin}: {e}") from None
            step.label = f"{i + 1:02d}.{name}"
            out.append(step)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"pipeline": dataclasses.asdict(self.settings),
                "input": dataclasses.asdict(self.input), "steps": self.steps}

    def fingerprint(self) -> str:
        """What must match for a rerun to resume the work in ``workdir`` (not worker counts)."""
        d = self.to_dict()
        d["pipeline"] = {k: v for k, v in d["pipeline"].items()
                         if k in ("chunk_size",)}
        return json.dumps(d, sort_keys=True)


def segments(steps: list[Step]) -> list[tuple[list[int], int | None]]:
    """Split the steps at each global step: ``(step indices run per chunk, barrier index)``.

    The steps of a segment run chunk by chunk; the barrier's ``collect`` ends the segment, its
    ``reduce`` runs once, and its ``apply`` starts the next segment."""
    out: list[tuple[list[int], int | None]] = []
    current: list[int] = []
    for i, step in enumerate(steps):
        if isinstance(step, GlobalStep):
            out.append((current, i))
            current = []
        else:
            current.append(i)
    out.append((current, None))
    return out


def _resolve(base: Path, p: str) -> str:
    return p if Path(p).is_absolute() else str((base / p).resolve())

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

Unknown tables, step types and options are errors naming the file and the key, and so is a
step, input format or executor whose optional extra is not installed. Relative paths (input
paths, the workdir, and the options each step declares in ``path_fields``) are relative to
the pipeline file.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from l3_core.config import apply_overrides, from_dict, parse_override, read_toml
from l3_core.errors import ConfigError
from l3_data.errors import PipelineConfigError
from l3_data.extras import require_extra
from l3_data.steps import STEPS, GlobalStep, Step
from l3_data.steps.limits import NON_NEGATIVE, POSITIVE, violations
from l3_data.steps.readers import FORMAT_EXTRAS, InputSpec


@dataclass(kw_only=True)
class Settings:
    workdir: str = "l3-data-work"
    chunk_size: int = 10_000
    workers: int = 0
    executor: str = "local"
    ray_address: str = ""


SETTINGS_LIMITS = {"chunk_size": POSITIVE, "workers": NON_NEGATIVE}
INPUT_LIMITS = {"max_chars": POSITIVE}


@dataclass
class Pipeline:
    settings: Settings
    input: InputSpec
    steps: list[dict[str, Any]] = field(default_factory=list)
    origin: str = "<python>"

    @classmethod
    def from_toml(cls, path: str | Path, overrides: Iterable[str] = ()) -> Pipeline:
        """Read a pipeline file; each override is ``KEY=VALUE`` for any key of the file
        (``pipeline.workers=4``, ``input.paths=["a.jsonl"]``, ``steps.2.threshold=0.7``)."""
        path = Path(path)
        try:
            data = apply_pipeline_overrides(read_toml(path), overrides)
        except ConfigError as e:
            raise PipelineConfigError(str(e)) from None
        return cls.from_dict(data, base=path.parent, origin=str(path))

    @classmethod
    def from_dict(
        cls, data: dict[str, Any], base: Path = Path("."), origin: str = "<python>"
    ) -> Pipeline:
        unknown = sorted(set(data) - {"pipeline", "input", "steps"})
        if unknown:
            raise PipelineConfigError(
                f"{origin}: unknown table {unknown[0]!r}; expected "
                "[pipeline], [input] and [[steps]]"
            )
        try:
            settings = from_dict(Settings, data.get("pipeline", {}), "pipeline")
            spec = from_dict(InputSpec, data.get("input", {}), "input")
        except ConfigError as e:
            raise PipelineConfigError(f"{origin}: {e}") from None
        _check_settings(settings, origin)
        _check_input(spec, origin)
        settings.workdir = _resolve(base, settings.workdir)
        spec.paths = [_resolve(base, p) for p in spec.paths]
        steps = data.get("steps", [])
        if not isinstance(steps, list):
            raise PipelineConfigError(f"{origin}: 'steps' must be an array of tables ([[steps]])")
        resolved = []
        for i, raw in enumerate(steps):
            step_cls = _step_class(raw, i, origin)
            resolved.append(step_cls.resolve_paths(raw, lambda p: _resolve(base, p)))
        pipe = cls(settings, spec, resolved, origin)
        pipe.build_steps()  # validate every step now, not in a worker later
        return pipe

    def build_steps(self) -> list[Step]:
        out = []
        for i, raw in enumerate(self.steps):
            step_cls = _step_class(raw, i, self.origin)
            opts = dict(raw)
            name = opts.pop("type")
            where = f"steps[{i}] ({name})"
            if step_cls.extra:
                require_extra(step_cls.extra, f"{self.origin}: {where}")
            try:
                step = from_dict(step_cls, opts, where)
            except ConfigError as e:
                raise PipelineConfigError(f"{self.origin}: {e}") from None
            problems = step.check_options()
            if problems:
                raise PipelineConfigError(f"{self.origin}: {where}: " + "; ".join(problems))
            step.label = f"{i + 1:02d}.{name}"
            out.append(step)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "pipeline": dataclasses.asdict(self.settings),
            "input": dataclasses.asdict(self.input),
            "steps": self.steps,
        }

    def fingerprint(self) -> str:
        """What must match for a rerun to resume the work in ``workdir`` (not worker counts)."""
        d = self.to_dict()
        d["pipeline"] = {"chunk_size": self.settings.chunk_size}
        return json.dumps(d, sort_keys=True)


def apply_pipeline_overrides(data: dict[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    """``data`` with each ``KEY=VALUE`` applied; ``steps.N.key`` sets an option of step N
    (counted from 0, as in error messages), every other key goes through
    :func:`l3_core.config.apply_overrides`."""
    out = dict(data)
    for item in overrides:
        keys, value = parse_override(item)
        if keys[0] != "steps":
            out = apply_overrides(out, [item])
            continue
        steps = [dict(s) for s in out.get("steps", [])]
        if len(keys) < 3 or not keys[1].isdigit() or int(keys[1]) >= len(steps):
            raise PipelineConfigError(
                f"--set {item!r}: expected steps.N.option with N below "
                f"the {len(steps)} steps of the pipeline"
            )
        node = steps[int(keys[1])]
        for k in keys[2:-1]:
            node = node.setdefault(k, {})
            if not isinstance(node, dict):
                raise PipelineConfigError(f"--set {item!r}: {k!r} is a value, not a table")
        node[keys[-1]] = value
        out["steps"] = steps
    return out


def _step_class(raw: Any, index: int, origin: str) -> type[Step]:
    if not isinstance(raw, dict) or "type" not in raw:
        raise PipelineConfigError(f"{origin}: steps[{index}] has no 'type'")
    name = raw["type"]
    if name not in STEPS:
        raise PipelineConfigError(
            f"{origin}: steps[{index}] ({name}): unknown step type "
            f"{name!r}; known: {', '.join(sorted(STEPS))}"
        )
    return STEPS[name]


def _check_settings(settings: Settings, origin: str) -> None:
    # Imported here: the executors import this module (they run pipelines).
    from l3_data.executors import EXECUTORS

    executor = EXECUTORS.get(settings.executor)
    if executor is None:
        raise PipelineConfigError(
            f"{origin}: pipeline.executor = {settings.executor!r}: "
            f"expected one of {sorted(EXECUTORS)}"
        )
    if executor.extra:
        require_extra(executor.extra, f"{origin}: pipeline.executor = {settings.executor!r}")
    problems = violations(vars(settings), SETTINGS_LIMITS)
    if problems:
        raise PipelineConfigError(f"{origin}: pipeline." + "; pipeline.".join(problems))


def _check_input(spec: InputSpec, origin: str) -> None:
    extra = FORMAT_EXTRAS.get(spec.format)
    if extra is None:
        raise PipelineConfigError(
            f"{origin}: input.format = {spec.format!r}: expected one of {sorted(FORMAT_EXTRAS)}"
        )
    if extra:
        require_extra(extra, f"{origin}: input.format = {spec.format!r}")
    problems = violations(vars(spec), INPUT_LIMITS)
    if problems:
        raise PipelineConfigError(f"{origin}: input." + "; input.".join(problems))


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

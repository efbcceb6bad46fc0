"""The project's own checkpoint format: ``params.json`` (ModelArgs) + safetensors, our names."""

from __future__ import annotations

import json
from pathlib import Path

from l3_core.args import ModelArgs, args_from_dict, args_to_dict
from l3_core.errors import CheckpointError, ConfigError
from l3_core.io import write_json

FORMAT = "l3-checkpoint"
VERSION = 1
PARAMS = "params.json"


def write_params(directory: Path, args: ModelArgs, dtype: str) -> None:
    write_json(
        directory / PARAMS,
        {"format": FORMAT, "version": VERSION, "dtype": dtype, "args": args_to_dict(args)},
    )


def read_params(directory: Path) -> ModelArgs:
    path = directory / PARAMS
    try:
        data = json.loads(path.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{path}: not valid JSON: {e}") from None
    if not isinstance(data, dict) or not isinstance(data.get("args"), dict):
        raise CheckpointError(f"{path}: expected a JSON object with an 'args' table")
    if data.get("format") != FORMAT:
        raise CheckpointError(f"{path}: format {data.get('format')!r}, expected {FORMAT!r}")
    if data.get("version") != VERSION:
        raise CheckpointError(
            f"{path}: version {data.get('version')!r} is not supported ({VERSION})"
        )
    args = dict(data["args"])
    if args.get("rope_scaling") is not None:
        args["rope_scaling"] = dict(args["rope_scaling"])
    try:
        return args_from_dict(args, where=str(path))
    except ConfigError as e:
        raise CheckpointError(str(e)) from None

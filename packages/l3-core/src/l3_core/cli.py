"""``l3-core``: presets, checkpoint inspection and conversion, text generation, training.

The commands are data (:data:`COMMANDS`) run by :func:`l3_core.cli_runner.run_cli`, which gives
each failure one line on stderr and the exit code of its error class. ``presets`` needs only
the base install; ``info``, ``convert`` and ``generate`` need ``l3-core[model]`` and ``train``
needs ``l3-core[train]``, imported when they run, so a missing extra is a one-line
dependency error, not a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Sequence
from dataclasses import asdict
from types import ModuleType
from typing import TypedDict

from l3_core.args import ModelArgs, list_presets
from l3_core.cli_runner import Command, run_cli
from l3_core.errors import DependencyError
from l3_core.train.cli import COMMAND as TRAIN


def _model_extra(module: str) -> ModuleType:
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise DependencyError(
            f"this command needs the model extra: pip install 'l3-core[model]' ({e})"
        ) from None


class _PresetRow(TypedDict):
    preset: str
    params: int
    dim: int
    layers: int
    heads: int
    kv_heads: int
    ffn: int
    vocab: int
    rope_scaling: bool
    tied: bool


def _preset_row(name: str) -> _PresetRow:
    a = ModelArgs.from_preset(name)
    return {
        "preset": name,
        "params": a.num_params(),
        "dim": a.dim,
        "layers": a.n_layers,
        "heads": a.n_heads,
        "kv_heads": a.kv_heads,
        "ffn": a.ffn_hidden_dim,
        "vocab": a.vocab_size,
        "rope_scaling": a.rope_scaling is not None,
        "tied": a.tie_embeddings,
    }


def _configure_presets(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="one JSON list instead of a table")


def _presets(opts: argparse.Namespace) -> int:
    rows = [_preset_row(name) for name in list_presets()]
    if opts.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(
        f"{'preset':<16}{'params':>10}{'dim':>7}{'layers':>7}{'heads':>6}{'kv':>4}{'ffn':>7}{'vocab':>8}"
    )
    for r in rows:
        print(
            f"{r['preset']:<16}{r['params'] / 1e9:>9.3f}B{r['dim']:>7}{r['layers']:>7}{r['heads']:>6}"
            f"{r['kv_heads']:>4}{r['ffn']:>7}{r['vocab']:>8}"
        )
    return 0


def _configure_info(p: argparse.ArgumentParser) -> None:
    p.add_argument("checkpoint")


def _info(opts: argparse.Namespace) -> int:
    checkpoint = _model_extra("l3_core.checkpoint")
    model = checkpoint.load_checkpoint(opts.checkpoint)
    print(
        json.dumps(
            {
                "format": checkpoint.detect_format(opts.checkpoint),
                "params": model.num_params(),
                "dtype": str(model.tok_embeddings.weight.dtype),
                "args": asdict(model.args),
            },
            indent=2,
            default=str,
        )
    )
    return 0


def _configure_convert(p: argparse.ArgumentParser) -> None:
    p.add_argument("src")
    p.add_argument("dst")
    p.add_argument("--format", choices=["hf", "l3"], required=True)


def _convert(opts: argparse.Namespace) -> int:
    checkpoint = _model_extra("l3_core.checkpoint")
    model = checkpoint.load_checkpoint(opts.src)
    checkpoint.save_checkpoint(model, opts.dst, format=opts.format)
    print(f"wrote {opts.dst} ({opts.format} format)")
    return 0


def _configure_generate(p: argparse.ArgumentParser) -> None:
    p.add_argument("checkpoint")
    p.add_argument("--prompt", required=True)
    p.add_argument("--tokenizer", help="tokenizer file (default: the official Llama 3 one)")
    p.add_argument("--max-new-tokens", type=int, default=64)
    p.add_argument("--temperature", type=float, default=0.0)
    p.add_argument("--top-p", type=float, default=0.9)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--chat", action="store_true", help="wrap the prompt in the Llama 3.1 chat format"
    )


def _generate(opts: argparse.Namespace) -> int:
    from l3_core.tokenizer import ChatFormat, Message, Tokenizer, llama3_tokenizer_path

    torch = _model_extra("torch")
    checkpoint = _model_extra("l3_core.checkpoint")
    model_pkg = _model_extra("l3_core.model")
    torch.manual_seed(opts.seed)
    tok = Tokenizer.from_file(opts.tokenizer or llama3_tokenizer_path())
    model = checkpoint.load_checkpoint(opts.checkpoint)
    _model_extra("l3_core.kernels").for_device(model)  # the lean CPU decoding step
    if opts.chat:
        ids = ChatFormat(tok).encode_dialog_prompt([Message("user", opts.prompt)])
    else:
        ids = tok.encode(opts.prompt, bos=True, eos=False)
    out = model_pkg.generate(
        model,
        [ids],
        opts.max_new_tokens,
        temperature=opts.temperature,
        top_p=opts.top_p,
        stop_tokens=tok.stop_tokens,
        seed=opts.seed,
    )[0]
    print(opts.prompt + tok.decode([t for t in out if t not in tok.stop_tokens]))
    return 0


DESCRIPTION = "Llama 3 model presets, checkpoints, text generation and training."

COMMANDS: list[Command] = [
    Command("presets", "list model presets and their sizes", _configure_presets, _presets),
    Command("info", "describe a checkpoint (HF or l3 format)", _configure_info, _info),
    Command(
        "convert", "convert a checkpoint between HF and l3 formats", _configure_convert, _convert
    ),
    Command("generate", "generate text from a checkpoint", _configure_generate, _generate),
    TRAIN,
]


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli("l3-core", COMMANDS, argv, description=DESCRIPTION, distribution="l3-core")


if __name__ == "__main__":
    sys.exit(main())

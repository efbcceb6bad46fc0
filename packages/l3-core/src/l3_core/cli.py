"""``l3-core``: presets, checkpoint inspection and conversion, text generation.

Subcommands register themselves in ``COMMANDS``; training adds ``train``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable

from l3_core.errors import L3Error


def _presets(opts: argparse.Namespace) -> int:
    from l3_core.args import ModelArgs, list_presets

    rows = []
    for name in list_presets():
        a = ModelArgs.from_preset(name)
        rows.append({"preset": name, "params": a.num_params(), "dim": a.dim, "layers": a.n_layers,
                     "heads": a.n_heads, "kv_heads": a.kv_heads, "ffn": a.ffn_hidden_dim,
                     "vocab": a.vocab_size, "rope_scaling": a.rope_scaling is not None,
                     "tied": a.tie_embeddings})
    if opts.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'preset':<16}{'params':>10}{'dim':>7}{'layers':>7}{'heads':>6}{'kv':>4}{'ffn':>7}{'vocab':>8}")
    for r in rows:
        print(f"{r['preset']:<16}{r['params'] / 1e9:>9.3f}B{r['dim']:>7}{r['layers']:>7}{r['heads']:>6}"
              f"{r['kv_heads']:>4}{r['ffn']:>7}{r['vocab']:>8}")
    return 0


def _info(opts: argparse.Namespace) -> int:
    from dataclasses import asdict

    from l3_core.checkpoint import detect_format, load_checkpoint

    model = load_checkpoint(opts.checkpoint)
    print(json.dumps({"format": detect_format(opts.checkpoint), "params": model.num_params(),
                      "dtype": str(model.tok_embeddings.weight.dtype), "args": asdict(model.args)},
                     indent=2, default=str))
    return 0


def _convert(opts: argparse.Namespace) -> int:
    from l3_core.checkpoint import load_checkpoint, save_checkpoint

    model = load_checkpoint(opts.src)
    save_checkpoint(model, opts.dst, format=opts.format)
    print(f"wrote {opts.dst} ({opts.format} format)")
    return 0


def _generate(opts: argparse.Namespace) -> int:
    import torch

    from l3_core import kernels
    from l3_core.checkpoint import load_checkpoint
    from l3_core.model import generate
    from l3_core.tokenizer import ChatFormat, Message, Tokenizer, llama3_tokenizer_path

    torch.manual_seed(opts.seed)
    tok = Tokenizer.from_file(opts.tokenizer or llama3_tokenizer_path())
    model = load_checkpoint(opts.checkpoint)
    kernels.for_device(model)  # the lean CPU decoding step
    if opts.chat:
        ids = ChatFormat(tok).encode_dialog_prompt([Message("user", opts.prompt)])
    else:
        ids = tok.encode(opts.prompt, bos=True, eos=False)
    out = generate(model, [ids], opts.max_new_tokens, temperature=opts.temperature,
                   top_p=opts.top_p, stop_tokens=tok.stop_tokens, seed=opts.seed)[0]
    print(opts.prompt + tok.decode([t for t in out if t not in tok.stop_tokens]))
    return 0


def _add_common(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("presets", help="list model presets and their sizes")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_presets)

    p = sub.add_parser("info", help="describe a checkpoint (HF or l3 format)")
    p.add_argument("checkpoint")
    p.set_defaults(func=_info)

    p = sub.add_parser("convert", help="convert a checkpoint between HF and l3 formats")
    p.add_argument("src")
    p.add_argument("dst")
    p.add_argument("--format", choices=["hf", "l3"], required=True)
    p.set_defaults(func=_convert)

    p = sub.add_parser("generate", help="generate text from a checkpoint")
    p.add_argument("checkpoint")
    p.add_argument("--prompt", required=True)
    p.add_argument("--tokenizer", help="tokenizer file (default: the official Llama 3 one)")
    p.add_argument("--max-new-tokens", type=int, default=64)
    p.add_argument("--temperature", type=float, default=0.0)
    p.add_argument("--top-p", type=float, default=0.9)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--chat", action="store_true", help="wrap the prompt in the Llama 3.1 chat format")
    p.set_defaults(func=_generate)


def _add_train(sub: argparse._SubParsersAction) -> None:
    from l3_core.train import cli as train_cli  # light: the trainer imports torch on run

    p = sub.add_parser("train", help="train a model on Megatron-core (l3-core[train])")
    train_cli.add_arguments(p)
    p.set_defaults(func=train_cli.run)


COMMANDS: list[Callable[[argparse._SubParsersAction], None]] = [_add_common, _add_train]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="l3-core", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for add in COMMANDS:
        add(sub)
    opts = parser.parse_args(argv)
    try:
        return opts.func(opts)
    except L3Error as e:
        print(f"l3-core {opts.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

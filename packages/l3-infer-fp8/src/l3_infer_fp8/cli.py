"""The ``l3-infer-fp8`` command line: a list of commands (others add theirs to ``COMMANDS``).

l3-infer-fp8 generate --checkpoint DIR --prompt TEXT [--max-tokens N] [--temperature T] [--fp8]
l3-infer-fp8 quality  --checkpoint DIR --data FILE.jsonl [--out DIR] [--reward-model DIR]
l3-infer-fp8 quantize --checkpoint DIR --out DIR [--bound B] [--skip-layers 0,-1]
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

from l3_core.cli_runner import Command, run_cli
from l3_infer_fp8.errors import InferConfigError, InferInputError
from l3_infer_fp8.server.command import SERVE_COMMAND


def _tokenizer(opts: argparse.Namespace):
    from l3_core.tokenizer import Tokenizer

    path = Path(opts.tokenizer) if opts.tokenizer else Path(opts.checkpoint) / "tokenizer.model"
    if not path.is_file():
        raise InferInputError(f"{path}: tokenizer not found (pass --tokenizer FILE)")
    return Tokenizer.from_file(path)


def _skip_layers(text: str | None) -> tuple[int, ...] | None:
    if text is None:
        return None
    try:
        return tuple(int(p) for p in text.split(",") if p.strip())
    except ValueError:
        raise InferConfigError(
            f"--skip-layers: {text!r} is not a comma-separated list of layer indices"
        ) from None


def _recipe(opts: argparse.Namespace):
    from l3_infer_fp8.quant import Fp8Recipe
    from l3_infer_fp8.quant.rowwise import check_bound

    return Fp8Recipe(bound=check_bound(opts.bound), skip_layers=_skip_layers(opts.skip_layers))


def _add_model_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", required=True, help="HF, l3 or pre-quantised checkpoint dir")
    p.add_argument("--tokenizer", help="tokenizer file (default: DIR/tokenizer.model)")
    p.add_argument("--device", default="cpu", help="torch device (default: cpu)")
    p.add_argument("--backend", default="auto", help="FP8 GEMM: auto, scaled_mm or emulated")


def _add_recipe_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--bound",
        type=float,
        default=1200.0,
        help="upper bound of the per-token activation amax (default 1200)",
    )
    p.add_argument("--skip-layers", help="blocks left in bf16, e.g. '0,-1' (default: first, last)")


def _configure_generate(p: argparse.ArgumentParser) -> None:
    _add_model_arguments(p)
    _add_recipe_arguments(p)
    p.add_argument("--prompt", required=True, help="the user message")
    p.add_argument("--max-tokens", type=int, default=128, help="new tokens at most (128)")
    p.add_argument("--temperature", type=float, default=0.0, help="0 = greedy (default)")
    p.add_argument("--top-p", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--fp8", action="store_true", help="quantise the FFN GEMMs to FP8 at load")


def _generate(opts: argparse.Namespace) -> int:
    from l3_core.model import generate
    from l3_core.tokenizer import ChatFormat, Message
    from l3_infer_fp8.checkpoint import is_quantized, load_model

    tok = _tokenizer(opts)
    quantized = is_quantized(opts.checkpoint)
    model = load_model(
        opts.checkpoint,
        fp8=opts.fp8,
        device=opts.device,
        backend=opts.backend,
        recipe=None if quantized or not opts.fp8 else _recipe(opts),
    )
    ids = ChatFormat(tok).encode_dialog_prompt([Message("user", opts.prompt)])
    stops = tok.stop_tokens
    out = generate(
        model,
        [ids],
        opts.max_tokens,
        temperature=opts.temperature,
        top_p=opts.top_p,
        stop_tokens=stops,
        seed=opts.seed,
    )[0]
    print(tok.decode([t for t in out if t not in stops]))
    return 0


def _configure_quality(p: argparse.ArgumentParser) -> None:
    _add_model_arguments(p)
    _add_recipe_arguments(p)
    p.add_argument("--data", required=True, help="JSONL rows with 'text' and/or 'prompt'")
    p.add_argument("--out", help="directory for quality.json, sweep.md, exclusions, the PNG")
    p.add_argument("--max-tokens-per-row", type=int, default=512)
    p.add_argument(
        "--sweep-bounds",
        default="10,100,1200,10000",
        help="bounds of the sweep, comma-separated ('' for no sweep)",
    )
    p.add_argument("--reward-model", help="l3-align reward model dir (needs l3-align)")
    p.add_argument("--response-tokens", type=int, default=64)


def _quality(opts: argparse.Namespace) -> int:
    from l3_core.io import atomic_write, write_json
    from l3_infer_fp8 import quality
    from l3_infer_fp8.checkpoint import is_quantized, load_model

    if is_quantized(opts.checkpoint):
        raise InferInputError(
            f"{opts.checkpoint}: pre-quantised; quality needs the bf16 "
            "checkpoint it came from (quantised here with --bound/--skip-layers)"
        )
    try:
        bounds = [float(b) for b in opts.sweep_bounds.split(",") if b.strip()]
    except ValueError:
        raise InferConfigError(
            f"--sweep-bounds: {opts.sweep_bounds!r} is not a list of numbers"
        ) from None
    tok = _tokenizer(opts)
    reference = load_model(opts.checkpoint, device=opts.device)
    data = quality.read_text_set(
        opts.data,
        lambda t: tok.encode(t, bos=True, eos=False),
        min(opts.max_tokens_per_row, reference.args.max_seq_len),
    )
    candidate = load_model(
        opts.checkpoint, fp8=True, recipe=_recipe(opts), device=opts.device, backend=opts.backend
    )
    report: dict = {
        "checkpoint": str(opts.checkpoint),
        "bound": opts.bound,
        "agreement": quality.compare(reference, candidate, data.sequences).to_json(),
        "excluded_rows": len(data.exclusions),
    }
    agreement = report["agreement"]
    print(
        f"{agreement['tokens']} tokens: top-1 agreement {agreement['top1_agreement']:.4f}, "
        f"KL(bf16||fp8) mean {agreement['kl_mean']:.4g}, max {agreement['kl_max']:.4g}"
        f" ({len(data.exclusions)} rows excluded)"
    )
    if bounds:
        report["sweep"] = quality.sweep(reference, data.sequences, bounds, backend=opts.backend)
        print(quality.format_table(report["sweep"]))
    report["reward"] = _reward_part(opts, reference, candidate, data, tok)
    if opts.out:
        out = Path(opts.out)
        out.mkdir(parents=True, exist_ok=True)
        write_json(out / "quality.json", report)
        if bounds:
            with atomic_write(out / "sweep.md", encoding="utf-8") as f:
                f.write(quality.format_table(report["sweep"]) + "\n")
        if len(data.exclusions):
            data.exclusions.write(out / "exclusions.jsonl")
        if "scores" in report["reward"]:
            quality.plot_reward_distributions(report["reward"], out / "reward_scores.png")
    else:
        print(
            json.dumps(
                report["reward"]
                if "note" in report["reward"]
                else {k: report["reward"][k] for k in ("bf16", "fp8")}
            )
        )
    return 0


def _reward_part(opts: argparse.Namespace, reference, candidate, data, tok) -> dict:
    """Reward scores of both models' responses (Figure 26), or a note saying why not."""
    from l3_core.tokenizer import ChatFormat, Message
    from l3_infer_fp8 import quality

    if not opts.reward_model:
        note = "reward-score comparison skipped: no --reward-model given"
    elif (scorer := quality.load_reward_scorer(opts.reward_model)) is None:
        note = (
            "reward-score comparison skipped: l3-align is not installed "
            "(pip install l3-align to score responses with its reward model)"
        )
    else:
        result = quality.reward_comparison(
            reference,
            candidate,
            data.prompts,
            lambda p: ChatFormat(tok).encode_dialog_prompt([Message("user", p)]),
            tok.decode,
            scorer,
            opts.response_tokens,
            tok.stop_tokens,
        )
        for name in ("bf16", "fp8"):
            d = result[name]
            print(
                f"reward {name}: mean {d['mean']:.4g} std {d['std']:.4g} "
                f"median {d['median']:.4g} (n={d['n']})"
            )
        return result
    print(note)
    return {"note": note}


def _configure_quantize(p: argparse.ArgumentParser) -> None:
    _add_model_arguments(p)
    _add_recipe_arguments(p)
    p.add_argument("--out", required=True, help="the pre-quantised checkpoint to write")


def _quantize(opts: argparse.Namespace) -> int:
    from l3_infer_fp8.checkpoint import load_model, save_quantized

    model = load_model(opts.checkpoint, fp8=True, recipe=_recipe(opts), backend=opts.backend)
    tok = Path(opts.tokenizer) if opts.tokenizer else Path(opts.checkpoint) / "tokenizer.model"
    save_quantized(model, opts.out, tokenizer=tok if tok.is_file() else None)
    print(f"wrote {opts.out}")
    return 0


COMMANDS: list[Command] = [
    SERVE_COMMAND,
    Command(
        "generate",
        "complete one chat prompt (bf16, or FP8 with --fp8)",
        _configure_generate,
        _generate,
    ),
    Command(
        "quality",
        "FP8 vs bf16: top-1 agreement, KL, bound/skip sweep, reward scores",
        _configure_quality,
        _quality,
    ),
    Command("quantize", "write a pre-quantised FP8 checkpoint", _configure_quantize, _quantize),
]


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli("l3-infer-fp8", COMMANDS, argv, description=__doc__)


if __name__ == "__main__":
    raise SystemExit(main())

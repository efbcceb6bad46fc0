"""How far an FP8 model is from its bf16 original: per-token top-1 agreement and
KL(bf16 || fp8) on a text set (overall and by position, since FP8 accuracy can fall at long
inputs), the same over a sweep of bounds and skip rules, and reward-model scores of both
models' responses side by side (paper Figure 26) when a reward scorer is given."""

from __future__ import annotations

import copy
import itertools
import statistics
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from l3_core.errors import DependencyError
from l3_core.jsonl import Exclusions, iter_jsonl
from l3_core.model import Transformer, generate
from l3_infer_fp8.errors import InferInputError
from l3_infer_fp8.quant import DEFAULT_BOUND, Fp8Recipe, apply_recipe

# Skip rules of the sweep, by name: None is the paper's (first and last block in bf16).
SKIP_RULES: dict[str, tuple[int, ...] | None] = {
    "first+last": None,
    "none": (),
    "first": (0,),
    "last": (-1,),
}
SWEEP_BOUNDS = (10.0, 100.0, DEFAULT_BOUND, 1e4)
RewardScorer = Callable[[str, str], float]


@dataclass(frozen=True)
class Agreement:
    """Per-token agreement of a candidate model with a reference on the same token rows."""

    tokens: int
    top1_agreement: float
    kl_mean: float
    kl_max: float
    by_position: tuple[dict[str, float], ...]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class TextSet:
    """Token rows for agreement, prompts for responses, and the rows excluded while reading."""

    sequences: list[list[int]]
    prompts: list[str]
    exclusions: Exclusions


def read_text_set(path: str | Path, encode: Callable[[str], list[int]], max_tokens: int) -> TextSet:
    """Rows of ``{"text": ...}`` (agreement) and/or ``{"prompt": ...}`` (responses); a row
    with neither, or with text that encodes to fewer than two tokens, goes to the exclusions."""
    exclusions = Exclusions()
    sequences: list[list[int]] = []
    prompts: list[str] = []
    for line, row in iter_jsonl(path, on_bad_row=exclusions.add):
        text, prompt = row.get("text"), row.get("prompt")
        if not isinstance(text, str) and not isinstance(prompt, str):
            exclusions.reject(path, line, "no string field 'text' or 'prompt'")
            continue
        if isinstance(prompt, str):
            prompts.append(prompt)
        if isinstance(text, str):
            ids = encode(text)[:max_tokens]
            if len(ids) < 2:
                exclusions.reject(path, line, f"field 'text' has {len(ids)} token(s), need 2")
                continue
            sequences.append(ids)
    return TextSet(sequences, prompts, exclusions)


@torch.inference_mode()
def compare(
    reference: Transformer,
    candidate: Transformer,
    sequences: Sequence[Sequence[int]],
    position_buckets: int = 4,
) -> Agreement:
    """Top-1 agreement and KL(reference || candidate) of next-token distributions, per token
    of ``sequences`` (each run alone, so no padding enters), overall and by position."""
    if not sequences:
        raise InferInputError("no token rows to compare (every row was excluded?)")
    longest = max(len(s) for s in sequences)
    edges = [round(longest * i / position_buckets) for i in range(position_buckets + 1)]
    device = reference.tok_embeddings.weight.device
    agree, kl, pos = [], [], []
    for seq in sequences:
        tokens = torch.tensor([list(seq)], device=device)
        ref_logits, cand_logits = reference(tokens)[0], candidate(tokens)[0]
        agree.append(ref_logits.argmax(-1) == cand_logits.argmax(-1))
        kl.append(
            torch.cat(
                [_kl(r, c) for r, c in zip(ref_logits.split(_KL_ROWS), cand_logits.split(_KL_ROWS))]
            )
        )
        pos.append(torch.arange(len(seq), device=device))
    a, k, p = torch.cat(agree).float(), torch.cat(kl), torch.cat(pos)
    buckets = []
    for lo, hi in itertools.pairwise(edges):
        sel = (p >= lo) & (p < hi)
        if bool(sel.any()):
            buckets.append(
                {
                    "from": lo,
                    "to": hi,
                    "tokens": int(sel.sum()),
                    "top1_agreement": float(a[sel].mean()),
                    "kl_mean": float(k[sel].mean()),
                }
            )
    return Agreement(
        int(a.numel()), float(a.mean()), float(k.mean()), float(k.max()), tuple(buckets)
    )


_KL_ROWS = 64  # float64 rows of a 128K vocabulary at a time: 64 MiB per tensor


def _kl(ref_logits: torch.Tensor, cand_logits: torch.Tensor) -> torch.Tensor:
    """KL(ref || cand) per row, in float64: FP8's KLs are small enough that float32
    cancellation would be a visible part of them."""
    ref = F.log_softmax(ref_logits.double(), dim=-1)
    cand = F.log_softmax(cand_logits.double(), dim=-1)
    return (ref.exp() * (ref - cand)).sum(-1).clamp(min=0)


def sweep(
    reference: Transformer,
    sequences: Sequence[Sequence[int]],
    bounds: Iterable[float] = SWEEP_BOUNDS,
    skip_rules: Mapping[str, tuple[int, ...] | None] = SKIP_RULES,
    backend: str = "auto",
) -> list[dict[str, Any]]:
    """One row per (bound, skip rule): which layers were quantised and the agreement figures."""
    rows = []
    n_layers = len(reference.layers)
    for bound in bounds:
        for rule, skip in skip_rules.items():
            recipe = Fp8Recipe(bound=float(bound), skip_layers=skip)
            candidate = copy.deepcopy(reference)
            apply_recipe(candidate, recipe, backend)
            result = compare(reference, candidate, sequences)
            skipped = set(recipe.skipped(n_layers))
            rows.append(
                {
                    "bound": float(bound),
                    "skip": rule,
                    "quantized_layers": [i for i in range(n_layers) if i not in skipped],
                    "top1_agreement": result.top1_agreement,
                    "kl_mean": result.kl_mean,
                    "kl_max": result.kl_max,
                }
            )
    return rows


def format_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """The sweep as a Markdown table."""
    lines = [
        "| bound | skipped | quantised layers | top-1 agreement | KL mean | KL max |",
        "|---:|---|---|---:|---:|---:|",
    ]
    for r in rows:
        layers = ",".join(map(str, r["quantized_layers"])) or "-"
        lines.append(
            f"| {r['bound']:g} | {r['skip']} | {layers} | {r['top1_agreement']:.4f} "
            f"| {r['kl_mean']:.3g} | {r['kl_max']:.3g} |"
        )
    return "\n".join(lines)


def distribution(scores: Sequence[float]) -> dict[str, float]:
    """Mean, standard deviation and quartiles of ``scores``."""
    q = (
        statistics.quantiles(scores, n=4, method="inclusive")
        if len(scores) > 1
        else [scores[0]] * 3
    )
    return {
        "n": len(scores),
        "mean": statistics.fmean(scores),
        "std": statistics.pstdev(scores),
        "min": min(scores),
        "p25": q[0],
        "median": q[1],
        "p75": q[2],
        "max": max(scores),
    }


def reward_comparison(
    reference: Transformer,
    candidate: Transformer,
    prompts: Sequence[str],
    encode_prompt: Callable[[str], list[int]],
    decode: Callable[[Sequence[int]], str],
    scorer: RewardScorer,
    max_new_tokens: int = 64,
    stop_tokens: Iterable[int] = (),
) -> dict[str, Any]:
    """Greedy responses of both models to each prompt, scored by ``scorer(prompt, response)``:
    the two score distributions side by side, and the scores themselves."""
    if not prompts:
        raise InferInputError("no prompts for the reward comparison (rows need a 'prompt' field)")
    stops = set(stop_tokens)
    scores: dict[str, list[float]] = {"bf16": [], "fp8": []}
    for prompt in prompts:
        ids = encode_prompt(prompt)
        for name, model in (("bf16", reference), ("fp8", candidate)):
            out = generate(model, [ids], max_new_tokens, stop_tokens=stops)[0]
            scores[name].append(float(scorer(prompt, decode([t for t in out if t not in stops]))))
    return {
        "bf16": distribution(scores["bf16"]),
        "fp8": distribution(scores["fp8"]),
        "scores": scores,
    }


def plot_reward_distributions(result: Mapping[str, Any], path: str | Path) -> Path:
    """Histograms of the bf16 and fp8 reward scores on shared bins, as a PNG."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:
        raise DependencyError(
            f"the reward-score plot needs matplotlib: pip install 'l3-infer-fp8[plot]' ({e})"
        ) from None
    from l3_core.io import atomic_path

    scores = result["scores"]
    lo = min(min(scores["bf16"]), min(scores["fp8"]))
    hi = max(max(scores["bf16"]), max(scores["fp8"]))
    bins = torch.linspace(lo, hi if hi > lo else lo + 1, 21).tolist()
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.hist(scores["bf16"], bins=bins, alpha=0.6, label="bf16")
    ax.hist(scores["fp8"], bins=bins, alpha=0.6, label="fp8 (row-wise)")
    ax.set_xlabel("reward score")
    ax.set_ylabel("responses")
    ax.set_title("Reward scores of bf16 and FP8 responses")
    ax.legend()
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
    return path


def load_reward_scorer(path: str | Path) -> RewardScorer | None:
    """The scorer of an l3-align reward model at ``path``, or None when l3-align is not
    installed (it is optional: ``l3_align.reward.load_reward_model(path).score(prompt,
    response) -> float``)."""
    try:
        from l3_align.reward import load_reward_model  # type: ignore[import-not-found]
    except ImportError:
        return None
    return load_reward_model(path).score

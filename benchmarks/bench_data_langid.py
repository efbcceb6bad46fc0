"""Language-ID accuracy per language: ``lid.176.ftz`` given the raw text (newlines made
spaces, nothing else) against l3-data's ``LanguageIdentifier`` (its preprocessing in front of
the same model), and datatrove's ``FT176LID`` with the same model file when datatrove is
installed (it would download the larger ``lid.176.bin``; this machine has no route to it).

The shared dev set is read at run time as a final check only; preprocessing is chosen on a
held-out set built from PyPI wheels (``benchmarks/_langid_heldout.py``), passed as
``--heldout``:

    python benchmarks/bench_data_langid.py [--eval ../shared/eval] [--heldout heldout.jsonl]
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

from l3_data.steps.langid import LanguageIdentifier, default_model_path


def raw_model(texts: list[str]) -> list[str]:
    import fasttext

    fasttext.FastText.eprint = lambda *a, **k: None
    model = fasttext.load_model(str(default_model_path()))
    labels, _ = model.predict([t.replace("\n", " ") for t in texts], k=1)
    return [lab[0].removeprefix("__label__") for lab in labels]


def datatrove_model(texts: list[str]) -> list[str] | None:
    try:
        from datatrove.data import Document
        from datatrove.utils.lid import FT176LID
        from fasttext.FastText import _FastText
    except ImportError as e:
        print(f"datatrove column left out: {e} (pip install 'l3-data[bench]')")
        return None
    lid = FT176LID()
    lid._model = _FastText(str(default_model_path()))
    return [lid.predict(Document(text=t, id=str(i)))[0][0] for i, t in enumerate(texts)]


def compare(name: str, rows: list[dict], systems: dict[str, Callable]) -> None:
    texts = [r["text"] for r in rows]
    preds, secs = {}, {}
    for sys_name, fn in systems.items():
        t0 = time.perf_counter()
        out = fn(texts)
        secs[sys_name] = time.perf_counter() - t0
        if out is not None:
            preds[sys_name] = out
    per: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for i, r in enumerate(rows):
        per[r["lang"]]["n"] += 1
        for sys_name, out in preds.items():
            per[r["lang"]][sys_name] += out[i] == r["lang"]
    print(f"\n{name}: {len(rows)} sentences")
    print("language  " + "  ".join(f"{s:>9}" for s in preds) + "  (n)")
    losses = []
    for lang in sorted(per):
        p = per[lang]
        print(f"{lang:8}  " + "  ".join(f"{p[s] / p['n']:9.3f}" for s in preds) + f"  ({p['n']})")
        if p["l3-data"] < p["raw model"]:
            losses.append(lang)
    for sys_name, out in preds.items():
        acc = sum(a == r["lang"] for a, r in zip(out, rows)) / len(rows)
        print(f"overall accuracy, {sys_name}: {acc:.4f} ({len(rows) / secs[sys_name]:.0f} docs/s)")
    print(f"languages where l3-data loses against the raw model: {losses or 'none'}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument(
        "--eval", type=Path, default=Path(__file__).resolve().parents[1] / ".." / "shared" / "eval"
    )
    ap.add_argument("--heldout", type=Path, help="held-out set (benchmarks/_langid_heldout.py)")
    args = ap.parse_args()
    lid = LanguageIdentifier()
    systems = {
        "raw model": raw_model,
        "l3-data": lambda texts: [lang for lang, _ in lid.predict(texts)],
        "datatrove": datatrove_model,
    }
    sets = [("langid_dev (final check)", args.eval / "langid_dev.jsonl")]
    if args.heldout:
        sets.insert(0, ("held-out (PyPI wheels)", args.heldout))
    for name, path in sets:
        compare(name, [json.loads(x) for x in path.read_text().splitlines()], systems)


if __name__ == "__main__":
    main()

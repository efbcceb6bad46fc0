"""Language-ID accuracy per language on the shared dev set, l3-data's batched identifier
against datatrove's ``FT176LID`` given the same ``lid.176.ftz`` (datatrove would download the
larger ``lid.176.bin``; this machine has no route to it), with throughput.

    python benchmarks/bench_data_langid.py [--eval ../shared/eval]
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict
from pathlib import Path

from l3_data.steps.langid import LanguageIdentifier, default_model_path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument(
        "--eval", type=Path, default=Path(__file__).resolve().parents[1] / ".." / "shared" / "eval"
    )
    args = ap.parse_args()
    rows = [json.loads(x) for x in (args.eval / "langid_dev.jsonl").read_text().splitlines()]
    texts = [r["text"] for r in rows]

    lid = LanguageIdentifier()
    t0 = time.perf_counter()
    ours = [lang for lang, _ in lid.predict(texts)]
    ours_s = time.perf_counter() - t0

    from datatrove.data import Document
    from datatrove.utils.lid import FT176LID
    from fasttext.FastText import _FastText

    peer_lid = FT176LID()
    peer_lid._model = _FastText(str(default_model_path()))
    t0 = time.perf_counter()
    peer = [peer_lid.predict(Document(text=t, id=str(i)))[0][0] for i, t in enumerate(texts)]
    peer_s = time.perf_counter() - t0

    per = defaultdict(lambda: [0, 0, 0])
    for r, a, b in zip(rows, ours, peer):
        per[r["lang"]][0] += a == r["lang"]
        per[r["lang"]][1] += b == r["lang"]
        per[r["lang"]][2] += 1
    print("language  l3-data  datatrove  (n)")
    for lang in sorted(per):
        a, b, n = per[lang]
        print(f"{lang:8}  {a / n:7.3f}  {b / n:9.3f}  ({n})")
    acc_a = sum(a == r["lang"] for r, a in zip(rows, ours)) / len(rows)
    acc_b = sum(b == r["lang"] for r, b in zip(rows, peer)) / len(rows)
    print(f"overall accuracy: l3-data {acc_a:.4f}, datatrove {acc_b:.4f} ({len(rows)} sentences)")
    print(
        f"throughput: l3-data {len(rows) / ours_s:.0f} docs/s, datatrove {len(rows) / peer_s:.0f} "
        f"docs/s, ratio {peer_s / ours_s:.2f}x"
    )


if __name__ == "__main__":
    main()

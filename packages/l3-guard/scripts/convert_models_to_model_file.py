"""One-off: rewrite the shipped models from the old l3-guard npz layout to l3_core.model_file.

The arrays are copied as they are (same dtypes, same values); only the header moves from the
``meta`` array of the old layout to the model file's JSON header. Run once from the package
directory: ``python scripts/convert_models_to_model_file.py src/l3_guard/models/*.npz``.
"""

from __future__ import annotations

import json
import sys

import numpy as np

from l3_core.model_file import ModelFile, save_model_file
from l3_guard.text_model import MODEL_KIND

OLD_FORMAT = "l3-guard-hashed-linear/1"
OWN_KEYS = ("format", "labels", "kind", "features", "idf_default")


def convert(path: str) -> None:
    with np.load(path, allow_pickle=False) as z:
        old = json.loads(bytes(z["meta"]).decode())
        arrays = {name: z[name] for name in z.files if name != "meta"}
    if old.get("format") != OLD_FORMAT:
        raise SystemExit(f"{path}: format {old.get('format')!r}, expected {OLD_FORMAT!r}")
    meta = {
        "labels": old["labels"],
        "head": old["kind"],
        "features": old["features"],
        "idf_default": old["idf_default"],
        "training": {k: v for k, v in old.items() if k not in OWN_KEYS},
    }
    save_model_file(path, ModelFile(MODEL_KIND, meta, arrays))
    print(f"{path}: converted ({', '.join(sorted(arrays))})")


if __name__ == "__main__":
    for p in sys.argv[1:]:
        convert(p)

"""The optional extras of l3-data and the modules each one brings.

The base install holds what the readers, dedup steps and heuristic filters need. A step,
input format or executor that needs more declares the extra by name; the pipeline checks it
when the file is loaded, so a missing package is one line naming the step and the
``pip install`` command, not an ``ImportError`` in a worker an hour into the run.
"""

from __future__ import annotations

import importlib.util

from l3_data.errors import MissingExtraError

# extra name -> the import names of the packages it installs (see pyproject.toml).
EXTRAS: dict[str, tuple[str, ...]] = {
    "html": ("trafilatura", "lxml_html_clean"),
    "langid": ("fasttext",),
    "classify": ("sklearn", "fasttext"),
    "parquet": ("pyarrow",),
    "tokenize": ("tiktoken", "sentencepiece"),
    "ray": ("ray",),
    "plot": ("matplotlib",),
    "pii": ("phonenumbers",),
    "memorisation": ("torch", "safetensors"),
}


def missing_modules(extra: str) -> list[str]:
    """The modules of ``extra`` that cannot be imported here."""
    return [m for m in EXTRAS[extra] if importlib.util.find_spec(m) is None]


def require_extra(extra: str, what: str) -> None:
    """Raise :class:`MissingExtraError` unless every module of ``extra`` is importable.

    ``what`` names the user of the extra in the message (e.g. ``p.toml: steps[2] (langid)``).
    """
    missing = missing_modules(extra)
    if missing:
        raise MissingExtraError(
            f"{what} needs the {extra!r} extra (missing: {', '.join(missing)}): "
            f"pip install 'l3-data[{extra}]'"
        )

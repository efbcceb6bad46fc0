"""Shared helpers: where the shared eval data and reference facts live (read at run time)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

# <repo root>/../shared, i.e. next to the checkout; never copied into the repo.
SHARED = Path(__file__).resolve().parents[3].parent / "shared"
CHINCHILLA_CSV = SHARED / "eval" / "chinchilla_fig4_points.csv"
SCALING_FACTS = SHARED / "reference" / "scaling_laws.json"


@pytest.fixture
def chinchilla_csv() -> Path:
    if not CHINCHILLA_CSV.exists():
        pytest.skip(f"eval data absent: {CHINCHILLA_CSV} (the shared folder beside the checkout)")
    return CHINCHILLA_CSV


@pytest.fixture
def scaling_facts() -> dict:
    if not SCALING_FACTS.exists():
        pytest.skip(f"reference facts absent: {SCALING_FACTS}")
    return json.loads(SCALING_FACTS.read_text())


def write_csv(path: Path, header: list[str], rows) -> Path:
    lines = [",".join(header)] + [",".join(repr(float(v)) for v in row) for row in rows]
    path.write_text("\n".join(lines) + "\n")
    return path

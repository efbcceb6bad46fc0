"""Package versions from the installed metadata (one source of truth: each pyproject.toml)."""

from __future__ import annotations

from importlib import metadata


def package_version(distribution: str) -> str:
    """The installed version of ``distribution`` (e.g. ``"l3-core"``); ``"0+unknown"`` when it
    runs from a source tree that was never installed."""
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "0+unknown"

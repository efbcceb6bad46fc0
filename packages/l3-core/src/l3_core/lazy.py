"""Names a package exports without importing them: heavy modules load on first use.

``__getattr__ = lazy_attributes("l3_x", {"Model": "l3_x.model"})`` in a package's
``__init__.py`` keeps ``import l3_x`` light (no torch until a model is asked for), so the
torch-free parts of a package stay usable without its heavy extras.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

from l3_core.errors import DependencyError


def lazy_attributes(
    package: str, names: Mapping[str, str], extra: str | None = None
) -> Callable[[str], Any]:
    """A module ``__getattr__`` that imports ``names[name]`` (a module path) on first access.

    With ``extra`` (e.g. ``"l3-core[model]"``), a failed import becomes a
    :class:`DependencyError` naming the extra to install.
    """

    def __getattr__(name: str) -> Any:
        if name not in names:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        try:
            module = importlib.import_module(names[name])
        except ImportError as e:
            if extra is None:
                raise
            raise DependencyError(
                f"{package}.{name} needs the {extra.split('[')[-1].rstrip(']')} extra: "
                f"pip install '{extra}' ({e})"
            ) from e
        return getattr(module, name)

    return __getattr__

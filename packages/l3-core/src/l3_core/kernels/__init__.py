"""Opt-in speed-ups for :mod:`l3_core.model`, behind one switch.

``apply(model, "cpu")`` turns the model's modules into their kernel subclasses in place (the
same parameters and state-dict names; training, checkpoints and optimizers see no change);
``remove(model)`` turns them back. Every kernel is tested equal to the plain path it replaces
(``tests/kernels/``). Backends are a registry keyed by name; :func:`for_device` applies the one
registered for the model's device, where there is one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from l3_core.errors import InputError
from l3_core.kernels import cpu, swap


@dataclass(frozen=True)
class Backend:
    """``modules``: plain module class -> kernel subclass; ``release``: drops cached copies."""

    modules: dict[type[nn.Module], type[nn.Module]]
    release: Callable[[nn.Module], None]


BACKENDS: dict[str, Backend] = {"cpu": Backend(cpu.MODULES, cpu.release)}


def apply(model: nn.Module, backend: str) -> nn.Module:
    """Run ``model`` with ``backend``'s kernels (after any previous backend is removed);
    returns ``model``. Apply after the model's structure is final: modules added later run
    their plain path."""
    if backend not in BACKENDS:
        raise InputError(f"unknown kernels backend {backend!r}; known: {sorted(BACKENDS)}")
    remove(model)
    swap.swap(model, BACKENDS[backend].modules, backend)
    return model


def remove(model: nn.Module) -> nn.Module:
    """Run ``model`` on the plain path again, dropping its kernels' cached weight copies."""
    name = active(model)
    if name is not None:
        BACKENDS[name].release(model)
    swap.restore(model)
    return model


def active(model: nn.Module) -> str | None:
    """The backend ``model`` runs, None for the plain path."""
    return swap.backend_of(model)


def for_device(model: nn.Module) -> str | None:
    """Apply the backend named after the device of ``model``'s parameters if one is registered
    (the CPU's); returns its name, or None where the plain path stays."""
    param = next(model.parameters(), None)
    device = param.device.type if param is not None else None
    if device not in BACKENDS:
        return None
    apply(model, device)
    return device


__all__ = ["BACKENDS", "Backend", "active", "apply", "for_device", "remove"]

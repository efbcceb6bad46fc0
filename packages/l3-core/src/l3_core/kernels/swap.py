"""Turning a model's modules into their kernel subclasses in place, and back.

Each module's class is replaced by a class derived from the kernel subclass and the module's
own class (``Attention[cpu]``: ``CpuAttention`` first, then ``Attention`` or the user's
subclass of it), the way ``torch.nn.utils.parametrize`` swaps classes. The module keeps its
parameters, buffers, hooks and state-dict names; only how it computes changes.
"""

from __future__ import annotations

from torch import nn

_CLASSES: dict[tuple[type, type, str], type] = {}


def _kernel_class(cls: type, kernel: type, backend: str) -> type:
    key = (cls, kernel, backend)
    if key not in _CLASSES:
        body = {"plain_class": cls, "kernel_backend": backend, "__module__": cls.__module__}
        _CLASSES[key] = type(f"{cls.__name__}[{backend}]", (kernel, cls), body)
    return _CLASSES[key]


def plain_class(module: nn.Module) -> type:
    """The class ``module`` has without kernels."""
    return type(module).__dict__.get("plain_class", type(module))


def backend_of(module: nn.Module) -> str | None:
    """The kernel backend ``module`` runs, None for the plain path."""
    return type(module).__dict__.get("kernel_backend")


def swap(model: nn.Module, kernels: dict[type[nn.Module], type[nn.Module]], backend: str) -> None:
    """Give every module of ``model`` that is an instance of a key of ``kernels`` that kernel."""
    for module in model.modules():
        cls = plain_class(module)
        kernel = next((k for base, k in kernels.items() if issubclass(cls, base)), None)
        if kernel is not None:
            module.__class__ = _kernel_class(cls, kernel, backend)


def restore(model: nn.Module) -> None:
    """Give every module of ``model`` its plain class back."""
    for module in model.modules():
        module.__class__ = plain_class(module)

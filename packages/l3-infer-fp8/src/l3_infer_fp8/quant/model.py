"""Which modules of a Llama 3 model run in FP8: the paper's selection (section 6.2).

Only the feed-forward GEMMs (``w1``, ``w3``, ``w2``) of each transformer block, except the
first and the last block; attention, embeddings, norms and the output head stay as they are
(bf16). This is llama-models' fp8 loader's rule too.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from torch import nn

from l3_infer_fp8.errors import InferConfigError, InferModelError
from l3_infer_fp8.quant.linear import Fp8RowwiseLinear
from l3_infer_fp8.quant.rowwise import DEFAULT_BOUND, check_bound

FFN_PROJECTIONS = ("w1", "w3", "w2")


@dataclass(frozen=True)
class Fp8Recipe:
    """What :func:`quantize_model` does: the activation bound and the blocks left in bf16
    (``None``: the first and the last)."""

    bound: float = DEFAULT_BOUND
    skip_layers: tuple[int, ...] | None = None
    projections: tuple[str, ...] = field(default=FFN_PROJECTIONS)

    def skipped(self, n_layers: int) -> tuple[int, ...]:
        """The indices of the blocks left unquantised in a model of ``n_layers`` blocks."""
        if self.skip_layers is None:
            return tuple(sorted({0, n_layers - 1}))
        out = set()
        for i in self.skip_layers:
            j = i + n_layers if i < 0 else i
            if not 0 <= j < n_layers:
                raise InferConfigError(
                    f"skip_layers: layer {i} is outside a model of {n_layers} layers"
                )
            out.add(j)
        return tuple(sorted(out))


def quantize_model(
    model: nn.Module,
    bound: float = DEFAULT_BOUND,
    skip_layers: Iterable[int] | None = None,
    backend: str = "auto",
) -> list[str]:
    """Replace the FFN linears of every block outside ``skip_layers`` (default: the first and
    the last) by :class:`Fp8RowwiseLinear` in place; return the replaced modules' names."""
    recipe = Fp8Recipe(check_bound(bound), None if skip_layers is None else tuple(skip_layers))
    return apply_recipe(model, recipe, backend)


def apply_recipe(model: nn.Module, recipe: Fp8Recipe, backend: str = "auto") -> list[str]:
    """:func:`quantize_model` from a recipe."""
    layers = _layers(model)
    skipped = set(recipe.skipped(len(layers)))
    replaced: list[str] = []
    for i, layer in enumerate(layers):
        if i in skipped:
            continue
        ffn = layer.feed_forward
        for proj in recipe.projections:
            name = f"layers.{i}.feed_forward.{proj}"
            linear = getattr(ffn, proj)
            if not isinstance(linear, nn.Linear):
                raise InferModelError(
                    f"{name} is {type(linear).__name__}, not nn.Linear: "
                    "is the model already quantised?"
                )
            setattr(
                ffn,
                proj,
                Fp8RowwiseLinear.from_linear(linear, recipe.bound, backend, name=f"{name}.weight"),
            )
            replaced.append(name)
    return replaced


def quantized_modules(model: nn.Module) -> list[str]:
    """Names of the model's :class:`Fp8RowwiseLinear` modules."""
    return [n for n, m in model.named_modules() if isinstance(m, Fp8RowwiseLinear)]


def _layers(model: nn.Module) -> Sequence[nn.Module]:
    layers = getattr(model, "layers", None)
    if not isinstance(layers, nn.ModuleList):
        raise InferModelError(
            f"{type(model).__name__} has no .layers ModuleList: expected an l3-core Transformer"
        )
    return layers

"""Reference log-probs: computed once, cached beside the data, refused when stale.

DPO needs the reference model's log-prob of every chosen and rejected response. They are
computed in one pass before training (so the reference model is never in memory while the
policy trains) and stored in safetensors with two fingerprints: the reference model's weights
and the encoded data (tokens and the masks the sums run over, so the tokenizer, truncation and
``mask_special_tokens`` are covered). A later run reuses the file only when both match; when
either changed it stops with the reason, rather than training against stale numbers.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import safe_open, save_file

from l3_align.data.encode import EncodedPair
from l3_align.data.packing import pack, place_groups
from l3_align.dpo.objective import COLUMNS, logp_mask, pair_items, pair_logps, token_nll
from l3_align.errors import AlignInputError
from l3_align.train.plain import TokenLosses, one_process
from l3_core.io import atomic_path
from l3_core.train.objective import split_rows_and_columns

log = logging.getLogger(__name__)
FORMAT = "l3-align-reference-logps"
VERSION = "1"


def default_cache_path(data: Path) -> Path:
    return data.with_name(data.name + ".reference-logps.safetensors")


def model_fingerprint(model: torch.nn.Module) -> str:
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        t = t.detach().cpu().contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)};".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:32]


def data_fingerprint(pairs: Sequence[EncodedPair], mask_special: bool) -> str:
    h = hashlib.sha256(f"{len(pairs)}:{mask_special};".encode())
    for p in pairs:
        for seq in (p.chosen, p.rejected):
            h.update(seq.tokens.tobytes())
            h.update(np.packbits(logp_mask(seq, mask_special)).tobytes())
            h.update(b"|")
    return h.hexdigest()[:32]


@torch.no_grad()
def compute_reference_logps(
    model: torch.nn.Module,
    pairs: Sequence[EncodedPair],
    mask_special: bool,
    seq_len: int,
    pad_id: int,
    batch_rows: int = 16,
) -> np.ndarray:
    """[n, 2] float64: each pair's reference log-prob of (chosen, rejected)."""
    groups = [pair_items(p, mask_special) for p in pairs]
    layout = place_groups([sum(len(s.tokens) for s in g) for g in groups], seq_len)
    rows = pack(groups, seq_len, pad_id)
    net = TokenLosses(model).eval()
    out = np.full((len(pairs), 2), np.nan)
    for r0 in range(0, rows.n_rows, batch_rows):
        chunk = rows.take(slice(r0, r0 + batch_rows))
        (micro,) = split_rows_and_columns(chunk, one_process(chunk.n_rows), columns=COLUMNS)
        x, _ = pair_logps(micro, token_nll(net, micro))
        per_row = x.policy_chosen.numel() // chunk.n_rows
        for i in range(chunk.n_rows):
            for local, g in enumerate(layout[r0 + i]):
                k = i * per_row + local
                out[g] = (float(x.policy_chosen[k]), float(x.policy_rejected[k]))
    return out


def save_reference_logps(path: Path, values: np.ndarray, model_fp: str, data_fp: str) -> None:
    t = torch.from_numpy(values)
    meta = {
        "format": FORMAT,
        "version": VERSION,
        "model": model_fp,
        "data": data_fp,
        "pairs": str(len(values)),
    }
    with atomic_path(path) as tmp:
        save_file(
            {"chosen": t[:, 0].contiguous(), "rejected": t[:, 1].contiguous()},
            str(tmp),
            metadata=meta,
        )


def load_reference_logps(path: Path, model_fp: str, data_fp: str) -> np.ndarray:
    """The cached values; :class:`AlignInputError` naming what changed when they are stale."""
    try:
        with safe_open(str(path), "pt") as f:
            meta = f.metadata() or {}
            chosen, rejected = f.get_tensor("chosen"), f.get_tensor("rejected")
    except (SafetensorError, OSError, KeyError) as e:
        raise AlignInputError(f"{path}: not a reference log-prob file ({e})") from None
    if meta.get("format") != FORMAT or meta.get("version") != VERSION:
        raise AlignInputError(
            f"{path}: format {meta.get('format')!r} v{meta.get('version')}, "
            f"expected {FORMAT!r} v{VERSION}"
        )
    advice = (
        "delete it, set dpo.reference_cache to another path, or set dpo.recompute_reference=true"
    )
    for key, now, what in (("model", model_fp, "reference model"), ("data", data_fp, "data")):
        if meta.get(key) != now:
            raise AlignInputError(
                f"{path}: cached reference log-probs belong to another {what} (fingerprint "
                f"{meta.get(key)}, now {now}); {advice}"
            )
    return torch.stack([chosen, rejected], 1).numpy()


def reference_logps(
    model: torch.nn.Module,
    pairs: Sequence[EncodedPair],
    cache: Path,
    mask_special: bool,
    seq_len: int,
    pad_id: int,
    batch_rows: int = 16,
    recompute: bool = False,
) -> np.ndarray:
    """Cached values when fresh, else computed with ``model`` and cached."""
    model_fp, data_fp = model_fingerprint(model), data_fingerprint(pairs, mask_special)
    if cache.is_file() and not recompute:
        log.info("reference log-probs from %s", cache)
        return load_reference_logps(cache, model_fp, data_fp)
    values = compute_reference_logps(model, pairs, mask_special, seq_len, pad_id, batch_rows)
    save_reference_logps(cache, values, model_fp, data_fp)
    log.info("reference log-probs of %d pairs written to %s", len(pairs), cache)
    return values

"""The speech checkpoint directory: everything ``transcribe`` needs, no pickle.

```
checkpoint/
  speech.json            format, encoder and adapter args, task, language
  speech.safetensors     encoder + adapter weights
  lm/                    the frozen language model (l3-core's l3 format)
  tokenizer.model        its tokenizer
```
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path
from typing import Any

import torch

from l3_core import load_checkpoint, save_checkpoint
from l3_core.errors import L3Error
from l3_core.io import atomic_path
from l3_core.tokenizer import Tokenizer
from l3_speech.adapter.adapter import AdapterArgs, SpeechAdapter
from l3_speech.asr.model import SpeechLM
from l3_speech.encoder.conformer import ConformerEncoder
from l3_speech.encoder.presets import EncoderArgs
from l3_speech.errors import SpeechModelFileError
from l3_speech.prompts import placeholder_id

FORMAT = "l3-speech.checkpoint"
VERSION = 1


def save_speech_checkpoint(
    path: Path, model: SpeechLM, tokenizer: Tokenizer, meta: dict[str, Any]
) -> Path:
    from safetensors.torch import save_file

    if tokenizer.path is None:
        raise SpeechModelFileError("the tokenizer has no file to store with the checkpoint")
    with atomic_path(path) as tmp:
        tmp.mkdir()
        header = {
            "format": FORMAT,
            "version": VERSION,
            "encoder": dataclasses.asdict(model.encoder.args),
            "adapter": dataclasses.asdict(model.adapter.args),
            **meta,
        }
        (tmp / "speech.json").write_text(json.dumps(header, indent=2) + "\n")
        save_file(
            {k: v.contiguous() for k, v in model.state_dict().items()},
            str(tmp / "speech.safetensors"),
        )
        save_checkpoint(model.lm, tmp / "lm", format="l3")
        shutil.copyfile(tokenizer.path, tmp / "tokenizer.model")
    return path


def load_speech_checkpoint(path: Path) -> tuple[SpeechLM, Tokenizer, dict[str, Any]]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    header_path = path / "speech.json"
    if not header_path.is_file():
        raise SpeechModelFileError(f"{path}: not a speech checkpoint (no speech.json)")
    try:
        header = json.loads(header_path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as e:
        raise SpeechModelFileError(f"{header_path}: not UTF-8 ({e.reason})") from None
    except json.JSONDecodeError as e:
        raise SpeechModelFileError(f"{header_path}: invalid JSON ({e.msg})") from None
    if not isinstance(header, dict):
        raise SpeechModelFileError(f"{header_path}: expected a JSON object")
    if header.get("format") != FORMAT or header.get("version") != VERSION:
        raise SpeechModelFileError(
            f"{header_path}: format {header.get('format')!r} version {header.get('version')!r}, "
            f"expected {FORMAT!r} version {VERSION}"
        )
    try:
        enc_args = EncoderArgs(**header["encoder"])
        ad_args = AdapterArgs(**header["adapter"])
    except (KeyError, TypeError) as e:
        raise SpeechModelFileError(f"{header_path}: bad encoder/adapter args ({e})") from None
    try:
        tok = Tokenizer.from_file(path / "tokenizer.model")
        lm = load_checkpoint(path / "lm", dtype=torch.float32)
    except L3Error as e:
        raise SpeechModelFileError(f"{path}: {e}") from None
    encoder = ConformerEncoder(enc_args)
    model = SpeechLM(
        encoder,
        SpeechAdapter(ad_args, enc_args.dim, lm.args.dim),
        lm,
        placeholder_id(tok),
        tok.pad_id,
    )
    try:
        state = load_file(str(path / "speech.safetensors"))
        model.load_state_dict(state)
    except (OSError, SafetensorError, RuntimeError) as e:
        raise SpeechModelFileError(
            f"{path / 'speech.safetensors'}: {str(e).splitlines()[0]}"
        ) from None
    return model.eval(), tok, header

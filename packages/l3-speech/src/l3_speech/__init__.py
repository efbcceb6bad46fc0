"""l3-speech: speech understanding for a frozen Llama 3 (paper section 8).

- :mod:`l3_speech.features`: 80-dim log-mel filterbanks, resampling, SpecAugment, manifests.
- :class:`ConformerEncoder`: stride-4 stacking, macaron Conformer blocks with rotary attention.
- :class:`BestRQQuantizer`, :class:`BestRQObjective`: self-supervised pre-training targets.
- :class:`SpeechAdapter` and :class:`SpeechLM`: adapter outputs spliced into a frozen l3-core
  ``Transformer`` between two special tokens.

Heavy modules (torch) are imported when first used.
"""

from __future__ import annotations

from l3_core.lazy import lazy_attributes
from l3_core.versions import package_version
from l3_speech.errors import (
    AudioInputError,
    SpeechConfigError,
    SpeechDependencyError,
    SpeechError,
    SpeechModelFileError,
)

__version__ = package_version("l3-speech")

_LAZY = {
    "ConformerEncoder": "l3_speech.encoder.conformer",
    "EncoderArgs": "l3_speech.encoder.presets",
    "encoder_preset": "l3_speech.encoder.presets",
    "BestRQQuantizer": "l3_speech.bestrq.quantizer",
    "BestRQObjective": "l3_speech.bestrq.objective",
    "SpeechAdapter": "l3_speech.adapter.adapter",
    "AdapterArgs": "l3_speech.adapter.adapter",
    "SpeechLM": "l3_speech.asr.model",
    "log_mel": "l3_speech.features.fbank",
    "read_audio": "l3_speech.features.audio",
    "word_error_rate": "l3_speech.asr.wer",
}


__getattr__ = lazy_attributes("l3_speech", _LAZY)


__all__ = [
    "AdapterArgs",
    "AudioInputError",
    "BestRQObjective",
    "BestRQQuantizer",
    "ConformerEncoder",
    "EncoderArgs",
    "SpeechAdapter",
    "SpeechConfigError",
    "SpeechDependencyError",
    "SpeechError",
    "SpeechLM",
    "SpeechModelFileError",
    "encoder_preset",
    "log_mel",
    "read_audio",
    "word_error_rate",
]

"""Property tests: any audio bytes, any manifest pointing at them and any checkpoint header
either work or raise one named ``L3Error``; a row that cannot be used is excluded with its
line and reason, never dropped silently, and no samples that are not finite get through.

Bounded (``max_examples``), a few seconds each on a 2-core machine."""

from __future__ import annotations

import io
import json
import tempfile
from pathlib import Path

import numpy as np
import soundfile
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from l3_core.jsonl import Exclusions
from l3_speech.asr.checkpoint import load_speech_checkpoint
from l3_speech.errors import AudioInputError, SpeechModelFileError
from l3_speech.features.audio import audio_info, read_audio
from l3_speech.features.manifest import read_manifest

FUZZ = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _wav(samples: np.ndarray, rate: int, subtype: str) -> bytes:
    buf = io.BytesIO()
    soundfile.write(buf, samples, rate, format="WAV", subtype=subtype)
    return buf.getvalue()


@st.composite
def audio_bytes(draw) -> bytes:
    """A WAV (any rate, 16-bit or float, sometimes holding NaN/inf), then maybe cut or junk."""
    n = draw(st.integers(0, 400))
    rate = draw(st.sampled_from([8_000, 16_000, 44_100, 12_345, 1]))
    subtype = draw(st.sampled_from(["PCM_16", "FLOAT"]))
    samples = np.zeros(n, np.float32)
    if n and subtype == "FLOAT":
        samples[draw(st.integers(0, n - 1))] = draw(
            st.sampled_from([np.nan, np.inf, -np.inf, 4.0, 0.5])
        )
    data = _wav(samples, rate, subtype)
    how = draw(st.sampled_from(["whole", "cut", "junk", "bytes"]))
    if how == "cut":
        return data[: draw(st.integers(0, len(data)))]
    if how == "junk":
        return data[:44] + draw(st.binary(max_size=40))
    if how == "bytes":
        return draw(st.binary(max_size=80))
    return data


@FUZZ
@given(data=audio_bytes())
def test_any_audio_bytes_give_finite_samples_or_an_audio_error(data):
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "x.wav"
        p.write_bytes(data)
        try:
            info = audio_info(p)
            assert info.frames >= 0 and info.sample_rate > 0
        except AudioInputError as e:
            assert str(p) in str(e)
        try:
            samples = read_audio(p)
        except AudioInputError as e:
            assert str(p) in str(e)
            return
        assert samples.dtype == torch.float32 and samples.ndim == 1 and len(samples) > 0
        assert torch.isfinite(samples).all(), "samples that are not finite were returned"


_field = st.one_of(st.sampled_from(["a.wav", "b.wav", "absent.wav", ""]), st.integers(), st.none())


@FUZZ
@given(
    files=st.lists(audio_bytes(), min_size=2, max_size=2),
    rows=st.lists(
        st.fixed_dictionaries(
            {}, optional={"audio": _field, "text": st.one_of(st.text(max_size=8), st.none())}
        ),
        max_size=5,
    ),
)
def test_a_manifest_gives_one_utterance_or_one_exclusion_per_row(files, rows):
    with tempfile.TemporaryDirectory() as d:
        root = Path(d)
        for name, data in zip(("a.wav", "b.wav"), files):
            (root / name).write_bytes(data)
        (root / "m.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        ex = Exclusions()
        utts = read_manifest(root / "m.jsonl", ex)
        assert len(utts) + len(ex) == len(rows)
        for u in utts:  # every row kept is readable
            assert len(read_audio(u.audio)) > 0


_json = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 10**6) | st.floats() | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=6,
)


@FUZZ
@given(
    header=st.one_of(
        _json.map(lambda v: json.dumps(v).encode()),
        st.fixed_dictionaries(
            {
                "format": st.just("l3-speech.checkpoint"),
                "version": st.just(1),
                "encoder": _json,
                "adapter": _json,
            }
        ).map(lambda v: json.dumps(v).encode()),
        st.binary(max_size=40),
    )
)
def test_a_bad_checkpoint_header_is_a_model_file_error(header):
    with tempfile.TemporaryDirectory() as d:
        root = Path(d)
        (root / "speech.json").write_bytes(header)
        try:
            load_speech_checkpoint(root)
        except SpeechModelFileError as e:
            assert str(root) in str(e)
        else:
            raise AssertionError("a checkpoint without weights was loaded")

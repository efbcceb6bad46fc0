"""Manifest rows that cannot be used are excluded with the file and the reason."""

from __future__ import annotations

import json

import numpy as np
import soundfile
from hypothesis import given, settings
from hypothesis import strategies as st

from l3_core.jsonl import Exclusions
from l3_speech.features.manifest import read_manifest


def test_bad_rows_go_to_exclusions_with_reasons(tmp_path) -> None:
    rate = 16000
    soundfile.write(tmp_path / "ok.wav", np.zeros(rate, np.float32), rate)
    soundfile.write(tmp_path / "long.wav", np.zeros(3 * rate, np.float32), rate)
    soundfile.write(tmp_path / "odd.wav", np.zeros(rate, np.float32), 12345)
    soundfile.write(tmp_path / "empty.wav", np.zeros(0, np.float32), rate)
    (tmp_path / "junk.wav").write_bytes(b"junk")
    rows = [
        {"audio": "ok.wav", "text": "one  two"},
        {"audio": "long.wav", "text": "x"},
        {"audio": "odd.wav", "text": "x"},
        {"audio": "empty.wav", "text": "x"},
        {"audio": "junk.wav", "text": "x"},
        {"audio": "ok.wav", "text": "  "},
        {"text": "no audio"},
    ]
    lines = [json.dumps(r) for r in rows] + ["{not json"]
    (tmp_path / "m.jsonl").write_text("\n".join(lines) + "\n")
    ex = Exclusions()
    utts = read_manifest(tmp_path / "m.jsonl", ex, max_seconds=2.0)
    assert [(u.audio.name, u.text, u.line) for u in utts] == [("ok.wav", "one two", 1)]
    reasons = {r.line: r.reason for r in ex.rows}
    assert reasons[2].startswith("too long:") and "3.0 s, limit 2 s" in reasons[2]
    assert reasons[3].startswith("wrong sample rate:") and "12345 Hz" in reasons[3]
    assert reasons[4].startswith("empty audio:")
    assert reasons[5].startswith("unreadable audio:") and "junk.wav" in reasons[5]
    assert reasons[6] == "field 'text' is empty"
    assert reasons[7] == "field 'audio' missing or not a string: None"
    assert reasons[8].startswith("invalid JSON")
    ex.write(tmp_path / "excluded.jsonl")
    assert len((tmp_path / "excluded.jsonl").read_text().splitlines()) == 7


@settings(max_examples=30, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.text(max_size=20),
            st.dictionaries(
                st.sampled_from(["audio", "text", "x"]),
                st.one_of(st.text(max_size=8), st.integers()),
            ),
        ),
        max_size=6,
    )
)
def test_any_manifest_is_read_or_excluded_row_by_row_never_crashes(tmp_path_factory, rows) -> None:
    d = tmp_path_factory.mktemp("m")
    lines = [r if isinstance(r, str) else json.dumps(r) for r in rows]
    (d / "m.jsonl").write_text("\n".join(x.replace("\n", " ") for x in lines) + "\n")
    ex = Exclusions()
    utts = read_manifest(d / "m.jsonl", ex)
    assert utts == []  # no row points at real audio
    # Blank lines are skipped the way l3_core.jsonl does: by bytes.
    assert len(ex) == sum(1 for x in lines if x.replace("\n", " ").encode().strip())

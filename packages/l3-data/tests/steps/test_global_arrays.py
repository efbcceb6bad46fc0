"""A reduce's state files are written atomically: a write that dies part-way leaves the state
that was there (or none), never a half-written array that the next start would trust."""

from __future__ import annotations

import numpy as np
import pytest

from l3_data.steps.global_arrays import save_array


def test_a_reduce_write_that_dies_part_way_leaves_the_previous_state(tmp_path, monkeypatch):
    path = tmp_path / "t0000c00000.keep.npy"
    save_array(path, np.array([True, False, True]))
    real_save = np.save

    def dies_after_half(f, array, **kwargs):
        real_save(f, array[: len(array) // 2], **kwargs)  # some bytes reach the file
        raise KeyboardInterrupt  # the process is stopped mid-write

    monkeypatch.setattr(np, "save", dies_after_half)
    with pytest.raises(KeyboardInterrupt):
        save_array(path, np.zeros(1000, bool))
    monkeypatch.undo()
    assert np.load(path, allow_pickle=False).tolist() == [True, False, True]
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary left behind

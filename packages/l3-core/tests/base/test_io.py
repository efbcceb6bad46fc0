import os
import stat

import pytest

from l3_core.errors import OutputError
from l3_core.io import atomic_path, atomic_write, remove_stale_temporaries


def test_atomic_write_leaves_old_file_on_error(tmp_path):
    p = tmp_path / "f.txt"
    p.write_text("old")
    with pytest.raises(RuntimeError), atomic_write(p) as f:
        f.write("new")
        raise RuntimeError("boom")
    assert p.read_text() == "old"
    assert os.listdir(tmp_path) == ["f.txt"]


def test_new_files_get_the_umask_permissions_not_0600(tmp_path):
    old = os.umask(0o022)
    try:
        with atomic_write(tmp_path / "a.txt") as f:
            f.write("x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a.txt").stat().st_mode) == 0o644


def test_atomic_path_replaces_a_directory_whole(tmp_path):
    d = tmp_path / "model"
    d.mkdir()
    (d / "old.bin").write_text("old")
    with atomic_path(d) as tmp:
        tmp.mkdir()
        (tmp / "new.bin").write_text("new")
    assert sorted(os.listdir(d)) == ["new.bin"]
    assert sorted(os.listdir(tmp_path)) == ["model"]


def test_unwritable_destinations_are_output_errors(tmp_path):
    (tmp_path / "dir").mkdir()
    with pytest.raises(OutputError, match="is a directory"), atomic_write(tmp_path / "dir"):
        pass
    (tmp_path / "file").write_text("x")
    with (
        pytest.raises(OutputError, match="cannot create the output directory"),
        atomic_write(tmp_path / "file" / "below.txt"),
    ):
        pass


def test_stale_temporaries_are_removed(tmp_path):
    (tmp_path / ".shard.bin.abc123.tmp").write_bytes(b"partial")
    (tmp_path / ".model.x9.tmp").mkdir()
    (tmp_path / "keep.bin").write_bytes(b"ok")
    removed = remove_stale_temporaries(tmp_path)
    assert sorted(p.name for p in removed) == [".model.x9.tmp", ".shard.bin.abc123.tmp"]
    assert os.listdir(tmp_path) == ["keep.bin"]


def test_a_directory_moved_aside_by_a_killed_atomic_path_is_restored(tmp_path):
    # killed between moving the old step_4 aside and renaming the new one into place
    aside = tmp_path / ".step_4.old.tmp"
    aside.mkdir()
    (aside / "model.safetensors").write_bytes(b"complete")
    half = tmp_path / ".step_4.x1y2.tmp"
    (half / "step_4").mkdir(parents=True)
    assert remove_stale_temporaries(tmp_path) == [half]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step_4"]
    assert (tmp_path / "step_4" / "model.safetensors").read_bytes() == b"complete"


def test_a_moved_aside_directory_whose_replacement_landed_is_removed(tmp_path):
    (tmp_path / "step_4").mkdir()
    (tmp_path / ".step_4.old.tmp").mkdir()
    assert remove_stale_temporaries(tmp_path) == [tmp_path / ".step_4.old.tmp"]
    assert [p.name for p in tmp_path.iterdir()] == ["step_4"]


def _record_fsyncs(monkeypatch) -> list[int]:
    """The inode of every file descriptor handed to os.fsync."""
    synced: list[int] = []
    real = os.fsync

    def fsync(fd: int) -> None:
        synced.append(os.fstat(fd).st_ino)
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    return synced


def test_atomic_write_fsyncs_the_file_and_then_its_directory(tmp_path, monkeypatch):
    synced = _record_fsyncs(monkeypatch)
    target = tmp_path / "marker.json"
    with atomic_write(target) as f:
        f.write("{}")
    # The renamed file keeps the temporary's inode: its data, then the rename, are durable.
    assert synced == [target.stat().st_ino, tmp_path.stat().st_ino]


def test_atomic_path_fsyncs_every_file_and_the_parent_directory(tmp_path, monkeypatch):
    synced = _record_fsyncs(monkeypatch)
    target = tmp_path / "ckpt"
    with atomic_path(target) as tmp:
        tmp.mkdir()
        (tmp / "a.bin").write_bytes(b"a")
        (tmp / "b.bin").write_bytes(b"b")
    files = {(target / n).stat().st_ino for n in ("a.bin", "b.bin")}
    assert files <= set(synced) and target.stat().st_ino in synced
    assert synced[-1] == tmp_path.stat().st_ino  # the rename into place, last


def test_atomic_path_gives_files_a_library_made_0600_the_umask_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        with atomic_path(tmp_path / "ckpt") as tmp:
            tmp.mkdir(mode=0o700)
            (tmp / "model.safetensors").write_bytes(b"x")
            (tmp / "model.safetensors").chmod(0o600)  # what safetensors' writer leaves
        with atomic_path(tmp_path / "one.bin") as tmp:
            tmp.write_bytes(b"y")
            tmp.chmod(0o600)
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "ckpt").stat().st_mode) == 0o755
    assert stat.S_IMODE((tmp_path / "ckpt" / "model.safetensors").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "one.bin").stat().st_mode) == 0o644

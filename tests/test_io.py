"""poolkit._io.atomic_write: the one way poolkit writes a file."""

from __future__ import annotations

import os
import stat

import pytest

from poolkit import _io


def test_writes_and_replaces_with_open_permissions(tmp_path):
    path = tmp_path / "a.bin"
    _io.atomic_write_bytes(path, b"one")
    assert path.read_bytes() == b"one"
    _io.atomic_write_text(path, "twö")
    assert path.read_text(encoding="utf-8") == "twö"
    umask = os.umask(0o022)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask  # not mkstemp's 0600
    assert os.listdir(tmp_path) == ["a.bin"]


@pytest.mark.parametrize("exc", [OSError("disk full (simulated)"), KeyboardInterrupt()])
def test_a_failed_write_leaves_the_old_file_and_no_temp_file(tmp_path, exc):
    path = tmp_path / "m.poolkit"
    path.write_bytes(b"old")

    def write(f):
        f.write(b"half of the new")
        raise exc

    with pytest.raises(type(exc)):
        _io.atomic_write(path, write)
    assert path.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["m.poolkit"]


def test_file_and_directory_are_fsynced(tmp_path, monkeypatch):
    synced = []
    real = os.fsync

    def fsync(fd):
        synced.append(stat.S_ISDIR(os.fstat(fd).st_mode))
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    _io.atomic_write_bytes(tmp_path / "x", b"data")
    assert synced == [False, True]  # the file's data, then the rename in its directory


def test_errors_name_the_path(tmp_path):
    with pytest.raises(FileNotFoundError):
        _io.atomic_write_bytes(tmp_path / "no" / "such" / "dir" / "x", b"")
    (tmp_path / "d").mkdir()
    with pytest.raises(IsADirectoryError):
        _io.atomic_write_bytes(tmp_path / "d", b"")
    assert sorted(os.listdir(tmp_path)) == ["d"]


def test_a_name_near_the_length_limit_still_gets_a_temporary(tmp_path):
    # Found by the fuzz harness: the temporary's name (".<name>.<random>.tmp") went over the
    # file system's 255-byte limit for a name of 250, so the save failed with ENAMETOOLONG.
    path = tmp_path / ("x" * 250)
    _io.atomic_write_bytes(path, b"data")
    assert path.read_bytes() == b"data" and os.listdir(tmp_path) == [path.name]

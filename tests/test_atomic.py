"""medview.atomic: the target is the old file or the whole new one; nothing left behind."""

from __future__ import annotations

import os
import stat

import pytest

from medview.atomic import atomic_file, atomic_folder, write_bytes_atomic, write_text_atomic
from medview.fileperms import current_umask


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_failure_mid_write_leaves_no_file_and_no_temp(tmp_path):
    target = tmp_path / "new" / "deeper" / "out.bin"
    with pytest.raises(RuntimeError, match="disk gone"), atomic_file(target) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("disk gone")
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []  # the folders made for it are gone too


def test_failure_keeps_the_old_file(tmp_path):
    target = tmp_path / "a.txt"
    target.write_text("old")
    with pytest.raises(ValueError), atomic_file(target, overwrite=True) as tmp:
        tmp.write_text("new, half")
        raise ValueError
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_no_overwrite_refuses_an_existing_target_untouched(tmp_path):
    target = tmp_path / "a.txt"
    target.write_text("old")
    before = target.stat().st_mtime_ns
    with pytest.raises(FileExistsError, match=r"a\.txt exists"), atomic_file(target):
        pytest.fail("the block must not run")
    with pytest.raises(FileExistsError, match=r"a\.txt exists"):
        write_text_atomic(target, "new", overwrite=False)
    assert target.read_text() == "old" and target.stat().st_mtime_ns == before
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_no_overwrite_refuses_a_target_that_appears_while_writing(tmp_path):
    target = tmp_path / "a.txt"
    with pytest.raises(FileExistsError), atomic_file(target) as tmp:
        tmp.write_text("mine")
        target.write_text("theirs")
    assert target.read_text() == "theirs"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_writes_replace_and_keep_the_suffix(tmp_path):
    target = tmp_path / "v.nii.gz"
    with atomic_file(target, suffix=".nii.gz") as tmp:
        assert tmp.parent == tmp_path and tmp.name.endswith(".nii.gz")
        tmp.write_bytes(b"1")
    with atomic_file(target, overwrite=True) as tmp:
        tmp.write_bytes(b"2")
    assert target.read_bytes() == b"2"
    assert write_bytes_atomic(tmp_path / "b", b"xyz").read_bytes() == b"xyz"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b", "v.nii.gz"]


def test_modes(tmp_path):
    umask = current_umask()
    assert _mode(write_text_atomic(tmp_path / "export.csv", "x\n")) == 0o666 & ~umask
    assert _mode(write_text_atomic(tmp_path / "secret.json", "{}", mode=0o600)) == 0o600
    with atomic_folder(tmp_path / "series") as tmp:
        (tmp / "1.dcm").write_bytes(b"d")
    assert _mode(tmp_path / "series") == 0o777 & ~umask
    with atomic_folder(tmp_path / "private", mode=0o700) as tmp:
        pass
    assert _mode(tmp_path / "private") == 0o700


def test_folder_overwrite_and_failure(tmp_path):
    target = tmp_path / "out"
    with atomic_folder(target) as tmp:
        (tmp / "a").write_text("1")
    with pytest.raises(FileExistsError), atomic_folder(target):
        pytest.fail("the block must not run")
    with pytest.raises(KeyError), atomic_folder(target, overwrite=True) as tmp:
        (tmp / "b").write_text("2")
        raise KeyError
    assert [p.name for p in target.iterdir()] == ["a"]
    with atomic_folder(target, overwrite=True) as tmp:
        (tmp / "b").write_text("2")
    assert [p.name for p in target.iterdir()] == ["b"]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]

"""A re-index's walk shared with a helper process (medview.dicom.catalog._walk_split): the
helper's folders are taken by their digest, every change in them is still seen, and a helper
that dies, hangs or cannot start costs nothing but time."""

from __future__ import annotations

import os
import shutil
import signal
import sys
import threading
from pathlib import Path

import pydicom
import pytest

from medview.core.progress import Cancelled, Progress
from medview.dicom.catalog import _index, _walk_split
from medview.dicom.catalog.db import Catalog
from phantoms import write_ct_series


@pytest.fixture
def tree(tmp_path) -> Path:
    """Four patients of one or two small series each, a note and a subfolder chain."""
    root = tmp_path / "tree"
    for i in range(4):
        write_ct_series(root / f"p{i}" / "s1", shape=(3, 8, 8),
                        series_uid=f"1.2.826.0.1.3680043.8.498.92.{i}.1", patient_id=f"P{i}")
        if i % 2:
            write_ct_series(root / f"p{i}" / "s2", shape=(2, 8, 8),
                            series_uid=f"1.2.826.0.1.3680043.8.498.92.{i}.2",
                            patient_id=f"P{i}")
    (root / "p3" / "s1" / "note.txt").write_text("not DICOM")
    return root


@pytest.fixture
def helpers(monkeypatch) -> list[_walk_split.WalkHelper]:
    """Every helper a re-index starts (any tree is big enough here)."""
    started: list[_walk_split.WalkHelper] = []
    monkeypatch.setattr(_index, "MIN_FILES", 1)

    def start(folders):
        h = _walk_split.start_helper(folders)
        if h is not None:
            started.append(h)
        return h

    monkeypatch.setattr(_index, "start_helper", start)
    return started


def _helper_script(tmp_path: Path, body: str) -> list[str]:
    """A helper command running ``body`` with medview importable and the roots read."""
    home = str(Path(_walk_split.__file__).parents[3])
    script = tmp_path / "helper.py"
    script.write_text(
        f"import os, sys, time\nsys.path.insert(0, {home!r})\n"
        "from medview.dicom.catalog import _walk_split as w\n"
        "from medview.core.progress import NO_PROGRESS\n"
        "roots = [os.fsdecode(r) for r in sys.stdin.buffer.read().split(b'\\0') if r]\n"
        + body)
    return [sys.executable, str(script)]


def test_split_roots_takes_the_latter_half_of_the_first_shared_level(tmp_path):
    chain = tmp_path / "a" / "b"
    for name in ("p1", "p2", "p3"):
        (chain / name).mkdir(parents=True)
    assert _walk_split.split_roots([str(tmp_path)]) == [str(chain / "p2"), str(chain / "p3")]
    (tmp_path / "a" / "x.dcm").write_bytes(b"")  # a level holding files is not descended
    assert _walk_split.split_roots([str(tmp_path)]) == []  # one subfolder: nothing to share
    assert _walk_split.split_roots([str(tmp_path / "a"), str(chain)]) == [
        str(chain / "p2"), str(chain / "p3")]
    assert _walk_split.split_roots([str(tmp_path / "missing")]) == []


def test_a_reindex_shares_the_walk_and_takes_the_helpers_folders_by_digest(
        tree, tmp_path, helpers, lookups):
    with Catalog(tmp_path / "c.sqlite") as cat:
        first = cat.index(tree, workers=1)
        assert helpers == []  # a first import has no digests to compare with
        lookups.clear()
        again = cat.index(tree, workers=1)
    (h,) = helpers
    assert h.roots == [str(tree / "p2"), str(tree / "p3")]
    assert h._proc.returncode == 0 and h._done == set(h.roots)
    assert lookups == []  # every folder, its own or the helper's, answered by its digest
    assert (again.unchanged, again.scanned, again.added, again.updated, again.removed) == (
        first.scanned, 0, 0, 0, 0)
    assert again.errors == first.errors == [(str(tree / "p3" / "s1" / "note.txt"),
                                             first.errors[0][1])]


def test_changes_in_the_helpers_subtrees_are_all_seen(tree, tmp_path, helpers):
    with Catalog(tmp_path / "c.sqlite") as cat:
        first = cat.index(tree, workers=1)
        # in place, same size, new mtime
        target = tree / "p3" / "s1" / "IM0002.dcm"
        ds = pydicom.dcmread(target)
        ds.SeriesDescription = "X" * len(ds.SeriesDescription)
        size, st = target.stat().st_size, target.stat()
        ds.save_as(target)
        os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
        assert target.stat().st_size == size
        (tree / "p2" / "s1" / "IM0003.dcm").unlink()
        shutil.rmtree(tree / "p3" / "s2")
        write_ct_series(tree / "p2" / "s9", shape=(2, 8, 8), patient_id="P2",
                        series_uid="1.2.826.0.1.3680043.8.498.92.2.9")
        again = cat.index(tree, workers=1)
        assert (again.added, again.updated, again.removed) == (2, 1, 3)
        assert again.unchanged == first.scanned - 1 - 3
        third = cat.index(tree, workers=1)
    assert len(helpers) == 2 and all(h._proc.returncode == 0 for h in helpers)
    assert (third.added, third.updated, third.removed, third.scanned) == (0, 0, 0, 0)
    assert third.unchanged == again.unchanged + again.added + again.updated


@pytest.mark.parametrize("body", [
    # reports its first subtree whole, then half a record, and dies
    "out = sys.stdout.buffer\n"
    "for folder, files in w._walk(roots[0], NO_PROGRESS):\n"
    "    d = w.digest_of(files)\n"
    "    out.write(b'F\\0%s\\0%d\\0%s\\0' % (d.hex().encode(), len(files), os.fsencode(folder)))\n"
    "out.write(b'E\\x00\\x000\\x00' + os.fsencode(roots[0]) + b'\\0F\\0ab')\n"
    "out.flush(); os._exit(3)\n",
    # reports folders of a subtree it never finishes
    "out = sys.stdout.buffer\n"
    "for folder, files in w._walk(roots[-1], NO_PROGRESS):\n"
    "    d = w.digest_of(files)\n"
    "    out.write(b'F\\0%s\\0%d\\0%s\\0' % (d.hex().encode(), len(files), os.fsencode(folder)))\n"
    "out.flush(); os._exit(0)\n",
    # garbage in a record: nothing it says is taken
    "out = sys.stdout.buffer\n"
    "out.write(b'F\\0zz\\0x\\0' + os.fsencode(roots[0]) + b'\\0E\\0\\0000\\0' +"
    " os.fsencode(roots[0]) + b'\\0')\n"
    "out.flush(); time.sleep(600)\n",
    # a folder outside the subtrees it was given
    "out = sys.stdout.buffer\n"
    "for folder, files in w._walk(os.path.dirname(roots[0]), NO_PROGRESS):\n"
    "    d = w.digest_of(files)\n"
    "    out.write(b'F\\0%s\\0%d\\0%s\\0' % (d.hex().encode(), len(files), os.fsencode(folder)))\n"
    "for r in roots:\n"
    "    out.write(b'E\\x00\\x000\\x00' + os.fsencode(r) + b'\\0')\n"
    "out.flush()\n",
    # a record that never ends: kept only up to MAX_RECORD, then nothing it says is taken
    "out = sys.stdout.buffer\n"
    "out.write(b'F\\0' + b'a' * (2 << 20))\n"
    "out.flush(); time.sleep(30)\n",
], ids=["dies-after-one-subtree", "never-ends-a-subtree", "garbage", "outside-its-roots",
        "endless-record"])
def test_what_a_dying_helper_did_not_finish_is_walked_here(tree, tmp_path, helpers, monkeypatch,
                                                           body):
    monkeypatch.setattr(_walk_split, "_command", lambda: _helper_script(tmp_path, body))
    with Catalog(tmp_path / "c.sqlite") as cat:
        first = cat.index(tree, workers=1)
        (tree / "p3" / "s2" / "IM0001.dcm").unlink()  # in a subtree the helper does not finish
        again = cat.index(tree, workers=1)
    (h,) = helpers
    assert h._done != set(h.roots)
    # every file counted once: nothing twice (the helper's partial reports) or lost
    assert (again.unchanged, again.removed, again.added, again.updated) == (
        first.scanned - 1, 1, 0, 0)
    if "sleep(30)" in body:  # given up once its record outgrew the bound, not waited for
        assert h._proc.returncode == -signal.SIGKILL and h._buf == b""


def test_a_helper_that_cannot_start_leaves_the_whole_walk_here(tree, tmp_path, helpers,
                                                               monkeypatch):
    monkeypatch.setattr(_walk_split, "_command", lambda: [str(tmp_path / "no-such-program")])
    with Catalog(tmp_path / "c.sqlite") as cat:
        first = cat.index(tree, workers=1)
        again = cat.index(tree, workers=1)
    assert helpers == []
    assert (again.unchanged, again.scanned) == (first.scanned, 0)


def test_a_cancel_while_waiting_for_a_hanging_helper_kills_it(tree, tmp_path, helpers,
                                                             monkeypatch):
    monkeypatch.setattr(_walk_split, "_command",
                        lambda: _helper_script(tmp_path, "time.sleep(600)\n"))
    with Catalog(tmp_path / "c.sqlite") as cat:
        first = cat.index(tree, workers=1)
        progress = Progress()
        timer = threading.Timer(0.5, progress.cancel)
        timer.start()
        with pytest.raises(Cancelled):
            cat.index(tree, workers=1, progress=progress)
        timer.cancel()
        (h,) = helpers
        assert h._proc.returncode == -9  # killed, not left sleeping
        # nothing was lost: the next re-index (helper as it is) finds everything unchanged
        monkeypatch.undo()
        again = cat.index(tree, workers=1)
    assert (again.unchanged, again.scanned) == (first.scanned, 0)


def test_folders_with_odd_names_in_the_helpers_subtrees(tree, tmp_path, helpers):
    odd = os.path.join(os.fsencode(tree / "p3"), b"s\xff")  # not UTF-8: no digest
    os.rename(os.fsencode(tree / "p3" / "s2"), odd)
    os.rename(tree / "p2" / "s1", tree / "p2" / "s\n1")  # a newline in the record's path
    with Catalog(tmp_path / "c.sqlite") as cat:
        first = cat.index(tree, workers=1)
        again = cat.index(tree, workers=1)
        assert (again.unchanged, again.scanned, again.removed) == (first.scanned, 0, 0)
        target = os.path.join(odd, b"IM0001.dcm")
        st = os.stat(target)
        os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
        third = cat.index(tree, workers=1)
    assert len(helpers) == 2 and all(h._done == set(h.roots) for h in helpers)
    assert (third.updated, third.unchanged, third.removed) == (1, first.scanned - 1, 0)

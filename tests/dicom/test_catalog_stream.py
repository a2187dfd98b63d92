"""Imports of big trees: batches committed as they go (a series opens while the import runs),
cancel and resume, and bounded reports. The batch size is made small so that a tree of a few
dozen real files spans several batches."""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest

import medview
from medview.core.progress import Cancelled, Progress
from medview.dicom.catalog import _index as _catalog_index
from medview.dicom.catalog.db import Catalog
from phantoms import write_ct_series


@pytest.fixture
def tree(tmp_path, monkeypatch):
    monkeypatch.setattr(_catalog_index, "_CHUNK", 8)
    root = tmp_path / "tree"
    uids = []
    for i, slices in enumerate((6, 14, 12)):
        uid = f"1.2.826.0.1.3680043.8.498.77.{i + 1}"
        write_ct_series(root / f"S{i}", shape=(slices, 16, 12), series_uid=uid, seed=i,
                        series_number=i + 1, study_uid="1.2.826.0.1.3680043.8.498.77.100")
        uids.append((uid, slices))
    return root, uids


def test_first_series_opens_from_another_connection_while_the_import_runs(tree, tmp_path):
    root, uids = tree
    db = tmp_path / "c.sqlite"
    seen = []

    def look(fraction, message):
        if not message.startswith("indexed") or seen:
            return
        # a second catalog (its own SQLite connection), as the window's browser has
        raw = sqlite3.connect(db)
        n_instances = raw.execute("SELECT COUNT(*) FROM instances").fetchone()[0]
        raw.close()
        with Catalog(db) as other:
            vol = medview.load(uids[0][0], catalog=other)
        seen.append((n_instances, vol.shape))

    with Catalog(db) as cat:
        report = cat.index(root, progress=Progress(look), workers=1)
    total = sum(n for _, n in uids)
    assert report.added == total
    (n_instances, shape), = seen
    assert 0 < n_instances < total  # the import had not finished
    assert shape == (6, 16, 12)  # the whole first series, voxels and all


def test_cancelled_import_keeps_its_batches_and_resumes(tree, tmp_path):
    root, uids = tree
    db = tmp_path / "c.sqlite"
    total = sum(n for _, n in uids)
    progress = Progress()
    batches = []

    def cancel_after_two(fraction, message):
        if message.startswith("indexed"):
            batches.append(message)
            if len(batches) == 2:
                progress.cancel()

    progress = Progress(cancel_after_two)
    with Catalog(db) as cat:
        with pytest.raises(Cancelled):
            cat.index(root, progress=progress, workers=1)
        kept = cat._conn().execute("SELECT COUNT(*) FROM instances").fetchone()[0]
        assert kept == 16  # two whole batches of 8, nothing of the third
        again = cat.index(root, workers=1)
        assert (again.added, again.unchanged, again.removed) == (total - kept, kept, 0)
        series = {s.series_uid: s for s in cat.series()}
    assert set(series) == {u for u, _ in uids}
    vol = medview.load(uids[1][0], catalog=Catalog(db))
    assert vol.shape == (14, 16, 12)
    assert np.isfinite(vol.array).all()


def test_vanished_and_changed_files_found_without_a_list_of_the_tree(tree, tmp_path):
    root, uids = tree
    db = tmp_path / "c.sqlite"
    with Catalog(db) as cat:
        cat.index(root, workers=1)
        gone = sorted((root / "S1").iterdir())[:3]
        for p in gone:
            p.unlink()
        (root / "S2" / "notes.txt").write_text("not DICOM")
        report = cat.index(root, workers=1)
        assert report.removed == 3 and report.added == 0 and report.unchanged == 29
        assert [p for p, _ in report.errors] == [str(root / "S2" / "notes.txt")]
        n = {s.series_uid: s for s in cat.series()}
    assert medview.load(uids[1][0], catalog=Catalog(db)).shape == (11, 16, 12)
    assert len(n) == 3


def test_report_lists_a_bounded_number_of_errors_but_counts_all(tmp_path, monkeypatch):
    monkeypatch.setattr(_catalog_index, "MAX_LISTED", 5)
    junk = tmp_path / "junk"
    junk.mkdir()
    for i in range(12):
        (junk / f"junk{i:02d}.txt").write_text("not DICOM")
    with Catalog(tmp_path / "c.sqlite") as cat:
        report = cat.index(junk, workers=1)
    assert report.error_count == 12
    assert len(report.errors) == 5
    assert all("not a DICOM file" in r for _, r in report.errors)


def test_worker_processes_read_the_stream_like_this_process(tree, tmp_path):
    root, uids = tree
    with Catalog(tmp_path / "one.sqlite") as one, Catalog(tmp_path / "two.sqlite") as two:
        a = one.index(root, workers=1)
        b = two.index(root, workers=2)  # spawn pool, batches in completion order
        assert a.added == b.added == sum(n for _, n in uids)
        rows = "SELECT path, sop_instance_uid, image_position FROM instances ORDER BY path"
        assert one._conn().execute(rows).fetchall() == two._conn().execute(rows).fetchall()


def test_reindex_by_ranges_sees_changes_beside_a_big_subfolder(tmp_path, monkeypatch):
    """A folder's files are looked up as one range of the path index; a subfolder whose
    files sort among them (``m/`` between ``a.dcm`` and ``z.dcm``) must neither hide a
    change nor count as this folder's files."""
    monkeypatch.setattr(_catalog_index, "_CHUNK", 4)
    root = tmp_path / "tree"
    write_ct_series(root / "m", shape=(30, 8, 8), series_uid="1.2.826.0.1.3680043.8.498.78.1",
                    seed=1)
    write_ct_series(tmp_path / "top", shape=(3, 8, 8),
                    series_uid="1.2.826.0.1.3680043.8.498.78.2", seed=2)
    tops = sorted((tmp_path / "top").iterdir())
    for name, src in zip(("a.dcm", "b.dcm", "z.dcm"), tops, strict=True):
        src.rename(root / name)
    (root / "notes.txt").write_text("not DICOM\n")
    db = tmp_path / "c.sqlite"
    with Catalog(db) as cat:
        first = cat.index(root, workers=1)
        assert (first.added, first.error_count) == (33, 1)
        z = root / "z.dcm"
        z.write_bytes(z.read_bytes() + b"\0\0")  # changed size: read again
        (root / "notes.txt").write_text("changed, still not DICOM\n")
        again = cat.index(root, workers=1)
    assert (again.updated, again.unchanged, again.added, again.removed) == (1, 32, 0, 0)
    assert again.scanned == 2 and again.error_count == 1

"""Folder digests (medview.dicom.catalog._folders): a re-index skips the per-file look-up of
an unchanged folder, and still sees every file added, removed, rewritten (same size, new
mtime) or changed in the catalog by anyone; unreadable files are still reported."""

from __future__ import annotations

import os
import shutil
import sqlite3
from dataclasses import replace
from pathlib import Path

import pydicom
import pytest

from medview.dicom.catalog import _schema
from medview.dicom.catalog._folders import FOLDER_STATEMENTS
from medview.dicom.catalog.db import Catalog
from phantoms import write_ct_series


@pytest.fixture
def tree(data_dir, tmp_path) -> Path:
    """Real CT slices beside a note, and two phantom series in subfolders."""
    root = tmp_path / "tree"
    shutil.copytree(data_dir / "kits_dupe_positions", root / "kits")  # holds CITATION.txt
    write_ct_series(root / "p" / "a", shape=(4, 8, 8), series_uid="1.2.826.0.1.3680043.8.498.91.1")
    write_ct_series(root / "p" / "b", shape=(3, 8, 8), series_uid="1.2.826.0.1.3680043.8.498.91.2")
    return root


def _folders(cat: Catalog) -> dict[str, tuple[int, int]]:
    rows = cat._conn().execute("SELECT folder, files, errors FROM folders").fetchall()
    return {f: (n, e) for f, n, e in rows}


def _key(folder: Path) -> str:
    return str(folder) + os.sep


def test_unchanged_folders_are_not_looked_up_and_errors_still_listed(tree, tmp_path, lookups):
    with Catalog(tmp_path / "c.sqlite") as cat:
        first = cat.index(tree, workers=1)
        kits = sorted(os.listdir(tree / "kits"))
        assert _folders(cat) == {_key(tree / "kits"): (len(kits), 1),
                                 _key(tree / "p" / "a"): (4, 0), _key(tree / "p" / "b"): (3, 0)}
        lookups.clear()
        again = cat.index(tree, workers=1)
    assert lookups == []  # every folder answered by its digest
    assert (again.unchanged, again.scanned, again.added, again.removed) == (first.scanned, 0, 0, 0)
    assert again.errors == first.errors == [
        (str(tree / "kits" / "CITATION.txt"), first.errors[0][1])]
    assert again.error_count == 1


def test_a_file_rewritten_with_the_same_size_and_a_new_mtime_is_read_again(tree, tmp_path,
                                                                           lookups):
    target = tree / "p" / "a" / "IM0002.dcm"
    with Catalog(tmp_path / "c.sqlite") as cat:
        cat.index(tree, workers=1)
        ds = pydicom.dcmread(target)
        old = ds.SeriesDescription
        ds.SeriesDescription = "X" * len(old)  # same length: same file size
        size = target.stat().st_size
        st = target.stat()
        ds.save_as(target)
        assert target.stat().st_size == size
        os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns + 1))  # 1 ns later
        lookups.clear()
        report = cat.index(tree, workers=1)
        assert (report.updated, report.scanned, report.added) == (1, 1, 0)
        assert lookups == [4]  # only that folder's files, one by one
        assert cat.instance(target).series_description == "X" * len(old)
        assert _key(tree / "p" / "a") in _folders(cat)  # matches again: digest kept
        lookups.clear()
        assert cat.index(tree, workers=1).unchanged == report.unchanged + 1
        assert lookups == []


def test_removed_added_and_new_subfolder_files_are_seen(tree, tmp_path):
    with Catalog(tmp_path / "c.sqlite") as cat:
        first = cat.index(tree, workers=1)
        (tree / "p" / "b" / "IM0001.dcm").unlink()
        shutil.copy(tree / "p" / "a" / "IM0001.dcm", tree / "p" / "a" / "copy.dcm")
        write_ct_series(tree / "p" / "b" / "new", shape=(2, 8, 8),
                        series_uid="1.2.826.0.1.3680043.8.498.91.3")
        report = cat.index(tree, workers=1)
        assert (report.removed, report.added, report.updated) == (1, 3, 0)
        assert report.unchanged == first.scanned - 1
        assert cat.instance(tree / "p" / "b" / "IM0001.dcm") is None
        assert cat.instance(tree / "p" / "b" / "new" / "IM0001.dcm") is not None
        # the removal is done before the digests are checked: every folder matches now
        assert set(_folders(cat)) == {_key(tree / "kits"), _key(tree / "p" / "a"),
                                      _key(tree / "p" / "b"), _key(tree / "p" / "b" / "new")}


def test_a_change_made_in_the_catalog_by_another_connection_drops_the_digest(tree, tmp_path):
    db = tmp_path / "c.sqlite"
    victim = tree / "p" / "a" / "IM0001.dcm"
    with Catalog(db) as cat:
        cat.index(tree, workers=1)
    raw = sqlite3.connect(db)
    with raw:
        n = raw.execute("DELETE FROM instances WHERE path = ?", (str(victim),)).rowcount
    assert n == 1
    assert raw.execute("SELECT COUNT(*) FROM folders WHERE folder = ?",
                       (_key(victim.parent),)).fetchone()[0] == 0
    raw.close()
    with Catalog(db) as cat:
        report = cat.index(tree, workers=1)
        assert (report.added, report.scanned) == (1, 1)  # the file is back in the catalog
        assert cat.instance(victim) is not None


def test_an_entry_replaced_by_another_connection_drops_the_digest(tree, tmp_path):
    db = tmp_path / "c.sqlite"
    victim = tree / "p" / "b" / "IM0002.dcm"
    with Catalog(db) as cat:
        cat.index(tree, workers=1)
    with Catalog(db) as other:  # another catalog (another medview, say) writes that file
        header = other.instance(victim)
        other._write(other._conn(), headers=[replace(header, mtime_ns=header.mtime_ns - 7)])
        assert other._conn().execute("SELECT folder FROM folders ORDER BY folder").fetchall() \
            == [(_key(tree / "kits"),), (_key(tree / "p" / "a"),)]
    with Catalog(db) as cat:
        report = cat.index(tree, workers=1)
        assert (report.updated, report.scanned) == (1, 1)  # read again: the disk's mtime
        assert cat.instance(victim).mtime_ns == victim.stat().st_mtime_ns


def test_an_entry_of_a_new_path_added_by_another_connection_is_swept(tree, tmp_path):
    """An insert of a new path keeps the folder's digest (see FOLDER_STATEMENTS): the next
    index still finds the entry of a file that is not there, and removes it."""
    db = tmp_path / "c.sqlite"
    ghost = tree / "p" / "a" / "ghost.dcm"
    with Catalog(db) as cat:
        n = cat.index(tree, workers=1).scanned
    raw = sqlite3.connect(db)
    with raw:
        raw.execute("CREATE TEMP TABLE t AS SELECT * FROM instances WHERE path = ?",
                    (str(tree / "p" / "a" / "IM0001.dcm"),))
        raw.execute("UPDATE t SET path = ?", (str(ghost),))
        raw.execute("INSERT INTO instances SELECT * FROM t")
    raw.close()
    with Catalog(db) as cat:
        report = cat.index(tree, workers=1)
        assert (report.removed, report.unchanged, report.scanned) == (1, n, 0)
        assert cat.instance(ghost) is None
        again = cat.index(tree, workers=1)  # the folder compared file by file, digest back
        assert (again.removed, again.unchanged) == (0, n)
        assert _key(ghost.parent) in _folders(cat)


def test_a_folder_with_a_name_that_is_not_utf8_is_compared_file_by_file(tmp_path, lookups):
    root = tmp_path / "tree"
    write_ct_series(root / "s", shape=(2, 8, 8), series_uid="1.2.826.0.1.3680043.8.498.91.4")
    odd = os.path.join(os.fsencode(root / "s"), b"junk\xff.txt")
    with open(odd, "wb") as f:
        f.write(b"not DICOM")
    with Catalog(tmp_path / "c.sqlite") as cat:
        first = cat.index(root, workers=1)
        assert (first.added, first.error_count) == (2, 1)
        assert _folders(cat) == {}
        lookups.clear()
        again = cat.index(root, workers=1)
    assert lookups == [3]
    assert (again.unchanged, again.scanned, again.error_count) == (3, 0, 1)


def test_images_in_a_folder_whose_own_name_is_not_utf8_are_imported(tmp_path, lookups):
    """Writing their entries once failed (the digest of a folder that has none was dropped by
    its name) and aborted the whole import."""
    root = tmp_path / "tree"
    write_ct_series(root / "x", shape=(2, 8, 8), series_uid="1.2.826.0.1.3680043.8.498.91.5")
    write_ct_series(root / "y", shape=(3, 8, 8), series_uid="1.2.826.0.1.3680043.8.498.91.6")
    os.rename(os.fsencode(root / "x"), os.path.join(os.fsencode(root), b"s\xff"))
    with Catalog(tmp_path / "c.sqlite") as cat:
        first = cat.index(root, workers=1)
        assert (first.added, first.error_count) == (5, 0)
        assert _folders(cat) == {_key(root / "y"): (3, 0)}
        lookups.clear()
        again = cat.index(root, workers=1)
    assert lookups == [2]  # the odd folder file by file, the other by its digest
    assert (again.unchanged, again.scanned, again.removed) == (5, 0, 0)


def test_an_older_layout_gets_the_digests_and_loses_a_stale_folders_table(tree, tmp_path):
    """A medview without digests that rebuilt the catalog leaves the ``folders`` table (it
    does not know it) without its triggers: its digests describe entries that are gone.
    Opening such a catalog drops them; the import then reads every file again."""
    db = tmp_path / "c.sqlite"
    with Catalog(db) as cat:
        n = cat.index(tree, workers=1).scanned
        assert _folders(cat)
    raw = sqlite3.connect(db)
    with raw:  # what that medview's rebuild leaves: empty tables, no triggers, its layout
        for (name,) in raw.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'"
                                   ).fetchall():
            raw.execute(f"DROP TRIGGER {name}")
        for table in ("instances", "errors", "series", "studies", "patients"):
            raw.execute(f"DELETE FROM {table}")
        raw.execute("UPDATE meta SET value = ? WHERE key = 'layout'", (_schema._LAYOUT_V2,))
    assert raw.execute("SELECT COUNT(*) FROM folders").fetchone()[0] == 3
    raw.close()
    with Catalog(db) as cat:
        conn = cat._conn()
        assert conn.execute("SELECT COUNT(*) FROM folders").fetchone()[0] == 0
        triggers = conn.execute("SELECT COUNT(*) FROM sqlite_master WHERE type = 'trigger'"
                                ).fetchone()[0]
        assert triggers == len(FOLDER_STATEMENTS) - 1
        assert conn.execute("SELECT value FROM meta WHERE key = 'layout'").fetchone()[0] == \
            _schema._LAYOUT
        report = cat.index(tree, workers=1)
    assert (report.added, report.unchanged) == (n - 1, 0)  # CITATION.txt: an error again

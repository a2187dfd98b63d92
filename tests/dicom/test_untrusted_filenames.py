"""File names that are not valid UTF-8 are imported, stored as their bytes, shown with U+FFFD.

Payload: the three real GE liver CT slices of dcmqi (``ct-3slice``) copied under names holding
the bytes 0xFF 0xFE (not UTF-8), plus a non-DICOM file under such a name. Before the fix
``medview index`` aborted ("surrogates not allowed") with nothing imported.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

import medview
from medview.dicom.catalog.db import Catalog
from medview.dicom.display import printable

_BAD = b"\xff\xfe"


@pytest.fixture
def folder(data_dir, tmp_path):
    src = sorted((data_dir / "dcmqi_seg" / "data" / "segmentations" / "ct-3slice").iterdir())
    assert len(src) == 3
    out = tmp_path / "in"
    out.mkdir()
    names = []
    for k, f in enumerate(src):
        name = os.fsencode(out) + b"/slice" + _BAD + str(k).encode() + b".dcm"
        shutil.copy(f, name)
        names.append(name)
    with pytest.raises(UnicodeDecodeError):
        names[0].decode("utf-8")  # the payload really is not UTF-8
    return out, src, names


def test_index_stores_the_names_and_loads_them(folder, tmp_path):
    out, src, names = folder
    with Catalog(tmp_path / "c.sqlite") as cat:
        report = cat.index([out])
        assert (report.added, report.errors) == (3, [])
        (uid,) = cat.series_under([out])
        stored = sorted(os.fsencode(h.path) for h in cat.instances(uid))
        assert stored == sorted(os.fsencode(os.path.abspath(n)) for n in names)  # round trip
        assert cat.instance(os.fsdecode(names[0])) is not None
        vol = medview.load(uid, catalog=cat)
        ref = medview.load([str(f) for f in src])
        np.testing.assert_array_equal(vol.array, ref.array)
        # a second import finds them unchanged (the folder's range covers stored bytes)
        again = cat.index([out])
        assert (again.added, again.unchanged) == (0, 3)
        os.remove(names[2])
        assert cat.index([out]).removed == 1
        assert len(cat.instances(uid)) == 2


def test_unreadable_file_with_such_a_name_is_recorded(folder, tmp_path):
    out, _, _ = folder
    bad = os.fsencode(out) + b"/notes" + _BAD + b".dcm"
    with open(bad, "wb") as f:
        f.write(b"not DICOM at all" * 20)
    with Catalog(tmp_path / "c.sqlite") as cat:
        report = cat.index([out])
        assert report.added == 3
        assert [os.fsencode(p) for p, _ in report.errors] == [bad]
        assert [os.fsencode(p) for p, _ in cat.errors()] == [bad]


def test_command_line_shows_replacement_characters(folder, tmp_path):
    out, _, _ = folder
    bad = os.fsencode(out) + b"/notes" + _BAD + b".dcm"
    with open(bad, "wb") as f:
        f.write(b"not DICOM at all" * 20)
    env = {**os.environ, "MEDVIEW_DB": str(tmp_path / "cli.sqlite"), "PYTHONIOENCODING": "utf-8"}
    proc = subprocess.run([sys.executable, "-m", "medview.cli", "index", str(out)],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "3 added" in proc.stdout
    assert f"notes{printable(os.fsdecode(_BAD))}.dcm" in proc.stderr
    assert "notes\ufffd\ufffd.dcm" in proc.stderr


def test_printable():
    assert printable(os.fsdecode(b"a\xffb")) == "a\ufffdb"
    assert printable("plain é") == "plain é"
    assert printable(b"x\xfe") == "x\ufffd"

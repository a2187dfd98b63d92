"""A DICOMDIR record that escapes the medium's folder is skipped; the rest is read.

Payload: a real medium (12 slices of the decubitus MR, written with pydicom's FileSet) whose
DICOMDIR has one IMAGE record's ReferencedFileID rewritten to ``../../outside`` — where a file
with real DICOM content waits, so following the record would visibly add a slice.
"""

from __future__ import annotations

import shutil

import numpy as np
import pydicom

import medview
from medview.dicom.catalog.db import Catalog
from medview.dicom.scan.dicomdir import read_dicomdir


def _medium_with_escaping_record(data_dir, tmp_path):
    from media_helpers import make_dicomdir

    src = data_dir / "dcm_qa_decubitus" / "In" / "HFS" / "3_t1_fl2d_sag"
    files = sorted(src.iterdir())[:12]
    root = tmp_path / "a" / "b"
    dicomdir = make_dicomdir(files, root / "media")
    ds = pydicom.dcmread(dicomdir)
    images = [(i, r) for i, r in enumerate(ds.DirectoryRecordSequence)
              if r.DirectoryRecordType == "IMAGE"]
    index, record = images[-1]  # the last slice: the other 11 stay a gap-free stack
    victim = root / "media" / pydicom.fileset.Path(*record.ReferencedFileID)
    # the escaping target is a real slice: if the record were followed it would load
    shutil.copy(victim, tmp_path / "a" / "outside")
    victim.unlink()
    record.ReferencedFileID = ["..", "..", "outside"]
    ds.save_as(dicomdir)
    return dicomdir, files, index


def test_escaping_record_is_skipped_and_named(data_dir, tmp_path):
    dicomdir, files, index = _medium_with_escaping_record(data_dir, tmp_path)
    found, skipped = read_dicomdir(dicomdir)
    assert len(found) == len(files) - 1
    assert all(dicomdir.parent in p.parents for p in found)
    assert len(skipped) == 1
    where, reason = skipped[0]
    assert where == str(dicomdir)
    assert f"record {index + 1} (IMAGE)" in reason
    assert "'..\\..\\outside'" in reason
    assert "leaves the DICOMDIR's folder" in reason


def test_load_reads_the_other_records_with_a_warning(data_dir, tmp_path):
    dicomdir, files, index = _medium_with_escaping_record(data_dir, tmp_path)
    vol = medview.load(dicomdir)
    assert len(vol.metadata["source_files"]) == len(files) - 1
    assert not any("outside" in p for p in vol.metadata["source_files"])
    assert any(f"record {index + 1} (IMAGE) skipped" in w for w in vol.warnings)
    # the slices it holds are the other 11 originals
    kept = set(vol.metadata["source_sop_instance_uids"])
    others = [f for f in files
              if pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID in kept]
    assert len(others) == len(files) - 1
    ref = medview.load(others)
    np.testing.assert_array_equal(vol.array, ref.array)


def test_index_imports_the_other_records_and_reports_the_skipped_one(data_dir, tmp_path):
    dicomdir, files, index = _medium_with_escaping_record(data_dir, tmp_path)
    with Catalog(tmp_path / "c.sqlite") as cat:
        report = cat.index([dicomdir])
        assert report.added == len(files) - 1
        reasons = [r for p, r in report.errors if p == str(dicomdir)]
        assert len(reasons) == 1 and f"record {index + 1} (IMAGE)" in reasons[0]
        assert not any("outside" in h.path for s in cat.series_under([dicomdir])
                       for h in cat.instances(s))

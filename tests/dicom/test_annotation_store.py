"""Annotations and key images persist: saved, indexed with the series they reference, and
found again by a new catalog session (a restart), merged with reports other tools made."""

from __future__ import annotations

import shutil
import sqlite3

import numpy as np
import pytest
from dicom_validate import assert_valid_dicom
from sr_helpers import foreign_report

from medview.core.annotations import make_annotation
from medview.dicom.catalog._schema import _LAYOUT_V1, SCHEMA_VERSION
from medview.dicom.catalog.db import Catalog
from medview.dicom.documents.store import (
    annotations_folder,
    key_image_slices,
    load_annotations,
    load_key_images,
    save_annotations,
    save_key_images,
)
from medview.dicom.series.loading import load


@pytest.fixture
def study(data_dir, tmp_path):
    """A copy of the real 3-slice CT and its catalog."""
    folder = tmp_path / "ct"
    shutil.copytree(data_dir / "dcmqi_seg/data/segmentations/ct-3slice", folder)
    cat = Catalog(tmp_path / "catalog.sqlite")
    cat.index([folder])
    (series,) = cat.series()
    vol = load(series.uid, catalog=cat)
    yield folder, cat, vol
    cat.close()


def _drawn(vol, z=1):
    def p(x, y):
        return vol.index_to_lps((x, y, z))

    return [
        make_annotation("distance", [p(10, 20), p(110, 80)], label="d", volume=vol,
                        slice_index=z),
        make_annotation("ellipse", [p(200, 250), p(300, 250), p(250, 220), p(250, 280)],
                        label="lesion", volume=vol, slice_index=z),
        make_annotation("text", [p(40, 40)], label="note", volume=vol, slice_index=z),
    ]


def test_saved_annotations_come_back_after_a_restart(study, tmp_path):
    _, cat, vol = study
    uid = vol.metadata["SeriesInstanceUID"]
    first = _drawn(vol)
    path1 = save_annotations(cat, vol, first)
    assert path1.parent.parent == annotations_folder()  # the private data folder
    assert (path1.parent.stat().st_mode & 0o777) == 0o700
    assert_valid_dicom(path1)
    # edited: the distance moved (same UID), the text removed, an arrow added
    moved = make_annotation("distance", [vol.index_to_lps((12, 22, 1)),
                                         vol.index_to_lps((100, 90, 1))],
                            label="d", volume=vol, slice_index=1, uid=first[0].uid)
    arrow = make_annotation("arrow", [vol.index_to_lps((5, 5, 0)), vol.index_to_lps((30, 30, 0))],
                            label="here", volume=vol, slice_index=0)
    second = [moved, first[1], arrow]
    path2 = save_annotations(cat, vol, second)
    cat.close()

    with Catalog(tmp_path / "catalog.sqlite") as again:  # a new session
        docs = again.documents(uid)
        assert [d.path for d in docs] == [str(path1), str(path2)]
        assert {d.modality for d in docs} == {"SR"} and all(d.referenced_series == (uid,)
                                                            for d in docs)
        assert docs[1].predecessors == (docs[0].sop_instance_uid,)
        loaded = load_annotations(again, uid)
        assert loaded.annotations == tuple(second)
        assert loaded.reports == (str(path2),) and loaded.skipped == ()
        assert load_annotations(again, "1.2.3.4").annotations == ()


def _foreign_report(vol, path):
    """A measurement report as another tool writes it: a triangle on slice 2."""
    return foreign_report(vol, path, ((50, 50), (90, 50), (70, 90)), 2)


def test_reports_of_other_tools_in_the_study_folder_are_merged(study, tmp_path):
    folder, cat, vol = study
    uid = vol.metadata["SeriesInstanceUID"]
    ours = _drawn(vol)
    save_annotations(cat, vol, ours)
    outline = _foreign_report(vol, folder / "their-report.dcm")
    report = cat.index([folder])  # the user imports the folder again
    assert report.documents == 1 and report.unchanged == 3 and report.errors == []
    loaded = load_annotations(cat, uid)
    assert loaded.annotations[:3] == tuple(ours)
    theirs = loaded.annotations[3]
    assert (theirs.kind, theirs.label) == ("polygon", "their ROI")
    assert np.array_equal(theirs.points, outline.astype(np.float32))
    # saving what is shown now replaces both reports
    save_annotations(cat, vol, loaded.annotations)
    cat.close()
    with Catalog(tmp_path / "catalog.sqlite") as again:
        assert load_annotations(again, uid).annotations == loaded.annotations
        (newest,) = [d for d in again.documents(uid) if len(d.predecessors) == 2]
        assert newest.modality == "SR"


def test_key_images_come_back_after_a_restart(study, tmp_path):
    _, cat, vol = study
    uid = vol.metadata["SeriesInstanceUID"]
    assert load_key_images(cat, uid) is None
    save_key_images(cat, vol, [2, 0], description="compare")
    cat.close()
    with Catalog(tmp_path / "catalog.sqlite") as again:
        kos = load_key_images(again, uid)
        assert kos.description == "compare" and key_image_slices(vol, kos) == [2, 0]
        save_key_images(again, vol, [1])  # the newest document wins
    with Catalog(tmp_path / "catalog.sqlite") as third:
        assert key_image_slices(vol, load_key_images(third, uid)) == [1]
        assert [d.modality for d in third.documents(uid)] == ["KO", "KO"]


def test_documents_follow_their_files(study, data_dir, tmp_path):
    """A report deleted from disk leaves the catalog at the next import; other pixel-less files
    (a Philips DIRFILE) stay errors, with their reason."""
    folder, cat, vol = study
    uid = vol.metadata["SeriesInstanceUID"]
    _foreign_report(vol, folder / "their-report.dcm")
    shutil.copy(data_dir / "dcm_qa_ct/In/Philips/S21610/DIRFILE", folder / "DIRFILE")
    cat.index([folder])
    assert len(cat.documents(uid)) == 1
    assert "no pixel data" in dict(cat.errors())[str(folder / "DIRFILE")]
    (folder / "their-report.dcm").unlink()
    assert cat.index([folder]).removed == 1
    assert cat.documents(uid) == [] and cat.counts()["instances"] == 3


def test_a_version_1_catalog_is_migrated_in_place(study, tmp_path):
    """A catalog written before documents were indexed: its images stay (not read again), the
    SR it had refused as "no pixel data" is read at the next import and linked."""
    folder, cat, vol = study
    uid = vol.metadata["SeriesInstanceUID"]
    report_path = folder / "their-report.dcm"
    _foreign_report(vol, report_path)
    cat.close()
    conn = sqlite3.connect(tmp_path / "catalog.sqlite")  # what medview 1 left behind
    conn.executescript(
        "DROP TABLE documents; DROP TABLE document_refs; PRAGMA user_version = 1;")
    conn.execute("UPDATE meta SET value = ? WHERE key = 'layout'", (_LAYOUT_V1,))
    st = report_path.stat()
    conn.execute("INSERT INTO errors VALUES (?, ?, ?, ?)",
                 (str(report_path), "no pixel data (a DICOMDIR/SR/presentation state? SOP "
                  "class: Comprehensive 3D SR Storage)", st.st_size, st.st_mtime_ns))
    conn.commit()
    conn.close()
    with Catalog(tmp_path / "catalog.sqlite") as migrated:
        version = migrated._conn().execute("PRAGMA user_version").fetchone()[0]
        assert version == SCHEMA_VERSION == 2
        assert migrated.counts()["instances"] == 3 and migrated.errors() == []
        report = migrated.index([folder])
        assert report.unchanged == 3 and report.scanned == 1 and report.documents == 1
        assert [a.label for a in load_annotations(migrated, uid).annotations] == ["their ROI"]


def test_deleting_every_annotation_and_saving_clears_the_series(study, tmp_path):
    folder, cat, vol = study
    uid = vol.metadata["SeriesInstanceUID"]
    two = _drawn(vol)[:2]
    save_annotations(cat, vol, two)
    _foreign_report(vol, folder / "their-report.dcm")  # another tool's report, imported too
    cat.index([folder])
    assert len(load_annotations(cat, uid).annotations) == 3
    cleared = save_annotations(cat, vol, [])  # the reader deleted them all and saved
    assert_valid_dicom(cleared)  # an empty TID 1500 report, dciodvfy: 0 errors
    cat.close()
    with Catalog(tmp_path / "catalog.sqlite") as again:  # a new session
        loaded = load_annotations(again, uid)
        assert loaded.annotations == () and loaded.reports == (str(cleared),)
        (newest,) = [d for d in again.documents(uid) if d.path == str(cleared)]
        assert len(newest.predecessors) == 2  # ours and theirs, both withdrawn
        assert save_annotations(again, vol, []) is None  # nothing left to clear
        one = make_annotation("distance", [vol.index_to_lps((5, 6, 0)),
                                           vol.index_to_lps((60, 70, 0))],
                              label="new", volume=vol, slice_index=0)
        path = save_annotations(again, vol, [one])
    with Catalog(tmp_path / "catalog.sqlite") as third:
        loaded = load_annotations(third, uid)
        assert loaded.annotations == (one,) and loaded.reports == (str(path),)


def test_nothing_drawn_and_nothing_saved_writes_nothing(study):
    _, cat, vol = study
    assert save_annotations(cat, vol, []) is None
    assert cat.documents(vol.metadata["SeriesInstanceUID"]) == []

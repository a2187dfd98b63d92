"""The SQLite catalog: first import, re-import by (size, mtime), removals, errors, DICOMDIR,
round trip of headers, cancellation, threads."""

from __future__ import annotations

import os
import shutil
import sqlite3
import threading
from pathlib import Path

import numpy as np
import pytest
from media_helpers import make_dicomdir
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

from medview.core.progress import Cancelled, Progress
from medview.dicom.catalog.db import SCHEMA_VERSION, Catalog, IndexReport, default_catalog_path
from medview.dicom.scan.scanner import iter_files, scan_file, scan_paths


@pytest.fixture
def tree(data_dir, tmp_path) -> Path:
    """A small copy of real folders: CT with duplicates, a mosaic, Philips extras + DIRFILEs."""
    root = tmp_path / "tree"
    shutil.copytree(data_dir / "kits_dupe_positions", root / "kits")
    (root / "ts").mkdir(parents=True)
    for i in (1, 2, 3):
        shutil.copy(data_dir / f"dcm_qa_ts/In/{i}.dcm", root / "ts" / f"{i}.dcm")
    philips = data_dir / "dcm_qa_ct/In/Philips/S21610"
    shutil.copytree(philips / "S1000", root / "philips" / "S1000")
    shutil.copytree(philips / "S4010", root / "philips" / "S4010")
    shutil.copy(philips / "DIRFILE", root / "philips" / "DIRFILE")
    return root


def _write_ct(path: Path, *, series_uid: str, study_uid: str, index: int = 0) -> Path:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.PatientName = "Synthetic^Patient"
    ds.PatientID = "SYN1"
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    ds.StudyDescription = "Synthetic study"
    ds.StudyDate = "20240102"
    ds.StudyTime = "101010"
    ds.StudyID = "1"
    ds.PatientBirthDate = ""
    ds.PatientSex = "O"
    ds.SeriesDescription = "Synthetic series"
    ds.SeriesNumber = 7
    ds.Modality = "CT"
    ds.InstanceNumber = index + 1
    ds.ImagePositionPatient = [0.0, 0.0, float(index)]
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.PixelSpacing = [0.5, 0.5]
    ds.Rows = ds.Columns = 8
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 1
    ds.RescaleIntercept = -1024
    ds.RescaleSlope = 1
    ds.PixelData = np.full(64, index, dtype="<i2").tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def _synthetic_series(folder: Path, n: int) -> list[Path]:
    series, study = generate_uid(), generate_uid()
    return [
        _write_ct(folder / f"IM{i:04d}.dcm", series_uid=series, study_uid=study, index=i)
        for i in range(n)
    ]


def _bump_mtime(path: Path) -> None:
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))


# --------------------------------------------------------------------------- first pass


def test_first_index_counts(tree, tmp_path):
    headers, errors = scan_paths(tree)
    with Catalog(tmp_path / "c.sqlite") as cat:
        report = cat.index([tree])
        assert isinstance(report, IndexReport)
        assert report.added == len(headers) > 0
        assert report.updated == report.unchanged == report.removed == 0
        assert report.scanned == len(iter_files([tree]))
        assert sorted(report.errors) == sorted(errors)
        counts = cat.counts()
        assert counts["instances"] == len(headers)
        assert counts["errors"] == len(errors)
        series_uids = {h.series_instance_uid for h in headers}
        assert {s.uid for s in cat.series()} == series_uids
        assert sum(s.instances for s in cat.series()) == len(headers)
        kits = [s for s in cat.series() if s.modality == "CT" and s.rows == 512]
        assert any(s.instances == 11 for s in kits)
        assert len(cat.patients()) == len({(h.patient_id, h.patient_name) for h in headers})
        assert len(cat.studies()) == len({h.study_instance_uid for h in headers})


def test_errors_have_path_and_reason(tree, tmp_path):
    with Catalog(tmp_path / "c.sqlite") as cat:
        cat.index([tree])
        errors = dict(cat.errors())
    assert str(tree / "kits" / "CITATION.txt") in errors
    assert "not a DICOM file" in errors[str(tree / "kits" / "CITATION.txt")]
    assert "no pixel data" in errors[str(tree / "philips" / "DIRFILE")]
    assert all(reason for reason in errors.values())


def test_instances_round_trip(tree, tmp_path):
    with Catalog(tmp_path / "c.sqlite") as cat:
        cat.index([tree])
        n = 0
        for s in cat.series():
            stored = cat.instances(s.uid)
            assert len(stored) == s.instances
            for h in stored:
                assert h == scan_file(h.path)
                n += 1
        assert n == cat.counts()["instances"]
        mosaic = cat.instance(tree / "ts" / "1.dcm")
        assert mosaic is not None and mosaic.mosaic_count == 35


def test_multiframe_round_trip(data_dir, tmp_path):
    folder = tmp_path / "mf"
    shutil.copytree(data_dir / "dcmqi_seg/data/segmentations/23x38x3", folder)
    with Catalog(tmp_path / "c.sqlite") as cat:
        cat.index([folder])
        frames = [h for s in cat.series() for h in cat.instances(s.uid) if h.frames]
        assert frames
        for h in frames:
            assert h == scan_file(h.path)


# --------------------------------------------------------------------------- re-index


def test_reindex_unchanged_reads_nothing(tree, tmp_path):
    with Catalog(tmp_path / "c.sqlite") as cat:
        first = cat.index([tree])
        again = cat.index([tree])
    assert again.scanned == 0
    assert again.added == again.updated == again.removed == 0
    assert again.unchanged == first.scanned
    assert sorted(again.errors) == sorted(first.errors)  # failures kept, not re-read


def test_touching_a_file_rereads_only_it(tree, tmp_path):
    target = tree / "kits" / sorted(os.listdir(tree / "kits"))[-1]
    assert target.suffix == ".dcm"
    with Catalog(tmp_path / "c.sqlite") as cat:
        cat.index([tree])
        _bump_mtime(target)
        report = cat.index([tree])
        assert report.scanned == 1
        assert report.updated == 1 and report.added == 0
        assert cat.instance(target).mtime_ns == target.stat().st_mtime_ns


def test_touching_a_failing_file_rereads_it(tree, tmp_path):
    bad = tree / "kits" / "CITATION.txt"
    with Catalog(tmp_path / "c.sqlite") as cat:
        cat.index([tree])
        _bump_mtime(bad)
        report = cat.index([tree])
        assert report.scanned == 1
        assert str(bad) in dict(report.errors)


def test_deleted_file_is_removed(tree, tmp_path):
    victim = tree / "ts" / "2.dcm"
    with Catalog(tmp_path / "c.sqlite") as cat:
        cat.index([tree])
        before = cat.counts()["instances"]
        victim.unlink()
        (tree / "kits" / "CITATION.txt").unlink()
        report = cat.index([tree])
        assert report.removed == 2
        assert report.scanned == 0
        assert cat.counts()["instances"] == before - 1
        assert cat.instance(victim) is None
        assert str(tree / "kits" / "CITATION.txt") not in dict(cat.errors())


def test_removed_folder_drops_its_series(tree, tmp_path):
    with Catalog(tmp_path / "c.sqlite") as cat:
        cat.index([tree])
        n_series = len(cat.series())
        shutil.rmtree(tree / "philips")
        cat.index([tree])
        assert len(cat.series()) < n_series
        assert cat.counts()["series"] == len(cat.series())
        # other folders are not touched by indexing one folder
        other = tmp_path / "other"
        _synthetic_series(other, 3)
        cat.index([other])
        cat.index([tree / "kits"])
        assert cat.find_series("Synthetic")


def test_a_file_that_becomes_unreadable_leaves_its_series(tmp_path):
    files = _synthetic_series(tmp_path / "s", 2)
    with Catalog(tmp_path / "c.sqlite") as cat:
        cat.index([tmp_path / "s"])
        assert cat.series()[0].instances == 2
        files[0].write_bytes(b"not dicom any more, and a different size")
        report = cat.index([tmp_path / "s"])
        assert report.scanned == 1
        assert cat.series()[0].instances == 1
        files[1].write_bytes(b"broken too")
        cat.index([tmp_path / "s"])
        assert cat.series() == [] and cat.patients() == [] and cat.counts()["series"] == 0
        assert len(cat.errors()) == 2


def test_single_file_and_missing_file(tmp_path):
    f = _synthetic_series(tmp_path / "s", 1)[0]
    with Catalog(tmp_path / "c.sqlite") as cat:
        report = cat.index(f)
        assert report.added == 1
        assert cat.index([f]).unchanged == 1
        f.unlink()
        report = cat.index([f])
        assert report.removed == 1
        assert report.errors and "cannot read" in report.errors[0][1]
        assert cat.counts()["instances"] == 0


# --------------------------------------------------------------------------- DICOMDIR


def test_dicomdir_import(tmp_path):
    src = _synthetic_series(tmp_path / "src", 4)
    media = tmp_path / "media"
    make_dicomdir(src, media)
    dicomdir = media / "DICOMDIR"
    assert dicomdir.is_file()
    with Catalog(tmp_path / "c.sqlite") as cat:
        report = cat.index([dicomdir])
        assert report.added == 4
        assert not report.errors
        (series,) = cat.series()
        assert series.instances == 4
        assert all(Path(h.path).is_relative_to(media) for h in cat.instances(series.uid))
        assert cat.index([dicomdir]).scanned == 0
        # indexing the whole medium finds the same files and does not list DICOMDIR as an error
        report = cat.index([media])
        assert report.scanned == 0 and not report.errors


def test_broken_dicomdir_is_an_error_and_its_folder_is_read(tmp_path):
    folder = tmp_path / "cd"
    _synthetic_series(folder, 2)
    (folder / "DICOMDIR").write_bytes(b"\x00" * 128 + b"DICM" + b"garbage" * 10)
    with Catalog(tmp_path / "c.sqlite") as cat:
        report = cat.index([folder / "DICOMDIR"])
        assert report.added == 2
        reasons = dict(report.errors)
        assert "DICOMDIR" in reasons[str(folder / "DICOMDIR")]
        assert str(folder / "DICOMDIR") in dict(cat.errors())


# --------------------------------------------------------------------------- queries


def test_queries(tree, tmp_path):
    with Catalog(tmp_path / "c.sqlite") as cat:
        cat.index([tree])
        patients = cat.patients()
        assert patients and all(p.instances > 0 and p.studies > 0 for p in patients)
        for p in patients:
            studies = cat.studies(p.patient_id)
            assert studies
            for st in studies:
                series = cat.series(st.uid)
                assert {s.study_uid for s in series} == {st.uid}
                assert sum(s.instances for s in series) == st.instances
        assert cat.series_under([tree]) == sorted(s.uid for s in cat.series())
        (ts_uid,) = cat.series_under([tree / "ts"])
        assert cat.series_under([tree / "ts" / "1.dcm"]) == [ts_uid]
        assert cat.series_under([tree / "nowhere"]) == []
        mr = cat.find_series("mr")
        assert mr and all(
            "mr" in (s.modality + s.description + s.patient_name + s.patient_id).lower()
            or "mr" in s.study_description.lower()
            for s in mr
        )
        assert cat.find_series("100%_") == []
        uid = mr[0].uid
        n = mr[0].instances
        assert cat.remove_series(uid) == n
        assert cat.instances(uid) == []
        assert uid not in {s.uid for s in cat.series()}
        # the files are still there: the next import finds them again
        assert cat.index([tree]).added == n



def test_remove_series_drops_empty_study_and_patient_rows(tree, tmp_path):
    with Catalog(tmp_path / "c.sqlite") as cat:
        cat.index([tree])
        before = cat.counts()
        kits = [s for s in cat.series() if s.patient_name == "Lymphoma"]
        assert len(kits) == 1  # the only series of its patient and study
        files = sorted((tree / "kits").iterdir())
        n = cat.remove_series(kits[0].uid)
        after = cat.counts()
        assert after["instances"] == before["instances"] - n
        assert after["series"] == before["series"] - 1
        assert after["studies"] == before["studies"] - 1
        assert after["patients"] == before["patients"] - 1
        assert "Lymphoma" not in {p.patient_name for p in cat.patients()}
        assert after["errors"] == before["errors"]  # unreadable files are another list
        assert sorted((tree / "kits").iterdir()) == files  # nothing deleted on disk
        assert cat.remove_series(kits[0].uid) == 0  # removing it again changes nothing
        assert cat.counts() == after

# --------------------------------------------------------------------------- robustness


def test_cancel_leaves_complete_batches(tmp_path):
    folder = tmp_path / "many"
    _synthetic_series(folder, 520)
    progress = Progress(lambda fraction, message: progress.cancel() if fraction > 0 else None)
    db = tmp_path / "c.sqlite"
    with Catalog(db) as cat:
        with pytest.raises(Cancelled):
            cat.index([folder], progress=progress, workers=1)
        stored = cat.counts()["instances"]
        assert 0 < stored < 520
        (series,) = cat.series()
        headers = cat.instances(series.uid)
        assert len(headers) == stored == series.instances
        for h in headers[:20]:
            assert h == scan_file(h.path)
        report = cat.index([folder])
        assert report.added == 520 - stored and report.unchanged == stored
    con = sqlite3.connect(db)
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    con.close()


def test_crash_inside_a_batch_rolls_back(tmp_path, monkeypatch):
    folder = tmp_path / "s"
    _synthetic_series(folder, 5)
    import medview.dicom.catalog.db as catalog_module

    def boom(conn, headers):
        raise RuntimeError("simulated crash")

    with Catalog(tmp_path / "c.sqlite") as cat:
        monkeypatch.setattr(catalog_module.Catalog, "_upsert_hierarchy", staticmethod(boom))
        with pytest.raises(RuntimeError, match="simulated crash"):
            cat.index([folder])
        assert cat.counts()["instances"] == 0
        monkeypatch.undo()
        assert cat.index([folder]).added == 5


def test_read_while_a_worker_thread_indexes(tmp_path):
    folder = tmp_path / "many"
    _synthetic_series(folder, 300)
    db = tmp_path / "c.sqlite"
    cat = Catalog(db)
    seen: list[int] = []
    done = threading.Event()
    failure: list[BaseException] = []

    def work():
        try:
            cat.index([folder], workers=1)
        except BaseException as exc:
            failure.append(exc)
        finally:
            done.set()

    t = threading.Thread(target=work)
    t.start()
    while not done.is_set():
        seen.append(sum(s.instances for s in cat.series()))
    t.join()
    assert not failure
    assert seen == sorted(seen)
    assert cat.counts()["instances"] == 300
    cat.close()
    with pytest.raises(RuntimeError, match="closed"):
        cat.series()


def test_default_path_and_schema(tmp_path, monkeypatch):
    assert default_catalog_path() == Path(os.environ["MEDVIEW_DB"])
    with Catalog() as cat:
        assert cat.path == Path(os.environ["MEDVIEW_DB"])
    monkeypatch.delenv("MEDVIEW_DB")
    monkeypatch.delenv("MEDVIEW_DATA_DIR", raising=False)  # the platform default
    import platformdirs

    monkeypatch.setattr(platformdirs, "user_data_dir", lambda app: str(tmp_path / "ud" / app))
    assert default_catalog_path() == tmp_path / "ud" / "medview" / "catalog.sqlite"
    with Catalog() as cat:
        assert cat.path.is_file()
        mode = cat._conn().execute("PRAGMA journal_mode").fetchone()[0]
        assert mode == "wal"
        assert cat._conn().execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_newer_schema_is_refused_and_older_rebuilt(tmp_path):
    db = tmp_path / "c.sqlite"
    _synthetic_series(tmp_path / "s", 2)
    with Catalog(db) as cat:
        cat.index([tmp_path / "s"])
    con = sqlite3.connect(db)
    con.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    con.close()
    with pytest.raises(RuntimeError, match="newer"):
        Catalog(db)
    con = sqlite3.connect(db)
    con.execute("PRAGMA user_version = 0")
    con.close()
    with Catalog(db) as cat:  # an older layout is a stale cache: rebuilt empty
        assert cat.counts()["instances"] == 0
        assert cat.index([tmp_path / "s"]).added == 2

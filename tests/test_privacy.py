"""Patient data at rest: everything an import, an open, an autosave and an offload mapping write
is the user's only (folders 0700, files 0600), folders an older medview left wider are tightened
when opened, and `medview catalog wipe` leaves no trace of a planted patient name."""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

import numpy as np
import pydicom
import pytest
from realparts import DATA, require

from medview.cli import main

PLANTED = "PRIVACYTEST^PLANTED"


def modes(*roots: Path) -> dict[Path, int]:
    """The mode of every folder and file below (and of) ``roots``."""
    out = {}
    for root in roots:
        out[root] = stat.S_IMODE(root.stat().st_mode)
        for folder, dirs, files in os.walk(root):
            for name in dirs + files:
                p = Path(folder, name)
                out[p] = stat.S_IMODE(p.lstat().st_mode)
    return out


def assert_private(*roots: Path) -> int:
    found = modes(*roots)
    wide = {str(p): oct(m) for p, m in found.items()
            if m != (0o700 if p.is_dir() else 0o600)}
    assert not wide, f"readable by others: {wide}"
    return len(found)


def holds(root: Path, needle: bytes) -> list[Path]:
    """Files below ``root`` whose bytes contain ``needle`` (a grep of the folder)."""
    return [p for p in root.rglob("*") if p.is_file() and needle in p.read_bytes()]


@pytest.fixture()
def home(tmp_path, monkeypatch):
    """Data, cache and config folders of this test, with the catalog in the data folder (as
    for a user who never set MEDVIEW_DB), and a window settings file naming a patient folder."""
    for var, sub in (("MEDVIEW_DATA_DIR", "data"), ("MEDVIEW_CACHE_DIR", "cache"),
                     ("MEDVIEW_CONFIG_DIR", "config"), ("MEDVIEW_LOG_DIR", "logs")):
        monkeypatch.setenv(var, str(tmp_path / sub))
    monkeypatch.delenv("MEDVIEW_DB", raising=False)
    monkeypatch.delenv("MEDVIEW_RECOVERY_DIR", raising=False)
    settings = tmp_path / "settings.ini"
    settings.write_text(f"[window]\ngeometry=@ByteArray(x)\n\n[import]\n"
                        f"last_folder=/studies/{PLANTED}\n")
    monkeypatch.setenv("MEDVIEW_SETTINGS", str(settings))
    return tmp_path


@pytest.fixture()
def planted_ct(tmp_path) -> Path:
    """The real KiTS CT slices with a patient name planted in them (the user's own folder)."""
    require((DATA / "kits_dupe_positions").is_dir(), f"real DICOM data at {DATA}")
    src = tmp_path / "my-dicom"
    src.mkdir()
    for f in sorted((DATA / "kits_dupe_positions").glob("*.dcm"))[:6]:
        ds = pydicom.dcmread(f)
        ds.PatientName = PLANTED
        ds.save_as(src / f.name)
    return src


def import_open_autosave(home: Path, src: Path) -> str:
    from medview.app.recovery import RecoveryStore
    from medview.app.thumbnails import ThumbnailCache
    from medview.core.labelmap import LabelMap
    from medview.dicom.catalog.db import Catalog
    from medview.dicom.series.loading import load
    from medview.remote.deid import Deidentified

    with Catalog() as catalog:  # the default catalog: the data folder's
        report = catalog.index([src])
        assert report.added == 6
        [series] = catalog.series()
        assert catalog.path == home / "data" / "catalog.sqlite"
        thumb, cached = ThumbnailCache().thumbnail_for(catalog, series.uid)
        assert not cached and thumb.size
        volume = load(series.uid, catalog=catalog)
        # while the catalog is open SQLite's -wal and -shm exist: they get the file's mode
        assert (home / "data" / "catalog.sqlite-wal").is_file()
        assert (home / "data" / "catalog.sqlite-shm").is_file()
        assert_private(home / "data", home / "cache")
    labels = LabelMap(np.zeros(volume.array.shape, np.uint8), volume.spacing, volume.origin)
    RecoveryStore().save(series.uid, "labels", labels, description=f"CT of {PLANTED}")
    Deidentified(mapping={"2.25.1": series.uid}).save(home / "data" / "offload-jobs", "job1",
                                                      "https://example")
    return series.uid


def test_import_open_autosave_write_only_private_files(home, planted_ct):
    import_open_autosave(home, planted_ct)
    data, cache = home / "data", home / "cache"
    assert (data / "catalog.sqlite").is_file()
    assert any((cache / "thumbnails").iterdir()) and any((data / "recovery").iterdir())
    checked = assert_private(data, cache)
    assert checked >= 8
    # the user's own DICOM folder keeps its modes: medview does not own it
    assert stat.S_IMODE(planted_ct.stat().st_mode) & 0o077


def test_folders_an_older_medview_left_open_are_tightened_when_opened(home, planted_ct):
    from medview.app.recovery import RecoveryStore
    from medview.dicom.catalog.db import Catalog

    data = home / "data"
    (data / "recovery").mkdir(parents=True)
    old = data / "recovery" / "old.labels.npz"
    old.write_bytes(b"autosave of an older medview")
    db = data / "catalog.sqlite"
    with Catalog(db) as catalog:
        catalog.index([planted_ct])
    for p in (data, data / "recovery"):
        os.chmod(p, 0o755)
    for p in (db, old):
        os.chmod(p, 0o644)
    assert stat.S_IMODE(db.stat().st_mode) == 0o644
    with Catalog() as catalog:  # opening tightens the data folder and all in it
        assert catalog.series()
    assert_private(data)
    os.chmod(data / "recovery", 0o755)
    os.chmod(old, 0o644)
    RecoveryStore().entries()  # reading does not need to tighten …
    RecoveryStore().save("1.2.3", "labels", _tiny_labels())  # … the next autosave does
    assert_private(data / "recovery")


def _tiny_labels():
    from medview.core.labelmap import LabelMap

    return LabelMap(np.zeros((2, 3, 4), np.uint8), (1.0, 1.0, 1.0), (0.0, 0.0, 0.0))


def test_a_catalog_the_user_placed_elsewhere_keeps_its_folder_but_not_its_mode(tmp_path):
    from medview.dicom.catalog.db import Catalog

    folder = tmp_path / "projects"
    folder.mkdir(mode=0o755)
    os.chmod(folder, 0o755)
    with Catalog(folder / "cat.sqlite"):
        pass
    assert stat.S_IMODE(folder.stat().st_mode) == 0o755  # the user's folder: not changed
    assert stat.S_IMODE((folder / "cat.sqlite").stat().st_mode) == 0o600
    with Catalog(tmp_path / "new" / "deeper" / "cat.sqlite"):
        pass
    assert_private(tmp_path / "new")


def test_wipe_leaves_no_trace_of_the_patient_and_keeps_the_source(home, planted_ct, capsys):
    from medview.audit import record

    uid = import_open_autosave(home, planted_ct)
    record(action="send", series=[(uid, 1234)], destination="orthanc")
    needle = PLANTED.encode()
    # before: the name is in the catalog (and the autosave's description)
    assert holds(home / "data", needle)
    assert main(["catalog", "wipe"]) == 1  # no terminal, no --yes: nothing removed
    assert holds(home / "data", needle)
    assert main(["catalog", "wipe", "--yes"]) == 0
    out = capsys.readouterr().out
    for what in ("catalog (names", "cache (series thumbnails)", "recovery files",
                 "offload pseudonym mappings", "the last folder opened"):
        assert what in out
    assert "DICOM folders you imported" in out and "removed" in out
    # grep everything medview keeps (data, cache, config, logs) for the name: nothing
    left = [p for p in home.iterdir() if p != planted_ct]
    assert not [hit for root in left if root.is_dir() for hit in holds(root, needle)]
    assert needle not in (home / "settings.ini").read_bytes()
    assert "geometry=@ByteArray(x)" in (home / "settings.ini").read_text()  # the rest stays
    assert not (home / "cache").exists() and not (home / "data" / "catalog.sqlite").exists()
    assert sorted(p.name for p in (home / "data").iterdir()) == ["audit.log"]
    # the user's DICOM files are untouched, name and all
    assert len(holds(planted_ct, needle)) == 6
    assert main(["catalog", "wipe", "--yes"]) == 0
    assert "nothing to remove" in capsys.readouterr().out
    assert main(["catalog", "wipe", "--yes", "--audit"]) == 0
    assert not (home / "data" / "audit.log").exists()


def test_private_folder_tightens_a_whole_old_tree_once(tmp_path):
    from medview.privatedirs import private_folder

    root = tmp_path / "old"
    (root / "a" / "b").mkdir(parents=True)
    (root / "a" / "b" / "f").write_text("x")
    os.symlink("/etc/hostname", root / "link")  # a link is not followed
    for p in (root, root / "a", root / "a" / "b"):
        os.chmod(p, 0o755)
    os.chmod(root / "a" / "b" / "f", 0o644)
    before = stat.S_IMODE(Path("/etc/hostname").stat().st_mode)
    private_folder(root)
    assert modes(root / "a")[root / "a" / "b" / "f"] == 0o600
    assert {oct(m) for p, m in modes(root).items() if p.is_dir()} == {"0o700"}
    assert stat.S_IMODE(Path("/etc/hostname").stat().st_mode) == before
    shutil.rmtree(root)

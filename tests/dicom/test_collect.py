"""What a command's items name: files, folders, catalog UIDs — each file once."""

from __future__ import annotations

import shutil

import pytest

from medview.dicom.catalog.collect import collect_files
from medview.dicom.catalog.db import Catalog


def test_files_folders_and_catalog_uids_each_once(data_dir, tmp_path):
    src = data_dir / "dcmqi_seg" / "data" / "segmentations" / "ct-3slice"
    folder = tmp_path / "ct"
    shutil.copytree(src, folder)
    (folder / ".hidden").write_bytes(b"x")
    files = sorted(p for p in folder.iterdir() if not p.name.startswith("."))
    with Catalog(tmp_path / "c.sqlite") as cat:
        cat.index([folder])
        (series,) = cat.series()
        # a folder, one of its files again, and the series and study by UID: each file once
        got = collect_files([folder, files[0], series.uid, series.study_uid], cat)
        assert got == files
        assert collect_files([series.study_uid], cat) == collect_files([series.uid], cat)
        with pytest.raises(ValueError, match="no-such-uid"):
            collect_files(["no-such-uid"], cat)
    with pytest.raises(ValueError, match="no such file"):
        collect_files([tmp_path / "missing"])

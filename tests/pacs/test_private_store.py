"""A retrieve from a real Orthanc into medview's PACS store writes only files the user can read
(folders 0700, files 0600), tightens a store an older medview left open, and `medview catalog
wipe` removes every retrieved copy (grep for the patient's institution finds nothing)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from medview.cli import main
from medview.dicom.catalog.db import Catalog
from medview.pacs.query import Query, find
from medview.pacs.retrieve import retrieve

NEEDLE = b"Richland Hospital"  # the HFS MR's InstitutionName


def all_modes(root: Path) -> dict[str, int]:
    out = {str(root): stat.S_IMODE(root.stat().st_mode)}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            p = os.path.join(folder, name)
            out[p] = stat.S_IMODE(os.lstat(p).st_mode)
    return out


def test_a_retrieve_into_the_default_store_is_private_and_wiped(dimse_node, pacs_home,
                                                                 monkeypatch, capsys):
    monkeypatch.setenv("MEDVIEW_CACHE_DIR", str(pacs_home / "cache"))
    monkeypatch.setenv("MEDVIEW_SETTINGS", str(pacs_home / "settings.ini"))
    store = pacs_home / "data" / "pacs"
    # what an older medview left: a world-readable store with a file in it
    (store / "old").mkdir(parents=True)
    (store / "old" / "x.dcm").write_bytes(b"an older copy")
    for p in (pacs_home / "data", store, store / "old"):
        os.chmod(p, 0o755)
    os.chmod(store / "old" / "x.dcm", 0o644)
    [patient] = find(dimse_node, Query(patient_id="crlab"))
    study = patient.studies[0]
    with Catalog() as catalog:
        report = retrieve(dimse_node, study.uid, study.series[0].uid, method="get",
                          catalog=catalog)
    assert report.complete and len(report.received) == 35
    assert all(Path(p).is_relative_to(store) for p in report.paths)
    found = all_modes(store)
    assert len(found) >= 35 + 3
    wide = {p: oct(m) for p, m in found.items()
            if m != (0o700 if os.path.isdir(p) else 0o600)}
    assert not wide, wide
    assert any(NEEDLE in Path(p).read_bytes() for p in report.paths)
    assert main(["catalog", "wipe", "--yes"]) == 0
    assert "PACS store" in capsys.readouterr().out
    left = [p for p in (pacs_home / "data").rglob("*") if p.is_file()
            and NEEDLE in p.read_bytes()]
    assert not left and not store.exists()

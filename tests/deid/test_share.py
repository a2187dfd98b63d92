"""``medview.deid.share`` on the privacy set and a SEG made by medview: nothing identifying in
any byte, the SEG still points at its de-identified source, valid objects, nothing partial."""

from __future__ import annotations

import hashlib
import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pydicom
import pytest
from dicom_validate import _dciodvfy
from privacy_set import IDENTIFYING, grep_files
from realparts import require_tool

import medview
from medview.audit import read_audit
from medview.core.labelmap import LabelMap, Segment
from medview.core.progress import Cancelled, Progress
from medview.deid.keys import mapping_path, project_key
from medview.deid.profile import Options
from medview.deid.share import share
from medview.dicom.scan.dicomdir import referenced_files
from medview.fileperms import current_umask

LIVER = Segment(1, "Liver", (200, 120, 100), ("91723000", "SCT", "Anatomical Structure"),
                ("10200004", "SCT", "Liver"))


def _hashes(files) -> dict[str, str]:
    return {str(f): hashlib.sha256(Path(f).read_bytes()).hexdigest() for f in files}


def _seg_for(ct_folder: Path, out: Path) -> Path:
    from medview.dicom.export.seg import write_seg

    vol = medview.load(ct_folder)
    lab = np.zeros(vol.shape, np.uint8)
    lab[vol.array > 40] = 1
    return write_seg(LabelMap.like(vol, lab, segments=(LIVER,)), out, source=vol,
                     series_description="liver by medview")


def _errors(path) -> set[str]:
    return {ln for ln in _dciodvfy(path) if ln.startswith("Error")}


@pytest.fixture()
def study(privacy_files, tmp_path):
    """The privacy set with its CT in a folder of its own and a SEG made on that CT."""
    ct = tmp_path / "study" / "ct"
    ct.mkdir(parents=True)
    for f in privacy_files[:3]:
        shutil.move(f, ct / f.name)
    other = tmp_path / "study" / "other"
    other.mkdir()
    for f in privacy_files[3:]:
        shutil.move(f, other / f.name)
    seg = _seg_for(ct, tmp_path / "study" / "seg.dcm")
    return tmp_path / "study", sorted(ct.iterdir()), seg


def test_folder_share_has_a_dicomdir_no_identity_and_a_seg_that_still_points(deid_home, study,
                                                                              tmp_path):
    root, ct_files, seg = study
    sources = [p for p in root.rglob("*") if p.is_file()]
    before = _hashes(sources)
    dest = tmp_path / "out"
    report = share([root], project="liver-study", destination=dest)
    assert dest.stat().st_mode & 0o777 == 0o777 & ~current_umask()  # not mkdtemp's 0700
    assert _hashes(sources) == before                      # the sources are only read
    files = [p for p in dest.rglob("*") if p.is_file()]
    assert (dest / "DICOMDIR").is_file() and (dest / "SHARE-REPORT.json").is_file()
    assert report.instances == len(sources) == 7
    # not one planted value in any byte of any file (DICOMDIR and the report included)
    assert grep_files(files) == []
    originals = {str(pydicom.dcmread(f, stop_before_pixels=True)[k].value) for f in sources
                 for k in ("SOPInstanceUID", "SeriesInstanceUID", "StudyInstanceUID")}
    assert grep_files(files, sorted(originals)) == []
    # the DICOMDIR lists every instance
    listed = referenced_files(dest / "DICOMDIR")
    assert len(listed) == 7
    shared = {str(d.SOPInstanceUID): d for d in map(pydicom.dcmread, listed)}
    paths = {str(pydicom.dcmread(p).SOPInstanceUID): p for p in listed}
    # the SEG references the de-identified CT, instance by instance, and its frame of reference
    key = project_key("liver-study")
    seg_src = pydicom.dcmread(seg)
    seg_out = shared[key.uid(str(seg_src.SOPInstanceUID))]
    ct_out = [shared[key.uid(str(pydicom.dcmread(f).SOPInstanceUID))] for f in ct_files]
    refs = {str(r.ReferencedSOPInstanceUID) for s in seg_out.ReferencedSeriesSequence
            for r in s.ReferencedInstanceSequence}
    assert refs == {str(c.SOPInstanceUID) for c in ct_out}
    frame_refs = {str(f.DerivationImageSequence[0].SourceImageSequence[0]
                      .ReferencedSOPInstanceUID) for f in seg_out.PerFrameFunctionalGroupsSequence}
    assert frame_refs <= refs
    assert seg_out.FrameOfReferenceUID == ct_out[0].FrameOfReferenceUID
    assert seg_out.ReferencedSeriesSequence[0].SeriesInstanceUID == ct_out[0].SeriesInstanceUID
    assert seg_out.StudyInstanceUID == ct_out[0].StudyInstanceUID
    assert len({str(d.PatientID) for d in shared.values()}) == 1
    # the basic profile empties the study date; only the DICOMDIR record carries a dummy
    assert {str(d.get("StudyDate", "")) for d in shared.values()} == {""}
    # highdicom still reads the shared SEG onto the shared CT
    import highdicom as hd

    seg_hd = hd.seg.segread(paths[str(seg_out.SOPInstanceUID)])
    assert seg_hd.get_source_image_uids()
    # the report: counts by attribute, the US image flagged and listed, no values
    data = json.loads((dest / "SHARE-REPORT.json").read_text())
    assert data["removed"]["private attributes"] > 0 and data["uids"]["SOP Instance UID"] == 7
    assert [m["why"] for m in data["burned_in"]["not_masked"]] == [
        "masking not requested (--mask-burned-in)"]
    assert data["needs_review"]
    # one audit line per series; the mapping stays local, readable by the user only
    lines = [e for e in read_audit() if e.action == "share"]
    assert len(lines) == len({str(pydicom.dcmread(f).SeriesInstanceUID) for f in sources})
    assert {e.profile for e in lines} == {"basic"} and lines[0].destination == str(dest)
    assert mapping_path("liver-study").stat().st_mode & 0o777 == 0o600


def test_every_written_object_passes_dciodvfy_without_new_errors(deid_home, study, tmp_path):
    require_tool("dciodvfy")
    root, _ct, _seg = study
    dest = tmp_path / "out"
    opts = Options(retain_dates_modified=True, clean_descriptors=True)
    share([root], project="v", options=opts, destination=dest)
    key = project_key("v")
    by_uid = {key.uid(str(pydicom.dcmread(f).SOPInstanceUID)): f
              for f in root.rglob("*") if f.is_file()}
    assert not _errors(dest / "DICOMDIR")
    listed = referenced_files(dest / "DICOMDIR")
    assert len(listed) == len(by_uid)
    for path in listed:
        source = by_uid[str(pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID)]
        new = _errors(path) - _errors(source)
        assert not new, f"{path}: new dciodvfy errors {new}"


def test_zip_share_and_nothing_partial_on_cancel_or_existing_target(deid_home, study, tmp_path):
    root, _ct, _seg = study
    dest = tmp_path / "share.zip"
    share([root], project="z", destination=dest)
    # an export's mode (0666 less the umask), not the 0600 of the temporary it was written to
    umask = current_umask()
    assert dest.stat().st_mode & 0o777 == 0o666 & ~umask
    with zipfile.ZipFile(dest) as z:
        names = z.namelist()
        assert "DICOMDIR" in names and "SHARE-REPORT.txt" in names
        blobs = [z.read(n) for n in names]
    assert not [v for v in IDENTIFYING for b in blobs if v.lower().encode() in b.lower()]
    with pytest.raises(FileExistsError, match="already exists"):
        share([root], project="z", destination=dest)
    # cancelled half-way: neither the folder nor a staging folder is left behind
    progress = Progress(lambda f, _m: progress.cancel() if f > 0.3 else None)
    with pytest.raises(Cancelled):
        share([root], project="z", destination=tmp_path / "cancelled", progress=progress)
    left = sorted(p.name for p in tmp_path.iterdir())
    assert "share.zip" in left
    assert not [n for n in left if n.startswith((".cancelled", "cancelled", ".share.zip"))], left
    with pytest.raises(ValueError, match="no such file or folder"):
        share([tmp_path / "nothing-here"], project="z", destination=tmp_path / "x")
    assert not (tmp_path / "x").exists()

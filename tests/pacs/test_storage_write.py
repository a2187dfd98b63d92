"""How received instances are written (medview.pacs.storage.write_raw): the dataset's bytes as
they came after a File Meta Information pydicom encodes, at the path built from the UIDs
pydicom reads, for every transfer syntax (implicit, explicit, big endian, deflated,
compressed), and nothing left behind when a write fails."""

from __future__ import annotations

import io
from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.filewriter import write_file_meta_info
from realparts import DATA

from medview.pacs.storage import _place_bytes, instance_path, write_raw

TS_FILES = sorted(p for p in (DATA / "dcm_qa_ts/In").rglob("*") if p.is_file())


def _split(path):
    """(file meta, encoded data set) of a DICOM file."""
    data = path.read_bytes()
    meta = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True).file_meta
    assert data[128:132] == b"DICM"
    end = 132 + 12 + int(meta.FileMetaInformationGroupLength)
    return meta, data[end:]


@pytest.mark.parametrize("path", [*TS_FILES, Path(get_testdata_file("image_dfl.dcm")),
                                  Path(get_testdata_file("MR_small_bigendian.dcm"))],
                         ids=lambda p: f"{p.parent.name}/{p.name}")
def test_a_received_data_set_is_stored_as_it_came_under_its_own_uids(path, tmp_path):
    meta, raw = _split(path)
    want = pydicom.dcmread(path)
    stored, uids = write_raw(tmp_path, meta, raw)
    assert uids == (want.StudyInstanceUID, want.SeriesInstanceUID, want.SOPInstanceUID)
    assert stored == instance_path(tmp_path, *uids)
    head = io.BytesIO()
    write_file_meta_info(head, meta, enforce_standard=True)
    assert stored.read_bytes() == b"\0" * 128 + b"DICM" + head.getvalue() + raw
    assert stored.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in stored.parent.iterdir()] == [stored.name]  # no temporary left
    assert pydicom.dcmread(stored) == want


def test_a_write_that_fails_leaves_no_file(tmp_path):
    target = tmp_path / "a" / "b" / "c.dcm"
    with pytest.raises(TypeError):
        _place_bytes(tmp_path, target, [b"part of it", object()])
    assert list(target.parent.iterdir()) == []


def test_a_deflated_data_set_is_inflated_only_as_far_as_its_uids(tmp_path):
    """A few hundred KiB that inflate to 256 MiB (a hostile peer's C-STORE): the UIDs are read
    from the start, the rest is never inflated, and the data set is stored as it came."""
    import tracemalloc
    import zlib

    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import DeflatedExplicitVRLittleEndian, generate_uid

    from medview.pacs.storage import INFLATE_FOR_UIDS

    ds = Dataset()
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    ds.SOPInstanceUID, ds.StudyInstanceUID, ds.SeriesInstanceUID = (
        generate_uid(), generate_uid(), generate_uid())
    ds.add_new(0x00431001, "OB", bytes(256 << 20))  # after the UIDs: zeros inflate forever
    plain = io.BytesIO()
    ds.save_as(plain, implicit_vr=False, little_endian=True)
    packer = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    raw = packer.compress(plain.getvalue()) + packer.flush()
    del plain, ds[0x00431001]
    assert len(raw) < INFLATE_FOR_UIDS  # sent: under a MiB
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    tracemalloc.start()
    try:
        stored, uids = write_raw(tmp_path, meta, raw)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert uids == (ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID)
    assert peak < 16 << 20, f"{peak} bytes allocated to read the UIDs"
    assert stored.read_bytes().endswith(raw)

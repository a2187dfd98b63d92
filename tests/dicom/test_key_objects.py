"""Key images ⇄ Key Object Selection documents on real series, validated with dciodvfy."""

from __future__ import annotations

import pytest
from dicom_validate import assert_valid_dicom

from medview.dicom.documents.key_objects import read_key_images, write_key_images
from medview.dicom.documents.store import key_image_slices
from medview.dicom.errors import DicomError
from medview.dicom.export._common import ExportError
from medview.dicom.series.loading import load


@pytest.fixture(scope="module")
def mr(data_dir):
    return load(data_dir / "dcm_qa_decubitus/In/HFS")


def test_key_images_in_order(mr, tmp_path):
    slices = [20, 3, 11]
    path = write_key_images(tmp_path / "k.dcm", source=mr, slices=slices,
                            description="Läsion – two views")
    assert_valid_dicom(path)
    kos = read_key_images(path)
    uids = mr.metadata["source_sop_instance_uids"]
    assert [i.sop_instance_uid for i in kos.images] == [uids[z] for z in slices]
    assert {i.series_instance_uid for i in kos.images} == {mr.metadata["SeriesInstanceUID"]}
    assert {i.sop_class_uid for i in kos.images} == {mr.metadata["SOPClassUID"]}
    assert all(i.frame_number is None for i in kos.images)
    assert (kos.title, kos.description) == ("Of Interest", "Läsion – two views")
    assert kos.referenced_series == (mr.metadata["SeriesInstanceUID"],)
    assert key_image_slices(mr, kos) == slices


def test_multiframe_key_images_name_their_frames(data_dir, tmp_path):
    vol = load(data_dir / "dcmqi_seg/data/segmentations/23x38x3/multiframe")
    assert vol.shape[0] == 3 and len(set(vol.metadata["source_files"])) == 1
    path = write_key_images(tmp_path / "k.dcm", source=vol, slices=[2, 0])
    assert_valid_dicom(path)
    kos = read_key_images(path)
    frames = vol.metadata["source_frames"]
    assert [i.frame_number for i in kos.images] == [frames[2] + 1, frames[0] + 1]
    assert key_image_slices(vol, kos) == [2, 0]


def test_only_acquired_slices_can_be_key_images(data_dir, tmp_path):
    """The tilted GE head with varying spacing is resampled at load: planes made up between
    the acquired slices have no image to mark."""
    ge = load(data_dir / "dcm_qa_ct/In/GE")
    made_up = sorted(int(z) for z, _ in ge.metadata["made_up_slices"])
    acquired = [z for z in range(ge.shape[0]) if z not in made_up]
    assert made_up and acquired
    with pytest.raises(ExportError, match=rf"slice\(s\) \[{made_up[0]}\] were made up"):
        write_key_images(tmp_path / "k.dcm", source=ge, slices=[acquired[0], made_up[0]])
    assert not (tmp_path / "k.dcm").exists()
    path = write_key_images(tmp_path / "k.dcm", source=ge, slices=acquired[:2])
    assert_valid_dicom(path)
    assert key_image_slices(ge, read_key_images(path)) == acquired[:2]


def test_bad_requests_are_refused(mr, data_dir, tmp_path):
    target = tmp_path / "k.dcm"
    with pytest.raises(ExportError, match="no key image"):
        write_key_images(target, source=mr, slices=[])
    with pytest.raises(ExportError, match=r"outside the series' 0\.\.34"):
        write_key_images(target, source=mr, slices=[35])
    with pytest.raises(ExportError, match="listed twice"):
        write_key_images(target, source=mr, slices=[1, 1])
    with pytest.raises(ValueError, match="title"):
        write_key_images(target, source=mr, slices=[1], title="Nice")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(DicomError, match="not a Key Object Selection"):
        read_key_images(data_dir / "dcmqi_seg/data/sr-example/sr.dcm")


def test_a_series_with_gaps_marks_the_image_at_the_slice(data_dir, tmp_path):
    """A CT with missing slices is filled at load (slices made up between the acquired ones):
    its source lists hold the acquired images only, and a key image on an acquired slice
    references the image acquired at that slice's position, not the list's z-th entry."""
    import numpy as np
    import pydicom

    vol = load(data_dir / "kits_dupe_positions")
    made_up = {int(z) for z, _ in vol.metadata["made_up_slices"]}
    acquired = [z for z in range(vol.shape[0]) if z not in made_up]
    assert len(acquired) == len(vol.metadata["source_files"]) < vol.shape[0]
    z = acquired[3]
    assert z >= len(acquired)  # beyond the lists: the z-th entry does not exist
    path = write_key_images(tmp_path / "k.dcm", source=vol, slices=[z])
    assert_valid_dicom(path)
    (image,) = read_key_images(path).images
    (source,) = [f for f, u in zip(vol.metadata["source_files"],
                                   vol.metadata["source_sop_instance_uids"], strict=True)
                 if u == image.sop_instance_uid]
    position = pydicom.dcmread(source, stop_before_pixels=True).ImagePositionPatient
    assert np.allclose([float(c) for c in position], vol.index_to_lps((0, 0, z)), atol=0.01)
    assert key_image_slices(vol, read_key_images(path)) == [z]


def test_an_annotation_on_a_series_with_gaps_names_the_image_at_its_slice(data_dir):
    """make_annotation records the image acquired at the slice drawn on (not the source
    lists' z-th entry), and no image for a slice made up at load."""
    import numpy as np
    import pydicom

    from medview.core.annotations import make_annotation

    vol = load(data_dir / "kits_dupe_positions")
    made_up = sorted(int(z) for z, _ in vol.metadata["made_up_slices"])
    acquired = [z for z in range(vol.shape[0]) if z not in made_up]
    z = acquired[3]
    p0, p1 = vol.index_to_lps((100, 100, z)), vol.index_to_lps((200, 100, z))
    ann = make_annotation("distance", [p0, p1], volume=vol, slice_index=z)
    (source,) = [f for f, u in zip(vol.metadata["source_files"],
                                   vol.metadata["source_sop_instance_uids"], strict=True)
                 if u == ann.sop_instance_uid]
    position = pydicom.dcmread(source, stop_before_pixels=True).ImagePositionPatient
    assert np.allclose([float(c) for c in position], vol.index_to_lps((0, 0, z)), atol=0.01)
    m = made_up[0]
    on_made_up = make_annotation("distance", [vol.index_to_lps((100, 100, m)),
                                              vol.index_to_lps((200, 100, m))],
                                 volume=vol, slice_index=m)
    assert not on_made_up.sop_instance_uid

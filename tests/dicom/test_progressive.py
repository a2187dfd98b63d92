"""Progressive loading: same Volume as medview.load, the requested slice first, failures kept."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from realparts import require

import medview
from medview.core.progress import Cancelled, Progress
from medview.dicom.catalog.db import Catalog
from medview.dicom.series.progressive import open_progressive, outward_order
from phantoms import ct_phantom_volume, write_ct_series


def assert_same_volume(got: medview.Volume, want: medview.Volume) -> None:
    assert got.array.dtype == want.array.dtype
    np.testing.assert_array_equal(got.array, want.array)
    assert got.spacing == want.spacing and got.origin == want.origin
    np.testing.assert_array_equal(got.direction, want.direction)
    assert dict(got.metadata) == dict(want.metadata)
    assert got.warnings == want.warnings


def load_progressively(source, **kwargs) -> tuple[medview.Volume, list[int]]:
    load = open_progressive(source, **kwargs)
    load.read_first()
    counts = list(load.fill())
    return load.result(), counts


def test_outward_order_visits_every_slice_once_nearest_first():
    assert outward_order(5, 2) == [2, 3, 1, 4, 0]
    assert outward_order(4, 0) == [0, 1, 2, 3]
    assert outward_order(4, 3) == [3, 2, 1, 0]
    order = outward_order(301, 40)
    assert sorted(order) == list(range(301))
    distances = [abs(k - 40) for k in order]
    assert distances == sorted(distances)
    with pytest.raises(ValueError, match="first"):
        outward_order(4, 4)


@pytest.mark.parametrize("folder", [
    "kits_dupe_positions",
    "dcmqi_seg/data/segmentations/ct-3slice",
    "dcm_qa_decubitus/In/HFS/3_t1_fl2d_sag",
    "dcm_qa_ct/In/Philips/S21610/S2010",  # tilted, sheared (not resampled): progressive
    "dcm_qa_ct/In/Philips/S21610/S4010",  # RGB secondary capture, no geometry
])
def test_real_series_equal_medview_load(data_dir, folder):
    src = data_dir / folder
    want = medview.load(src)
    got, counts = load_progressively(src)
    assert_same_volume(got, want)
    assert counts[-1] == want.shape[0]
    assert counts == sorted(counts)


@pytest.mark.parametrize("source", [
    "dcm_qa_ct/In/GE",  # tilted with varying spacing: resampled
    "dcm_qa_ts/In/1.dcm",  # a Siemens mosaic: every slice in one file
])
def test_resampled_and_mosaic_series_fall_back_to_the_full_read(data_dir, source):
    src = data_dir / source
    want = medview.load(src)
    load = open_progressive(src)
    assert not load.progressive
    load.read_first()
    assert load.n_loaded == 0
    assert list(load.fill()) == [want.shape[0]]
    assert_same_volume(load.result(), want)


def test_uncompressed_multiframe_reads_frame_by_frame_and_equals_load(data_dir, tmp_path):
    """A real MR series as one Enhanced MR file (frames shuffled): each frame is read on its
    own, at its offset, and the volume equals medview.load's and the classic series'."""
    import warnings

    import pydicom
    from highdicom.legacy import LegacyConvertedEnhancedMRImage
    from pydicom.uid import generate_uid

    src = data_dir / "dcm_qa_decubitus" / "In" / "HFS" / "3_t1_fl2d_sag"
    datasets = [pydicom.dcmread(f) for f in sorted(src.iterdir())]
    datasets = [datasets[i] for i in np.random.default_rng(1).permutation(len(datasets))]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # highdicom warns about the source's person names
        enhanced = LegacyConvertedEnhancedMRImage(
            datasets, series_instance_uid=generate_uid(), series_number=99,
            sop_instance_uid=generate_uid(), instance_number=1)
    path = tmp_path / "enhanced.dcm"
    enhanced.save_as(path)
    want = medview.load(path)
    load = open_progressive(path)
    assert load.progressive
    assert load.read_first() == 17
    assert np.flatnonzero(load.loaded).tolist() == [17]
    np.testing.assert_array_equal(load.volume.array[17], want.array[17])
    list(load.fill())
    assert_same_volume(load.result(), want)
    np.testing.assert_array_equal(load.result().array, medview.load(src).array)


@pytest.mark.parametrize(("name", "progressive"), [
    ("emri_small.dcm", True),  # uncompressed multi-frame
    ("emri_small_big_endian.dcm", True),
    ("emri_small_RLE.dcm", False),  # compressed: decoded whole
])
def test_pydicom_multiframe_files(name, progressive):
    from pydicom.data import get_testdata_file

    path = get_testdata_file(name, download=False)
    require(path is not None, f"pydicom-data's {name} (the test extra)")
    want = medview.load(path)
    got, counts = load_progressively(path)
    assert open_progressive(path).progressive is progressive
    assert_same_volume(got, want)
    assert counts[-1] == 10


@pytest.fixture(scope="module")
def ct300(tmp_path_factory) -> tuple[Path, Catalog, str]:
    folder = tmp_path_factory.mktemp("ct300")
    write_ct_series(folder, shape=(300, 512, 512))
    cat = Catalog(folder.parent / "catalog.sqlite")
    cat.index([folder])
    (record,) = cat.series()
    yield folder, cat, record.uid
    cat.close()


@pytest.mark.parametrize("threads", [1, 2])
def test_300_slice_phantom_from_the_catalog_equals_load(ct300, threads):
    folder, cat, uid = ct300
    want = medview.load(uid, catalog=cat)
    load = open_progressive(uid, catalog=cat)
    assert load.progressive and load.volume.shape == (300, 512, 512)
    assert load.n_loaded == 0 and not load.volume.array.any()  # allocated, nothing read
    assert load.read_first() == 150
    # the first slice delivered is the one asked for, and only it
    assert np.flatnonzero(load.loaded).tolist() == [150]
    np.testing.assert_array_equal(load.volume.array[150], want.array[150])
    shown = load.volume
    counts = list(load.fill(threads=threads))
    assert counts[-1] == 300 and len(counts) > 10  # delivered in many small steps
    assert load.volume is shown  # filled in place: a view keeps showing the same array
    assert_same_volume(load.result(), want)
    assert_same_volume(load.result(), medview.load(folder))


def test_fill_goes_outward_from_the_requested_slice(ct300):
    _, cat, uid = ct300
    load = open_progressive(uid, catalog=cat, first=20)
    load.read_first()
    assert load.loaded[20] and load.n_loaded == 1
    steps = []
    for _ in load.fill(threads=1):
        steps.append(load.loaded.copy())
        if len(steps) == 2:
            break  # closing the generator stops reading
    # one thread reads chunks of 8 slices, nearest to slice 20 first
    order = outward_order(300, 20)
    assert np.flatnonzero(steps[0]).tolist() == sorted(order[:9])
    assert np.flatnonzero(steps[1]).tolist() == sorted(order[:17])
    assert load.n_loaded == 17 and not load.complete
    with pytest.raises(RuntimeError, match="not loaded completely"):
        load.result()


def test_cancel_stops_the_fill_and_leaves_the_load_incomplete(ct300):
    _, cat, uid = ct300
    progress = Progress()
    load = open_progressive(uid, catalog=cat)
    load.read_first()
    seen = []
    with pytest.raises(Cancelled):
        for n in load.fill(progress=progress):
            seen.append(n)
            progress.cancel()
    assert len(seen) == 1 and load.n_loaded < 300
    assert not load.complete


def test_a_file_broken_after_import_is_reported_and_the_rest_loads(tmp_path):
    folder = tmp_path / "ct"
    write_ct_series(folder, shape=(12, 32, 32), seed=5)
    cat = Catalog(tmp_path / "catalog.sqlite")
    cat.index([folder])
    (record,) = cat.series()
    want = medview.load(record.uid, catalog=cat)
    load = open_progressive(record.uid, catalog=cat)
    bad = load.plan.stack.slices[9].header.path
    data = Path(bad).read_bytes()
    Path(bad).write_bytes(data[: len(data) - 300])  # truncated after the catalog scanned it
    load.read_first()
    assert list(load.fill())[-1] == 11
    assert load.complete
    assert [(f.k, f.path) for f in load.failures] == [(9, bad)]
    good = np.ones(12, dtype=bool)
    good[9] = False
    vol = load.result()  # the rest loads; the broken slice is a stand-in (issue 13)
    np.testing.assert_array_equal(vol.array[good], want.array[good])
    stand_in = np.rint((want.array[8].astype(np.float32) + want.array[10]) / 2)
    np.testing.assert_array_equal(vol.array[9], stand_in)
    ((z, reason),) = vol.metadata["made_up_slices"]
    assert z == 9 and reason.startswith(f"unreadable file {Path(bad).name}: truncated")
    assert any(Path(bad).name in w and "stand-in" in w for w in vol.warnings)
    cat.close()


def test_a_slice_beyond_int16_widens_the_volume_like_load(tmp_path):
    hu = ct_phantom_volume((16, 24, 24), (1.0, 1.0, 2.0), 1).astype(np.int32)
    hu[2, 5, 5] = 40_000  # far from the middle slice: found after the first slice is shown
    write_ct_series(tmp_path / "ct", hu, stored="uint16", spacing_xyz=(1.0, 1.0, 2.0))
    want = medview.load(tmp_path / "ct")
    assert want.array.dtype == np.int32
    load = open_progressive(tmp_path / "ct")
    load.read_first()
    assert load.volume.array.dtype == np.int16  # optimistic until a slice does not fit
    list(load.fill())
    assert_same_volume(load.result(), want)


def test_every_shared_series_loads_progressively_like_load(data_dir, tmp_path):
    cat = Catalog(tmp_path / "catalog.sqlite")
    cat.index([data_dir])
    progressive = 0
    records = cat.series()
    assert len(records) >= 20
    for record in records:
        want = medview.load(record.uid, catalog=cat)
        got, counts = load_progressively(record.uid, catalog=cat)
        assert_same_volume(got, want)
        assert counts[-1] == want.shape[0]
        progressive += open_progressive(record.uid, catalog=cat).progressive
    # plain stacks (most CT and MR) go slice by slice; mosaics, multi-frame, resampled don't
    assert 5 <= progressive < len(records)
    cat.close()

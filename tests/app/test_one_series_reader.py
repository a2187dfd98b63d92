"""One reader, one window: ``medview.load``, the progressive open and the thumbnail of the same
real series give the same pixels and the same window (no Qt)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from realparts import require

import medview
from medview.app.series_loading import FirstImage, load_series_progressively
from medview.app.thumbnails import render_thumbnail, series_thumbnail, thumbnail_slice
from medview.app.windowing import default_window
from medview.dicom.catalog.db import Catalog
from medview.dicom.pixels.slice_reader import SliceReader, reads_slice_by_slice


def _rle_copy(src: Path, dest: Path) -> Path:
    """A real series re-encoded as RLE Lossless (a compressed single-frame series)."""
    import pydicom
    from pydicom.uid import RLELossless

    dest.mkdir()
    for f in sorted(p for p in src.iterdir() if p.is_file()):
        ds = pydicom.dcmread(f)
        ds.compress(RLELossless)
        ds.save_as(dest / f.name, enforce_file_format=True)
    return dest


@pytest.fixture(params=[
    "dcm_qa_decubitus/In/HFS/3_t1_fl2d_sag",  # MR, single-frame files: read slice by slice
    "dcm_qa_decubitus/In/HFS/3_t1_fl2d_sag:rle",  # the same MR compressed: slice by slice
    "kits_dupe_positions",  # CT, repeated positions and gaps: resampled, header's window
    "dcm_qa_ts/In/9.dcm",  # MR mosaic in JPEG 2000: decoded whole
])
def series(request, data_dir, tmp_path) -> tuple[Path, str, bool]:
    name, _, variant = request.param.partition(":")
    src = data_dir / name
    require(src.exists(), f"real DICOM at {src}")
    if variant == "rle":
        src = _rle_copy(src, tmp_path / "rle")
    cat = Catalog(tmp_path / "catalog.sqlite")
    request.addfinalizer(cat.close)
    cat.index([src])
    (record,) = cat.series()
    return src, cat, record.uid


def test_load_progressive_open_and_thumbnail_agree(series):
    from medview.dicom.series.assemble import plan_series

    src, cat, uid = series
    loaded = medview.load(src)
    headers = cat.instances(uid)
    # the thumbnail shows the middle acquired slice: its plane in the volume (the middle one
    # unless the stack was resampled onto even spacing)
    stack = plan_series(headers).stack
    middle = stack.slices[len(stack.slices) // 2]
    k = int(round(float(loaded.lps_to_index(middle.position)[2])))
    if stack.resample_t is None:
        assert k == loaded.shape[0] // 2

    firsts: list[tuple[int, tuple[float, float], np.ndarray]] = []

    def on_first(first: FirstImage) -> None:
        firsts.append((first.first, first.window, first.volume.array[first.first].copy()))
        first.shown.set()

    opened = load_series_progressively(cat, uid, on_first=on_first)
    # the whole volume: same values, same dtype, same window
    assert opened.volume.array.dtype == loaded.array.dtype
    np.testing.assert_array_equal(opened.volume.array, loaded.array)
    assert opened.windows[0] == default_window(loaded)
    assert opened.complete

    # the middle slice: the thumbnail's and the progressive open's first image
    image, window, spacing = thumbnail_slice(headers)
    assert image.dtype == loaded.array.dtype
    np.testing.assert_array_equal(image, loaded.array[k])
    assert window == default_window(loaded, z=k)
    # a stack read slice by slice shows its first image before the rest is read
    assert len(firsts) == int(reads_slice_by_slice(stack))
    if firsts:
        (first_k, first_window, first_image), = firsts
        assert first_k == k
        np.testing.assert_array_equal(first_image, image)
        assert first_window == window
    # the thumbnail itself is that slice in that window
    expected = render_thumbnail(loaded.array[k], default_window(loaded, z=k),
                                pixel_spacing=spacing)
    np.testing.assert_array_equal(series_thumbnail(headers), expected)


def test_the_window_of_one_slice_is_that_slices_for_mr_and_the_headers_for_ct(data_dir):
    mr = medview.load(data_dir / "dcm_qa_decubitus" / "In" / "HFS" / "3_t1_fl2d_sag")
    k = mr.shape[0] // 2
    lo, hi = np.percentile(mr.array[k], (1.0, 99.0))
    assert default_window(mr, z=k) == pytest.approx(((lo + hi) / 2, hi - lo))
    assert default_window(mr, z=k) != default_window(mr)  # the whole volume's differs
    ct = medview.load(data_dir / "kits_dupe_positions")
    assert default_window(ct, z=0) == default_window(ct) == (
        float(np.ravel(ct.metadata["WindowCenter"])[0]),
        float(np.ravel(ct.metadata["WindowWidth"])[0]))


def test_an_unreadable_slice_names_its_file(data_dir, tmp_path):
    import shutil

    from medview.dicom.errors import PixelDataError
    from medview.dicom.scan.scanner import scan_paths
    from medview.dicom.series.assemble import plan_series

    src = tmp_path / "mr"
    shutil.copytree(data_dir / "dcm_qa_decubitus" / "In" / "HFS" / "3_t1_fl2d_sag", src)
    headers, _ = scan_paths([src])
    stack = plan_series(headers).stack
    k = len(stack.slices) // 2
    middle = Path(stack.slices[k].header.path)
    middle.write_bytes(middle.read_bytes()[:-1000])  # the end of its pixel data is gone
    with pytest.raises(PixelDataError, match=middle.name):
        SliceReader(stack).read(k)
    # its neighbour reads as the whole series has it
    whole = medview.load(data_dir / "dcm_qa_decubitus" / "In" / "HFS" / "3_t1_fl2d_sag")
    np.testing.assert_array_equal(SliceReader(stack).read(k - 1), whole.array[k - 1])

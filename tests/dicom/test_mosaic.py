"""Siemens mosaics: tiling, geometry, and the slices against dcm2niix's and nibabel's."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from medview.dicom.errors import SeriesError
from medview.dicom.pixels.decoding import decode
from medview.dicom.scan.header import InstanceHeader
from medview.dicom.scan.scanner import scan_file
from medview.dicom.series.mosaic import mosaic_geometry, mosaic_shape, untile

# dcm_qa_12bit: README table (series number → file); Ref/N.nii is series N
TWELVE_BIT = {"12bitUnsigned.dcm": 2, "12bitUnsigned_0x0F0F.dcm": 3, "12bitSigned_0x0F0F.dcm": 4}


def slices(h: InstanceHeader) -> np.ndarray:
    return untile(decode(h)[0], h.mosaic_count)


# --------------------------------------------------------------------------- untile


def _labelled(count: int, r: int, c: int) -> np.ndarray:
    """A mosaic whose tile k holds the value k everywhere (and -1 in unused tiles)."""
    tiles = int(np.ceil(np.sqrt(count)))
    frame = np.full((tiles * r, tiles * c), -1, np.int32)
    for k in range(count):
        i, j = divmod(k, tiles)
        frame[i * r : (i + 1) * r, j * c : (j + 1) * c] = k
    return frame


@pytest.mark.parametrize(("count", "tiles"), [(1, 1), (2, 2), (4, 2), (35, 6), (36, 6), (37, 7)])
def test_untile_is_row_major_with_ceil_sqrt_tiles(count, tiles):
    frame = _labelled(count, 3, 5)
    assert frame.shape == (tiles * 3, tiles * 5)
    out = untile(frame, count)
    assert out.shape == (count, 3, 5) and out.flags.c_contiguous
    for k in range(count):
        assert (out[k] == k).all()


def test_untile_keeps_pixel_order_within_a_tile():
    frame = np.arange(6 * 8).reshape(6, 8)  # 4 slices of 3×4
    out = untile(frame, 4)
    np.testing.assert_array_equal(out[0], frame[:3, :4])
    np.testing.assert_array_equal(out[1], frame[:3, 4:])
    np.testing.assert_array_equal(out[2], frame[3:, :4])
    np.testing.assert_array_equal(out[3], frame[3:, 4:])


def test_untile_into_a_volume_view_and_colour():
    frame = _labelled(5, 2, 2)
    volume = np.zeros((7, 2, 2), np.int32)
    assert untile(frame, 5, out=volume[1:6]) is not None
    assert volume[0].sum() == 0 and (volume[1:6, 0, 0] == np.arange(5)).all()
    rgb = np.stack([frame, frame + 100, frame + 200], axis=-1)
    out = untile(rgb, 5)
    assert out.shape == (5, 2, 2, 3) and (out[4, ..., 2] == 204).all()


@pytest.mark.parametrize(
    ("shape", "count", "match"),
    [((9, 12), 4, "not a multiple of 2"), ((12, 12), 0, "count"), ((12,), 1, "frame")],
)
def test_untile_refuses_impossible_layouts(shape, count, match):
    with pytest.raises(ValueError, match=match):
        untile(np.zeros(shape), count)


def test_untile_out_shape_is_checked():
    with pytest.raises(ValueError, match="out: expected shape"):
        untile(np.zeros((4, 4)), 4, out=np.zeros((4, 3, 2)))


# --------------------------------------------------------------------------- geometry


def _mosaic_header(**fields) -> InstanceHeader:
    base = dict(
        path="m.dcm", rows=384, columns=384, mosaic_count=35,
        image_position=(-624.0, -661.8, -6.5), image_orientation=(1, 0, 0, 0, 1, 0),
        pixel_spacing=(3.0, 2.0), spacing_between_slices=3.6, slice_thickness=3.0,
    )
    base.update(fields)
    return InstanceHeader(**base)


def test_origin_moves_from_the_mosaic_corner_to_the_first_slice():
    g = mosaic_geometry(_mosaic_header())
    # 6×6 tiles of 64×64: (384 - 64) / 2 = 160 pixels along rows and columns;
    # columns are 2 mm apart along x, rows 3 mm apart along y
    np.testing.assert_allclose(g.origin, (-624.0 + 160 * 2.0, -661.8 + 160 * 3.0, -6.5))
    np.testing.assert_allclose(g.normal, (0, 0, 1))
    assert g.spacing == (2.0, 3.0, 3.6)
    assert mosaic_shape(_mosaic_header()) == (35, 64, 64)


def test_oblique_origin_uses_the_orientation_vectors():
    c, s, c2, s2 = np.cos(0.3), np.sin(0.3), np.cos(0.2), np.sin(0.2)
    row, col = np.array([c, s, 0]), np.array([-s * c2, c * c2, s2])
    g = mosaic_geometry(_mosaic_header(image_orientation=(*row, *col)))
    expected = np.array((-624.0, -661.8, -6.5)) + 160 * 2.0 * row + 160 * 3.0 * col
    np.testing.assert_allclose(g.origin, expected)
    np.testing.assert_allclose(g.normal, np.cross(row, col), atol=1e-12)


def test_csa_slice_normal_decides_the_slice_order():
    same = mosaic_geometry(_mosaic_header(csa_slice_normal=(0.0, 0.01, 0.9999)))
    np.testing.assert_allclose(same.normal, (0, 0, 1))
    flipped = mosaic_geometry(_mosaic_header(csa_slice_normal=(0.0, 0.01, -0.9999)))
    np.testing.assert_allclose(flipped.normal, (0, 0, -1))
    # the axes stay exactly orthonormal whatever the CSA vector's rounding
    assert abs(np.dot(flipped.normal, flipped.row_dir)) < 1e-15


def test_slice_spacing_falls_back_to_thickness():
    g = mosaic_geometry(_mosaic_header(spacing_between_slices=None))
    assert g.spacing[2] == 3.0
    with pytest.raises(SeriesError, match="SpacingBetweenSlices or SliceThickness"):
        mosaic_geometry(_mosaic_header(spacing_between_slices=None, slice_thickness=None))


@pytest.mark.parametrize("missing", ["image_position", "image_orientation", "pixel_spacing"])
def test_missing_geometry_is_a_series_error(missing):
    with pytest.raises(SeriesError, match=r"m\.dcm: mosaic without"):
        mosaic_geometry(_mosaic_header(**{missing: None}))


def test_not_a_mosaic_is_refused():
    with pytest.raises(ValueError, match="not a Siemens mosaic"):
        mosaic_geometry(_mosaic_header(mosaic_count=None))


# --------------------------------------------------------------------------- real data


def _lps_positions(h: InstanceHeader, shape: tuple[int, int, int]) -> np.ndarray:
    """(k, i, j, 3) LPS centre of every pixel of every un-tiled slice."""
    g = mosaic_geometry(h)
    k, i, j = np.meshgrid(*(np.arange(n) for n in shape), indexing="ij")
    return (g.origin + j[..., None] * g.spacing[0] * g.row_dir
            + i[..., None] * g.spacing[1] * g.col_dir
            + k[..., None] * g.spacing[2] * g.normal)


def assert_matches_nifti(h: InstanceHeader, stack: np.ndarray, ref_path: Path) -> None:
    """Every voxel of `stack` has the reference's value at the same world point.

    The reference's affine maps its voxels to RAS; medview's geometry is LPS. For each of our
    voxels, find the reference voxel at its position: the position must be a reference voxel
    centre to 1e-3 mm, every reference voxel must be hit exactly once, and the values must
    be equal.
    """
    import nibabel as nib

    ref = nib.load(ref_path)
    values = np.asanyarray(ref.dataobj)
    assert values.size == stack.size
    affine = ref.affine
    lps = _lps_positions(h, stack.shape)
    ras = lps * (-1, -1, 1)
    inverse = np.linalg.inv(affine)
    ijk = ras @ inverse[:3, :3].T + inverse[:3, 3]
    index = np.rint(ijk).astype(int)
    back = (index @ affine[:3, :3].T + affine[:3, 3]) * (-1, -1, 1)
    assert np.abs(back - lps).max() < 1e-3
    assert ((index >= 0) & (index < values.shape)).all()
    flat = np.ravel_multi_index(index.reshape(-1, 3).T, values.shape)
    assert np.unique(flat).size == values.size
    np.testing.assert_array_equal(values[index[..., 0], index[..., 1], index[..., 2]], stack)


@pytest.fixture(scope="module")
def ts_headers(data_dir) -> dict[int, InstanceHeader]:
    folder = data_dir / "dcm_qa_ts" / "In"
    return {n: scan_file(folder / f"{n}.dcm") for n in range(1, 10)}


def test_nine_transfer_syntaxes_give_identical_pixels(ts_headers):
    syntaxes = {h.transfer_syntax_uid for h in ts_headers.values()}
    assert len(syntaxes) >= 7  # little/big endian, implicit, RLE, JPEG lossless, LS, 2000
    first = decode(ts_headers[1])
    assert first.shape == (1, 384, 384) and first.dtype == np.uint16
    for n, h in ts_headers.items():
        assert h.is_mosaic and h.mosaic_count == 35, n
        np.testing.assert_array_equal(decode(h), first, err_msg=f"{n}.dcm")


@pytest.mark.parametrize("n", range(1, 10))
def test_transfer_syntax_mosaic_equals_dcm2niix(ts_headers, data_dir, n):
    h = ts_headers[n]
    stack = slices(h)
    assert stack.shape == (35, 64, 64)
    assert_matches_nifti(h, stack, data_dir / "dcm_qa_ts" / "Ref" / f"{n}.nii")


@pytest.mark.parametrize("name", sorted(TWELVE_BIT))
def test_twelve_bit_mosaic_equals_dcm2niix(data_dir, name):
    h = scan_file(data_dir / "dcm_qa_12bit" / "In" / name)
    assert h.is_mosaic
    stack = slices(h)
    assert_matches_nifti(h, stack, data_dir / "dcm_qa_12bit" / "Ref" / f"{TWELVE_BIT[name]}.nii")


def test_geometry_and_slices_agree_with_nibabel(ts_headers):
    from nibabel.nicom import dicomwrappers

    for n in (1, 5, 9):
        h = ts_headers[n]
        wrapper = dicomwrappers.wrapper_from_file(h.path)
        assert type(wrapper).__name__ == "MosaicWrapper"
        g = mosaic_geometry(h)
        np.testing.assert_allclose(g.origin, wrapper.image_position, atol=1e-6)
        np.testing.assert_allclose(g.normal, wrapper.slice_normal, atol=1e-6)
        np.testing.assert_array_equal(slices(h), np.moveaxis(wrapper.get_data(), -1, 0))


def test_header_without_csa_normal_still_places_this_mosaic(ts_headers, data_dir):
    # here the cross product already points the CSA way: same positions without it
    h = dataclasses.replace(ts_headers[1], csa_slice_normal=None)
    assert_matches_nifti(h, slices(h), data_dir / "dcm_qa_ts" / "Ref" / "1.nii")

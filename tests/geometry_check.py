"""Compare a Volume with a reference NIfTI or with the original slices, in patient space."""

from __future__ import annotations

import numpy as np

from medview.core.volume import Volume

LPS_FROM_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


def assert_matches_nifti(vol: Volume, nifti_path, *, atol_mm: float = 1e-3) -> None:
    """``vol`` holds the same voxels as the NIfTI at the same world positions (within atol).

    The NIfTI may order its axes differently (dcm2niix flips rows and may swap axes): the
    mapping from reference index to medview index must be a signed permutation with an
    integer offset, and every voxel must land within ``atol_mm`` of the same LPS point.
    """
    import nibabel as nib

    img = nib.load(str(nifti_path))
    ref = np.asanyarray(img.dataobj).astype(np.float64)
    slope, inter = img.header.get_slope_inter()
    if slope is not None and np.isfinite(slope):
        ref = ref * slope + (inter or 0.0)
    while ref.ndim > 3 and ref.shape[-1] == 1:
        ref = ref[..., 0]
    assert ref.ndim == 3, f"reference is not 3D: {ref.shape}"
    a_ref = LPS_FROM_RAS @ img.affine  # ref index (i, j, k) -> LPS
    t = np.linalg.inv(vol.affine) @ a_ref  # ref index -> medview index (x, y, z)
    perm = np.round(t[:3, :3])
    assert np.allclose(t[:3, :3], perm, atol=1e-4), f"axes are not a permutation:\n{t[:3, :3]}"
    offset = np.round(t[:3, 3])
    # the world positions of the reference's corners, mapped both ways, agree within atol
    shape = np.array(ref.shape)
    corners = np.array([[i, j, k] for i in (0, shape[0] - 1) for j in (0, shape[1] - 1)
                        for k in (0, shape[2] - 1)], dtype=float)
    ours = corners @ perm.T + offset
    world_ref = corners @ a_ref[:3, :3].T + a_ref[:3, 3]
    world_ours = vol.index_to_lps(ours)
    err = np.abs(world_ref - world_ours).max()
    assert err <= atol_mm, f"voxel-to-world mappings differ by {err:.5f} mm"
    # every reference voxel maps inside our grid with the same value
    ii, jj, kk = np.meshgrid(*(np.arange(s) for s in shape), indexing="ij")
    idx = np.stack([ii, jj, kk], -1).reshape(-1, 3) @ perm.T + offset
    idx = idx.astype(int)
    nx, ny, nz = vol.shape[2], vol.shape[1], vol.shape[0]
    assert (idx >= 0).all() and (idx[:, 0] < nx).all() and (idx[:, 1] < ny).all() and (
        idx[:, 2] < nz
    ).all(), "reference voxels fall outside medview's grid"
    assert ref.size == vol.array.size, f"voxel counts differ: {ref.shape} vs {vol.shape}"
    ours_vals = vol.array[idx[:, 2], idx[:, 1], idx[:, 0]].astype(np.float64)
    diff = np.abs(ours_vals - ref.reshape(-1))
    assert diff.max() <= 1e-3 * max(1.0, np.abs(ref).max()), (
        f"{int((diff > 0).sum())} voxels differ (max {diff.max()})"
    )


def assert_slices_in_place(vol: Volume, datasets, *, rtol: float = 0.0) -> int:
    """Every pixel of every original slice sits in ``vol`` at the LPS point its header gives.

    ``datasets`` are pydicom datasets with pixels. For each, the pixel (column c, row r) is
    placed at IPP + c * ΔX * row_dir + r * ΔY * col_dir; that point must be an integer
    index of ``vol`` holding the same physical value. Returns the number of slices checked.
    """
    checked = 0
    for ds in datasets:
        ipp = np.array([float(v) for v in ds.ImagePositionPatient])
        iop = np.array([float(v) for v in ds.ImageOrientationPatient])
        dy, dx = (float(v) for v in ds.PixelSpacing)
        rows, cols = int(ds.Rows), int(ds.Columns)
        rr, cc = np.mgrid[0:rows, 0:cols]
        pts = ipp + cc[..., None] * dx * iop[:3] + rr[..., None] * dy * iop[3:]
        idx = vol.lps_to_index(pts.reshape(-1, 3))
        rounded = np.round(idx)
        assert np.abs(idx - rounded).max() < 1e-3, (
            f"slice {ds.filename}: pixels fall between medview voxels "
            f"(off by {np.abs(idx - rounded).max():.4f} voxel)"
        )
        rounded = rounded.astype(int)
        values = ds.pixel_array.astype(np.float64) * float(ds.get("RescaleSlope", 1) or 1) + float(
            ds.get("RescaleIntercept", 0) or 0
        )
        ours = vol.array[rounded[:, 2], rounded[:, 1], rounded[:, 0]].astype(np.float64)
        np.testing.assert_allclose(ours, values.reshape(-1), rtol=rtol, atol=1e-3,
                                   err_msg=f"slice {ds.filename}")
        checked += 1
    return checked

"""Volumes to and from NIfTI (.nii, .nii.gz), NRRD (.nrrd) and MetaImage (.mha, .mhd).

NIfTI stores RAS; medview's LPS affine is flipped on x and y as dcm2niix does, sform and
qform both set (code 1, scanner). NIfTI readers disagree on sheared affines, so a
gantry-tilted stack is resampled onto an orthogonal grid first (dcm2niix's way); NRRD and
MetaImage store the sheared grid exactly.

Every write is atomic: the file is written under a temporary name in the target folder and
renamed into place, so a failure leaves nothing half-written.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from medview.atomic import atomic_file
from medview.core.made_up import describe
from medview.core.volume import Volume

__all__ = ["SUFFIXES", "read_volume", "volume_suffix", "write_volume"]

SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".nhdr", ".mha", ".mhd")


def volume_suffix(path: str | os.PathLike) -> str:
    """The recognised suffix of ``path`` (lower case), or raise ValueError."""
    name = str(path).lower()
    for s in SUFFIXES:
        if name.endswith(s):
            return s
    raise ValueError(
        f"{path}: unknown volume format; use one of {', '.join(SUFFIXES)}"
    )


#: NIfTI-1 stores its dimensions as int16
_NIFTI1_MAX_DIM = 32767


def _write_nifti(volume: Volume, tmp: Path) -> None:
    import nibabel as nib

    # NIfTI index order is (i, j, k) = (x, y, z): transpose [z, y, x] -> [x, y, z]
    if volume.is_rgb:
        rgb = np.ascontiguousarray(volume.array.transpose(2, 1, 0, 3))
        data = rgb.view([("R", "u1"), ("G", "u1"), ("B", "u1")]).reshape(rgb.shape[:3])
    else:
        data = volume.array.transpose(2, 1, 0)
    img = nib.Nifti1Image(data, volume.affine_ras)
    img.header.set_xyzt_units("mm", "sec")
    img.set_sform(volume.affine_ras, code=1)
    img.set_qform(volume.affine_ras, code=1)
    desc = describe(str(volume.metadata.get("SeriesDescription") or ""), volume.metadata,
                    volume.shape[0], limit=79)
    img.header["descrip"] = desc.encode("ascii", "replace")
    nib.save(img, str(tmp))


def write_volume(volume: Volume, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Write ``volume`` to ``path``; the format follows the suffix.

    Parameters
    ----------
    volume : Volume
    path : path
        Ends in .nii, .nii.gz, .nrrd, .nhdr, .mha or .mhd.
    overwrite : bool
        Replace an existing file; without it an existing file is an error.

    Returns
    -------
    Path
        The path written.

    Raises
    ------
    FileExistsError
        If ``path`` exists and ``overwrite`` is False.
    ValueError
        If the suffix is not a known format, or NIfTI cannot hold the volume's size.
    """
    path = Path(path)
    suffix = volume_suffix(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True (--force) to replace it")
    if suffix in (".nhdr", ".mhd"):
        # a header + data pair cannot be renamed atomically as one; write them side by side
        import SimpleITK as sitk

        sitk.WriteImage(volume.to_sitk(), str(path), useCompression=False)
        return path
    # overwrite=True: the check above gave the --force message; a file that appears meanwhile
    # is replaced, as before
    with atomic_file(path, overwrite=True, suffix=suffix) as tmp:
        if suffix in (".nii", ".nii.gz"):
            from medview.core.registration.oblique import resample_orthogonal

            ortho = resample_orthogonal(volume)
            if max(ortho.shape[:3]) > _NIFTI1_MAX_DIM:
                raise ValueError(
                    f"{path}: NIfTI-1 holds at most {_NIFTI1_MAX_DIM} voxels along an axis; "
                    f"this volume is {'×'.join(map(str, ortho.shape[:3]))} ([z, y, x]): "
                    "write .nrrd or .mha instead")
            _write_nifti(ortho, tmp)
        else:
            import SimpleITK as sitk

            sitk.WriteImage(volume.to_sitk(), str(tmp), useCompression=True)
    return path


def read_volume(path: str | os.PathLike) -> Volume:
    """Read a NIfTI, NRRD or MetaImage file as a Volume (LPS geometry)."""
    path = Path(path)
    suffix = volume_suffix(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    if suffix in (".nii", ".nii.gz"):
        import nibabel as nib

        img = nib.load(str(path))
        data = np.asanyarray(img.dataobj)
        if data.dtype.names:  # RGB24
            data = np.stack([data[n] for n in data.dtype.names], axis=-1)
            arr = np.ascontiguousarray(data.transpose(2, 1, 0, 3))
        else:
            if data.ndim > 3:
                data = data[..., 0] if data.shape[3] == 1 else data
            if data.ndim != 3:
                raise ValueError(f"{path}: expected a 3D image, got shape {data.shape}")
            arr = np.ascontiguousarray(data.transpose(2, 1, 0))
        affine = np.diag([-1.0, -1.0, 1.0, 1.0]) @ img.affine
        m = affine[:3, :3]
        spacing = np.linalg.norm(m, axis=0)
        return Volume(arr, tuple(spacing), tuple(affine[:3, 3]), m / spacing,
                      {"source_file": str(path)})
    import SimpleITK as sitk

    return Volume.from_sitk(sitk.ReadImage(str(path)), {"source_file": str(path)})

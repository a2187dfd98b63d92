"""What runs inside a forked child: medview's four entry points and the three references.

Each runner returns a JSON-able dict. Loaders also say which of the folder's intact slices
they delivered (``found``, one bool per intact slice), checked against the slice's
reference: every pixel of the original slice, placed in patient space with its own
ImagePositionPatient / ImageOrientationPatient / PixelSpacing, must land on a voxel centre
of an output volume (within 0.05 voxel) holding the original physical value.

Expected errors (the tool's way of saying "bad input") are returned, not raised:
medview's ``DicomError`` for ``medview.load``, an exit status with a message for the CLI,
SimpleITK's ``RuntimeError``, a non-zero exit of dcm2niix, any ``Exception`` pydicom raises
for one file of the loop. Anything else escapes and the harness calls it a crash.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np

TOL_VOXEL = 0.05


# ---------------------------------------------------------------------------------------------
# the intact-slice check
# ---------------------------------------------------------------------------------------------
def _slice_in(ref: dict, values: np.ndarray, array: np.ndarray, affine: np.ndarray) -> bool:
    """Whether ``array`` [z, y, x] with ``affine`` (x, y, z index → LPS) holds the slice."""
    if array.ndim != 3 or not np.all(np.isfinite(affine)):
        return False
    try:
        inv = np.linalg.inv(affine[:3, :3])
    except np.linalg.LinAlgError:
        return False
    iop = np.asarray(ref["orientation"], dtype=float)
    row_mm, col_mm = ref["spacing"]
    start = inv @ (np.asarray(ref["position"], dtype=float) - affine[:3, 3])
    step_col = inv @ (iop[:3] * col_mm)  # one pixel along a row (next column)
    step_row = inv @ (iop[3:] * row_mm)  # one pixel down a column (next row)
    rows, cols = values.shape
    corners = [start, start + step_col * (cols - 1), start + step_row * (rows - 1),
               start + step_col * (cols - 1) + step_row * (rows - 1)]
    for v in (start, step_col, step_row, *corners):
        if np.any(np.abs(v - np.round(v)) > TOL_VOXEL):
            return False
    nz, ny, nx = array.shape
    for c in corners:
        x, y, z = np.round(c).astype(int)
        if not (0 <= x < nx and 0 <= y < ny and 0 <= z < nz):
            return False
    s0, sc, sr = (np.round(v).astype(int) for v in (start, step_col, step_row))
    ii, jj = np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij")
    x = s0[0] + jj * sc[0] + ii * sr[0]
    y = s0[1] + jj * sc[1] + ii * sr[1]
    z = s0[2] + jj * sc[2] + ii * sr[2]
    got = array[z, y, x].astype(np.float64)
    return bool(np.all(np.abs(got - values) <= 0.01 + 1e-4 * np.abs(values)))


def find_intact(refs: list[dict], candidates) -> list[bool]:
    """For each intact slice, whether any candidate (array, affine) holds it."""
    found = []
    for ref in refs:
        values = np.load(ref["ref"]).astype(np.float64)
        found.append(any(_slice_in(ref, values, a, m) for a, m in candidates))
    return found


def _affine(direction, spacing, origin) -> np.ndarray:
    a = np.eye(4)
    a[:3, :3] = np.asarray(direction, dtype=float).reshape(3, 3) * np.asarray(spacing)[None, :]
    a[:3, 3] = origin
    return a


# ---------------------------------------------------------------------------------------------
# medview
# ---------------------------------------------------------------------------------------------
def medview_cli(argv: list[str]) -> dict:
    """``medview ARGV`` in-process; an exception escaping ``main`` is a crash."""
    from medview.cli import main

    return {"exit": main(argv)}


def medview_load(folder: str, refs: list[dict]) -> dict:
    """``medview.load(folder)`` (the series holding most intact slices when there are several)."""
    import medview
    from medview.dicom.errors import AmbiguousSourceError, DicomError
    from medview.dicom.series.loading import find_series, plan_load

    intact = {r["path"] for r in refs}
    out: dict = {"found": [False] * len(refs), "reported": [False] * len(refs)}
    try:
        try:
            vol = medview.load(folder)
        except AmbiguousSourceError:
            plans, _ = find_series(folder)
            best = max(plans, key=lambda p: sum(h.path in intact for h in p.headers))
            out["series"] = best.series_uid
            vol = medview.load(folder, series=best.series_uid)
    except DicomError as exc:
        out["rejected"] = f"{type(exc).__name__}: {exc}"[:1000]
        return out
    out["warnings"] = [w[:300] for w in vol.warnings]
    arr = vol.array if vol.array.ndim == 3 else np.empty((0, 0, 0))
    out["found"] = find_intact(refs, [(arr, vol.affine)])
    # what medview said about the slices it did not deliver as they are: placed in another
    # stack (medview lists the split), named in a warning, or used in a stack it resampled
    # onto a uniform grid because slices are missing (the gap rule; the warning says so)
    plan, _ = plan_load(folder, series=out.get("series"))
    said = {s.header.path for st in plan.stacks if st is not plan.stack for s in st.slices}
    if plan.stack.resample_t is not None:
        said.update(s.header.path for s in plan.stack.slices)
    text = " ".join(vol.warnings)
    out["reported"] = [r["path"] in said or Path(r["path"]).name in text for r in refs]
    return out


# ---------------------------------------------------------------------------------------------
# the references
# ---------------------------------------------------------------------------------------------
def dcm2niix_bin() -> str:
    """The dcm2niix of this environment (the pip wheel in the venv), else the PATH's."""
    here = Path(sys.executable).parent / "dcm2niix"
    if here.exists():
        return str(here)
    import shutil

    found = shutil.which("dcm2niix")
    if not found:
        raise FileNotFoundError("dcm2niix is not installed (pip install dcm2niix)")
    return found


def _limit_memory(limit: int):
    def apply() -> None:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

    return apply


def dcm2niix(folder: str, outdir: str, refs: list[dict], timeout_s: float,
             mem_bytes: int) -> dict:
    """dcm2niix FOLDER → NIfTI files (default options, uncompressed), then the slice check."""
    import resource

    os.makedirs(outdir, exist_ok=True)
    try:
        proc = subprocess.run([dcm2niix_bin(), "-z", "n", "-b", "n", "-f", "out_%s", "-o",
                               outdir, folder], capture_output=True, timeout=timeout_s,
                              preexec_fn=_limit_memory(mem_bytes), check=False)
    except subprocess.TimeoutExpired:
        return {"tool_timeout": True}
    out: dict = {"exit": proc.returncode,
                 "tool_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
                 "stderr": proc.stderr.decode(errors="replace")[-1500:]}
    if proc.returncode < 0:
        out["signal"] = -proc.returncode
        return out
    import nibabel as nib

    candidates, unreadable = [], 0
    for nii in sorted(Path(outdir).glob("*.nii")):
        try:
            img = nib.load(nii)
            data = np.asarray(img.dataobj, dtype=np.float64)
        except Exception:  # an output nibabel refuses (NaN intercept, empty): delivers nothing
            unreadable += 1
            continue
        lps = np.diag([-1.0, -1.0, 1.0, 1.0]) @ img.affine
        if data.ndim == 2:
            data = data[:, :, np.newaxis]
        vols = [data] if data.ndim == 3 else \
            [data[..., t] for t in range(data.shape[3])] if data.ndim == 4 else []
        candidates += [(np.ascontiguousarray(v.transpose(2, 1, 0)), lps) for v in vols]
    out["outputs"], out["unreadable_outputs"] = len(candidates), unreadable
    out["found"] = find_intact(refs, candidates)
    return out


def simpleitk(folder: str, refs: list[dict]) -> dict:
    """SimpleITK's ImageSeriesReader on every series GDCM finds in FOLDER."""
    import SimpleITK as sitk

    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(1)
    candidates, errors = [], []
    try:
        ids = sitk.ImageSeriesReader.GetGDCMSeriesIDs(folder)
    except RuntimeError as exc:  # SimpleITK's way of refusing input
        return {"outputs": 0, "rejected": str(exc)[-300:], "found": [False] * len(refs)}
    for sid in ids:
        try:
            names = sitk.ImageSeriesReader.GetGDCMSeriesFileNames(folder, sid)
            reader = sitk.ImageSeriesReader()
            reader.SetFileNames(names)
            img = reader.Execute()
        except RuntimeError as exc:
            errors.append(str(exc)[-300:])
            continue
        if img.GetNumberOfComponentsPerPixel() != 1 or img.GetDimension() != 3:
            continue
        arr = sitk.GetArrayFromImage(img)
        candidates.append((arr, _affine(img.GetDirection(), img.GetSpacing(), img.GetOrigin())))
    return {"outputs": len(candidates), "errors": errors[:5],
            "found": find_intact(refs, candidates)}


def pydicom_loop(folder: str, refs: list[dict]) -> dict:
    """``dcmread`` + ``pixel_array`` per file; each slice placed by its own header."""
    import pydicom

    candidates, errors = [], 0
    for path in sorted(Path(folder).iterdir()):
        try:
            ds = pydicom.dcmread(path)
            arr = ds.pixel_array.astype(np.float64)
            arr = arr * float(ds.get("RescaleSlope", 1) or 1) + float(
                ds.get("RescaleIntercept", 0) or 0)
            iop = np.asarray(ds.ImageOrientationPatient, dtype=float)
            row_mm, col_mm = (float(v) for v in ds.PixelSpacing)
            direction = np.column_stack([iop[:3], iop[3:], np.cross(iop[:3], iop[3:])])
            affine = _affine(direction, (col_mm, row_mm, 1.0),
                             np.asarray(ds.ImagePositionPatient, dtype=float))
        except Exception:
            errors += 1
            continue
        if arr.ndim == 2:
            candidates.append((arr[np.newaxis], affine))
    return {"outputs": len(candidates), "file_errors": errors,
            "found": find_intact(refs, candidates)}

"""The phantom's anatomy: CT and PET volumes, lesions and grid geometry, without any DICOM.

The phantom is a chest/abdomen: air around an elliptical body with a subcutaneous fat rim,
soft tissue, liver, kidneys, heart, aorta, two lungs with vessels, a spine (vertebral bodies with
cortex, marrow and discs, posterior arch, spinal canal), ribs, and a few spherical lesions of
known centre, radius, HU and SUV (:func:`phantom_lesions`).

The anatomy fits the grid as a technologist fits a scan: the body fills about 90 % of the
in-plane field of view and the scan range runs from the upper abdomen (first slice, inferior) to
the lung apices (last slice, superior). It is defined in millimetres in the CT grid's own frame
(``index * spacing``), so a PET volume on another grid of the same frame of reference
(:func:`pet_phantom_volume`) sees the same organs and lesions at the same patient positions.

:mod:`phantoms` writes these volumes as DICOM series.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from medview.core.volume import Volume

__all__ = [
    "Lesion",
    "ct_phantom_volume",
    "default_origin_lps",
    "pet_phantom_volume",
    "phantom_lesions",
]

# -- tissues ---------------------------------------------------------------------------------
(AIR, FAT, SOFT, LUNG, VESSEL, LIVER, KIDNEY, AORTA, HEART, MARROW, CORTEX, RIB, DISC, CSF,
 ARCH) = range(15)
_LESION0 = 16
_HU = np.zeros(32, np.float32)
_HU[:15] = [-1000, -100, 40, -850, 40, 60, 30, 45, 45, 400, 1200, 800, 80, 10, 700]
_SUV = np.zeros(32, np.float32)
_SUV[:15] = [0.0, 0.3, 0.8, 0.4, 1.6, 2.3, 3.0, 1.8, 2.0, 1.5, 0.5, 0.8, 0.8, 0.2, 1.0]

# name, x and y offsets from the grid centre and radius in body-scale mm, height as a fraction
# of the scan range, HU, SUV
_LESIONS = (
    ("lung_nodule_right", -80.0, -10.0, 0.75, 7.0, 30.0, 6.0),
    ("lung_nodule_left", 85.0, 15.0, 0.62, 4.5, 20.0, 4.0),
    ("liver_metastasis", -60.0, -10.0, 0.30, 12.0, 5.0, 8.0),
    ("mediastinal_node", -5.0, -20.0, 0.80, 8.0, 35.0, 10.0),
    ("vertebral_metastasis", 0.0, 50.0, 0.40, 8.0, 900.0, 7.0),
)
# lung vessels: offsets as fractions of the lung's semi-axes, radius (body mm), phase
_VESSELS = ((-0.5, -0.3, 3.5, 0.0), (0.3, -0.5, 2.5, 1.3), (0.1, 0.2, 4.0, 2.1),
            (-0.3, 0.5, 2.0, 3.0), (0.5, 0.4, 2.5, 4.2), (0.0, -0.1, 1.8, 5.0))

HU_MIN, HU_MAX = -1024, 3071  # what 12 unsigned bits with intercept -1024 hold
F18_HALF_LIFE_S = 6586.2


@dataclass(frozen=True)
class Lesion:
    """A spherical lesion of the phantom.

    Attributes
    ----------
    name : str
    center_zyx : tuple of 3 int
        Index ``(z, y, x)`` of the CT voxel at the sphere's centre.
    center_mm : tuple of 3 float
        The centre in the CT grid's frame, ``index * spacing`` as ``(x, y, z)`` mm; add to the
        origin along the grid's axes for LPS (``Volume.index_to_lps`` does this).
    radius_mm : float
    hu : float
        CT value inside the sphere (before noise).
    suv : float
        PET standardised uptake value (body weight) inside the sphere (before blur and noise).
    """

    name: str
    center_zyx: tuple[int, int, int]
    center_mm: tuple[float, float, float]
    radius_mm: float
    hu: float
    suv: float


# -- anatomy ---------------------------------------------------------------------------------
class _Painter:
    """Paints tissue labels into one slice whose pixel (j, i) is at ``(x0 + i dx, y0 + j dy)``."""

    def __init__(self, lab: np.ndarray, x0: float, y0: float, dx: float, dy: float):
        self.lab, self.x0, self.y0, self.dx, self.dy = lab, x0, y0, dx, dy

    def _span(self, c: float, r: float, o: float, d: float, n: int) -> tuple[int, int]:
        return max(0, math.floor((c - r - o) / d)), min(n, math.ceil((c + r - o) / d) + 1)

    def ellipse(self, label: int, cx: float, cy: float, a: float, b: float, *,
                inside: int | None = None) -> None:
        if a <= 0 or b <= 0:
            return
        ny, nx = self.lab.shape
        i0, i1 = self._span(cx, a, self.x0, self.dx, nx)
        j0, j1 = self._span(cy, b, self.y0, self.dy, ny)
        if i0 >= i1 or j0 >= j1:
            return
        u = ((self.x0 + self.dx * np.arange(i0, i1, dtype=np.float32) - cx) / a) ** 2
        v = ((self.y0 + self.dy * np.arange(j0, j1, dtype=np.float32) - cy) / b) ** 2
        mask = v[:, None] + u[None, :] <= 1.0
        sub = self.lab[j0:j1, i0:i1]
        if inside is not None:
            mask &= sub == inside
        sub[mask] = label


def _bump(t: float, t0: float, t1: float) -> float:
    """0 outside ``[t0, t1]``, a smooth half-sine bump inside (organ size along z)."""
    if not t0 < t < t1:
        return 0.0
    return math.sqrt(math.sin(math.pi * (t - t0) / (t1 - t0)))


@dataclass(frozen=True)
class _Anatomy:
    """The phantom in the CT grid's millimetre frame: centre, scan length, body scale."""

    cx: float
    cy: float
    z_len: float
    s: float
    spacing: tuple[float, float, float]

    @classmethod
    def for_grid(cls, shape: Sequence[int], spacing_xyz: Sequence[float]) -> _Anatomy:
        nz, ny, nx = shape
        sx, sy, sz = spacing_xyz
        return cls((nx - 1) * sx / 2, (ny - 1) * sy / 2, max((nz - 1) * sz, sz),
                   min(nx * sx, ny * sy) / 360.0, (sx, sy, sz))

    def lesions(self) -> list[Lesion]:
        sx, sy, sz = self.spacing
        out = []
        for name, fx, fy, t, r, hu, suv in _LESIONS:
            idx = (round(t * self.z_len / sz), round((self.cy + fy * self.s) / sy),
                   round((self.cx + fx * self.s) / sx))
            mm = (idx[2] * sx, idx[1] * sy, idx[0] * sz)
            out.append(Lesion(name, idx, mm, r * self.s, hu, suv))
        return out

    def paint(self, p: _Painter, zm: float) -> None:
        """Paint the tissues of the slice at height ``zm`` (mm from the first slice)."""
        s, cx, cy = self.s, self.cx, self.cy
        t = zm / self.z_len
        a, b = (165.0 - 8.0 * t) * s, (112.0 - 6.0 * t) * s
        p.ellipse(FAT, cx, cy, a, b)
        p.ellipse(SOFT, cx, cy, a - 12 * s, b - 12 * s)
        if f := _bump(t, 0.08, 0.55):  # liver, the patient's right (smaller x)
            p.ellipse(LIVER, cx - 55 * s, cy - 15 * s, 80 * s * f, 70 * s * f)
        if f := _bump(t, 0.06, 0.32):
            for side in (-1, 1):
                p.ellipse(KIDNEY, cx + side * 60 * s, cy + 45 * s, 20 * s * f, 28 * s * f)
        u = (t - 0.45) / 0.53
        if 0 < u < 1:
            f = math.sqrt(min(1.0, 3 * u) * (1 - u * u))
            for side in (-1, 1):
                lx, ly, la, lb = cx + side * 72 * s, cy - 5 * s, 48 * s * f, 78 * s * f
                p.ellipse(LUNG, lx, ly, la, lb)
                for k, (fx, fy, r, phase) in enumerate(_VESSELS):
                    wiggle = 5 * s * math.sin(zm / (40 * s) + phase + side)
                    vx, vy = lx + side * fx * la + wiggle, ly + fy * lb
                    rv = r * s * (1.0 - 0.4 * u) if k % 2 else r * s
                    p.ellipse(VESSEL, vx, vy, rv, rv, inside=LUNG)
        if f := _bump(t, 0.48, 0.74):
            p.ellipse(HEART, cx + 20 * s, cy - 35 * s, 55 * s * f, 45 * s * f)
        p.ellipse(AORTA, cx + 18 * s, cy + 18 * s, 12 * s, 12 * s)
        self._spine(p, zm)
        if t > 0.42:
            self._ribs(p, zm, a - 20 * s, b - 20 * s)
        for n, les in enumerate(self.lesions()):
            dz = zm - les.center_mm[2]
            if abs(dz) < les.radius_mm:
                r = math.sqrt(les.radius_mm**2 - dz * dz)
                p.ellipse(_LESION0 + n, les.center_mm[0], les.center_mm[1], r, r)

    def _spine(self, p: _Painter, zm: float) -> None:
        s, cx, cy = self.s, self.cx, self.cy
        p.ellipse(ARCH, cx, cy + 81 * s, 13 * s, 13 * s)
        p.ellipse(ARCH, cx, cy + 100 * s, 4 * s, 9 * s)
        p.ellipse(CSF, cx, cy + 81 * s, 8 * s, 8 * s)
        if (zm % (30 * s)) < 6 * s:  # intervertebral disc
            p.ellipse(DISC, cx, cy + 50 * s, 20 * s, 20 * s)
        else:
            p.ellipse(CORTEX, cx, cy + 50 * s, 20 * s, 20 * s)
            p.ellipse(MARROW, cx, cy + 50 * s, 17.5 * s, 17.5 * s)

    def _ribs(self, p: _Painter, zm: float, ra: float, rb: float) -> None:
        # each rib leaves the spine at height z_j and runs forwards and down: in an axial slice
        # it shows as a small section where its height passes through the slice
        s = self.s
        pitch, drop = 25 * s, 50 * s / math.radians(130)
        for j in range(40):
            theta = (0.40 * self.z_len + j * pitch - zm) / drop + math.radians(20)
            if math.radians(20) <= theta <= math.radians(150):
                for side in (-1, 1):
                    x = self.cx + side * ra * math.sin(theta)
                    y = self.cy + rb * math.cos(theta)
                    p.ellipse(RIB, x, y, 5 * s, 5 * s)


def _labels(anat: _Anatomy, shape_yx: tuple[int, int], x0: float, y0: float, dx: float,
            dy: float, zm: float) -> np.ndarray:
    lab = np.zeros(shape_yx, np.uint8)
    anat.paint(_Painter(lab, x0, y0, dx, dy), zm)
    return lab


def _lut(table: np.ndarray, anat: _Anatomy, which: str) -> np.ndarray:
    lut = table.copy()
    for n, les in enumerate(anat.lesions()):
        lut[_LESION0 + n] = getattr(les, which)
    return lut


def _check_grid(shape: Sequence[int], spacing_xyz: Sequence[float]) -> tuple[tuple, tuple]:
    shape = tuple(int(n) for n in shape)
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(f"shape: expected 3 positive sizes (z, y, x), got {shape}")
    spacing = tuple(float(v) for v in spacing_xyz)
    if len(spacing) != 3 or not all(math.isfinite(v) and v > 0 for v in spacing):
        raise ValueError(f"spacing_xyz: expected 3 positive millimetre values, got {spacing_xyz}")
    return shape, spacing


def phantom_lesions(shape: Sequence[int] = (300, 512, 512),
                    spacing_xyz: Sequence[float] = (0.7, 0.7, 1.0)) -> list[Lesion]:
    """The lesions of the phantom on a CT grid of ``shape`` (z, y, x) and ``spacing_xyz`` (mm)."""
    shape, spacing = _check_grid(shape, spacing_xyz)
    return _Anatomy.for_grid(shape, spacing).lesions()


def ct_phantom_volume(shape: Sequence[int] = (300, 512, 512),
                      spacing_xyz: Sequence[float] = (0.7, 0.7, 1.0), seed: int = 0, *,
                      noise_hu: float = 15.0) -> np.ndarray:
    """Build the CT phantom in Hounsfield units.

    Parameters
    ----------
    shape : tuple of 3 int
        ``(nz, ny, nx)``; slice 0 is the most inferior.
    spacing_xyz : tuple of 3 float
        Voxel size along x, y, z in mm.
    seed : int
        Seed of the noise; the same seed gives the same volume.
    noise_hu : float
        Standard deviation of the white Gaussian noise added to every voxel (HU).

    Returns
    -------
    ndarray, shape (nz, ny, nx), int16
        HU clipped to [-1024, 3071], the range of 12-bit stored values with intercept -1024.
    """
    shape, spacing = _check_grid(shape, spacing_xyz)
    anat = _Anatomy.for_grid(shape, spacing)
    lut = _lut(_HU, anat, "hu")
    nz, ny, nx = shape
    out = np.empty(shape, np.int16)

    def one(k: int) -> None:
        lab = _labels(anat, (ny, nx), 0.0, 0.0, spacing[0], spacing[1], k * spacing[2])
        hu = lut[lab]
        if noise_hu:
            rng = np.random.default_rng([int(seed), k])
            hu += rng.standard_normal((ny, nx), dtype=np.float32) * np.float32(noise_hu)
        np.clip(np.rint(hu, out=hu), HU_MIN, HU_MAX, out=hu)
        out[k] = hu

    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        list(pool.map(one, range(nz)))
    return out


# -- geometry --------------------------------------------------------------------------------
def _axes(orientation: Sequence[float]) -> np.ndarray:
    """3×3 matrix whose columns are the row (x), column (y) and normal (z) directions."""
    o = np.asarray(orientation, dtype=np.float64).ravel()
    if o.size != 6:
        raise ValueError(f"orientation: expected 6 direction cosines, got {orientation}")
    row, col = o[:3], o[3:]
    if abs(np.linalg.norm(row) - 1) > 1e-4 or abs(np.linalg.norm(col) - 1) > 1e-4 \
            or abs(row @ col) > 1e-4:
        raise ValueError(f"orientation: expected two orthogonal unit vectors, got {orientation}")
    return np.column_stack([row, col, np.cross(row, col)])


def default_origin_lps(shape: Sequence[int], spacing_xyz: Sequence[float],
                       orientation: Sequence[float] = (1, 0, 0, 0, 1, 0)) -> tuple:
    """The origin the writers use by default: the grid's centre at LPS (0, 0, 0)."""
    shape, spacing = _check_grid(shape, spacing_xyz)
    half = (np.array(shape[::-1]) - 1) * np.array(spacing) / 2
    return tuple(float(v) for v in -(_axes(orientation) @ half))


# -- PET -------------------------------------------------------------------------------------
def _pet_grid(ct_shape, ct_spacing, spacing):
    """PET shape covering the CT grid, and its voxel 0 in the CT grid's mm frame."""
    ct_ext = np.array(ct_shape[::-1]) * np.array(ct_spacing)
    n = np.maximum(1, np.ceil(ct_ext / np.array(spacing) - 1e-6)).astype(int)
    centre = (np.array(ct_shape[::-1]) - 1) * np.array(ct_spacing) / 2
    return (int(n[2]), int(n[1]), int(n[0])), centre - (n - 1) * np.array(spacing) / 2


def pet_phantom_volume(ct_shape: Sequence[int] = (300, 512, 512),
                       ct_spacing_xyz: Sequence[float] = (0.7, 0.7, 1.0),
                       ct_origin_lps: Sequence[float] | None = None,
                       orientation: Sequence[float] = (1, 0, 0, 0, 1, 0), *,
                       spacing_xyz: Sequence[float] = (4.0, 4.0, 4.0), seed: int = 0,
                       fwhm_mm: float = 6.0, noise: float = 0.1,
                       injected_dose_bq: float = 370e6, patient_weight_kg: float = 75.0,
                       uptake_s: float = 3600.0) -> Volume:
    """The PET-like activity of the phantom on a coarse grid covering the CT grid.

    Tissues get an SUV (body weight; lesions hot), converted to Bq/ml decay-corrected to the
    series start: ``C = SUV · dose · 2^(−uptake/T½) / weight_g`` (F-18). The activity is
    computed at twice the resolution, blurred with a Gaussian of ``fwhm_mm``, averaged down and
    given multiplicative Gaussian noise of relative size ``noise``.

    Parameters
    ----------
    ct_shape, ct_spacing_xyz, ct_origin_lps, orientation :
        The CT grid the anatomy is defined on (as given to :func:`write_ct_series`).
    spacing_xyz : tuple of 3 float
        PET voxel size in mm; the PET grid is centred on the CT grid and covers it.
    seed : int
        Seed of the noise.

    Returns
    -------
    Volume
        float32 Bq/ml, shape (nz, ny, nx), with the PET geometry (same orientation and frame of
        reference as the CT); metadata ``Units="BQML"`` and ``suv_factor`` (SUV per Bq/ml).
    """
    from scipy.ndimage import gaussian_filter

    ct_shape, ct_spacing = _check_grid(ct_shape, ct_spacing_xyz)
    spacing = _check_grid((1, 1, 1), spacing_xyz)[1]
    shape, first_mm = _pet_grid(ct_shape, ct_spacing, spacing)
    anat = _Anatomy.for_grid(ct_shape, ct_spacing)
    lut = _lut(_SUV, anat, "suv")
    fine = np.array(spacing) / 2
    x0, y0, z0 = first_mm - fine / 2  # centres of the 2×2×2 sub-voxels
    suv = np.empty((2 * shape[0], 2 * shape[1], 2 * shape[2]), np.float32)
    for k in range(suv.shape[0]):
        lab = _labels(anat, suv.shape[1:], x0, y0, fine[0], fine[1], z0 + k * fine[2])
        suv[k] = lut[lab]
    if fwhm_mm > 0:
        sigma = fwhm_mm / (2 * math.sqrt(2 * math.log(2))) / fine[::-1]
        suv = gaussian_filter(suv, sigma, mode="constant")
    suv = suv.reshape(shape[0], 2, shape[1], 2, shape[2], 2).mean(axis=(1, 3, 5))
    if noise:
        rng = np.random.default_rng([int(seed), 11])
        suv *= 1 + noise * rng.standard_normal(suv.shape, dtype=np.float32)
        np.maximum(suv, 0, out=suv)
    bq_per_suv = injected_dose_bq * 2 ** (-uptake_s / F18_HALF_LIFE_S) / (patient_weight_kg * 1e3)
    axes = _axes(orientation)
    ct_origin = np.asarray(ct_origin_lps if ct_origin_lps is not None
                           else default_origin_lps(ct_shape, ct_spacing, orientation), float)
    return Volume((suv * np.float32(bq_per_suv)).astype(np.float32), spacing,
                  tuple(ct_origin + axes @ first_mm), axes,
                  {"Modality": "PT", "Units": "BQML", "suv_factor": 1.0 / bq_per_suv})

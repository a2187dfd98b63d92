"""Per-voxel feature stacks for pixel classification (the scribble classifier).

A feature stack gives every voxel a vector of F float32 values: its intensity and, at each scale
σ (millimetres), the Gaussian-smoothed image, the gradient magnitude of that smoothed image and
its Laplacian (a Laplacian of Gaussian), optionally a local binary pattern code and Gabor
magnitudes. These are the "standard" filters of ilastik and Trainable Weka Segmentation.

Definitions (so that a reference implementation gives the same numbers): with ``G`` the image
smoothed by SciPy's Gaussian kernel (``sigma_mm / spacing`` voxels per axis, truncated at 4σ,
borders reflected as ``scipy.ndimage``'s ``mode="reflect"``),

- gradient magnitude: ``sqrt(Σ_axis ((G[i+1] - G[i-1]) / (2 · spacing))²)`` in units/mm,
- Laplacian: ``Σ_axis (G[i+1] - 2 G[i] + G[i-1]) / spacing²`` in units/mm²,

over the in-plane axes (``mode="2d"``) or all three (``mode="3d"``), borders reflected.

Speed: features are computed slice by slice with OpenCV in float32 and never for the whole
volume at once: :func:`slice_features` gives the stack of one slice (``(F, ny·nx)``, a
feature per row), :func:`feature_stack` of a few slices, so that a classifier can compute and
predict chunk by chunk with bounded memory (see :mod:`medview.core.segmentation.classifier`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from medview.core._shared.checks import check_scalar
from medview.core.filters.smoothing import gaussian_kernel_1d
from medview.core.volume import Volume

__all__ = ["FeatureSpec", "feature_stack", "slice_features"]

_GABOR_THETAS = 4


@dataclass(frozen=True)
class FeatureSpec:
    """Which features to compute, at which scales (mm), in 2D (per slice) or 3D.

    Attributes
    ----------
    sigmas_mm : tuple of float
        Scales of the Gaussian, gradient and Laplacian features, in mm; each > 0.
    intensity : bool
        Include the voxel value itself.
    gaussian, gradient, laplacian : bool
        Include, per scale, the smoothed image, its gradient magnitude, its Laplacian.
    lbp : bool
        Include the rotation-invariant local binary pattern code (8 neighbours, radius 1
        voxel) of each slice (scikit-image's ``"ror"`` method), always in-plane.
    gabor : bool
        Include, per scale, the magnitude of 4 Gabor filters (orientations 0°, 45°, 90°,
        135°; wavelength 4σ), always in-plane.
    mode : {"2d", "3d"}
        Smooth and differentiate in-plane only, or across slices too.
    """

    sigmas_mm: tuple[float, ...] = (1.0, 2.0, 4.0)
    intensity: bool = True
    gaussian: bool = True
    gradient: bool = True
    laplacian: bool = True
    lbp: bool = False
    gabor: bool = False
    mode: Literal["2d", "3d"] = "2d"

    def __post_init__(self) -> None:
        sig = tuple(float(s) for s in self.sigmas_mm)
        if not all(np.isfinite(s) and s > 0 for s in sig):
            raise ValueError(f"sigmas_mm: expected positive millimetre values, got {sig}")
        object.__setattr__(self, "sigmas_mm", sig)
        if self.mode not in ("2d", "3d"):
            raise ValueError(f"mode: expected '2d' or '3d', got {self.mode!r}")
        if not self.names:
            raise ValueError("features: at least one feature must be enabled")
        if not sig and (self.gaussian or self.gradient or self.laplacian or self.gabor):
            raise ValueError("sigmas_mm: scale features need at least one scale")

    @property
    def names(self) -> tuple[str, ...]:
        """One name per feature, in the order of the stack's rows."""
        out = ["intensity"] if self.intensity else []
        for s in self.sigmas_mm:
            if self.gaussian:
                out.append(f"gaussian_{s:g}mm")
            if self.gradient:
                out.append(f"gradient_{s:g}mm")
            if self.laplacian:
                out.append(f"laplacian_{s:g}mm")
            if self.gabor:
                out += [f"gabor_{s:g}mm_{t * 180 // _GABOR_THETAS}deg"
                        for t in range(_GABOR_THETAS)]
        if self.lbp:
            out.append("lbp")
        return tuple(out)

    @property
    def count(self) -> int:
        return len(self.names)

    def halo(self, spacing: Sequence[float]) -> int:
        """Slices needed on each side of a slice to compute its features (0 in 2D)."""
        if self.mode == "2d" or not (self.gaussian or self.gradient or self.laplacian):
            return 0
        sz = float(spacing[2])
        radius = max(len(gaussian_kernel_1d(s / sz)) // 2 for s in self.sigmas_mm)
        return radius + (1 if (self.gradient or self.laplacian) else 0)

    def to_dict(self) -> dict:
        return {"sigmas_mm": list(self.sigmas_mm), "intensity": self.intensity,
                "gaussian": self.gaussian, "gradient": self.gradient,
                "laplacian": self.laplacian, "lbp": self.lbp, "gabor": self.gabor,
                "mode": self.mode}

    @classmethod
    def from_dict(cls, d: dict) -> FeatureSpec:
        return cls(sigmas_mm=tuple(d["sigmas_mm"]), intensity=bool(d["intensity"]),
                   gaussian=bool(d["gaussian"]), gradient=bool(d["gradient"]),
                   laplacian=bool(d["laplacian"]), lbp=bool(d["lbp"]), gabor=bool(d["gabor"]),
                   mode=d["mode"])


def _blur2d(img: np.ndarray, sx: float, sy: float) -> np.ndarray:
    import cv2

    kx, ky = gaussian_kernel_1d(sx), gaussian_kernel_1d(sy)
    return cv2.sepFilter2D(img, cv2.CV_32F, kx, ky, borderType=cv2.BORDER_REFLECT)


def _reflect_index(i: int, n: int) -> int:
    """SciPy's ``mode="reflect"`` (d c b a | a b c d | d c b a) for one index."""
    period = 2 * n
    i %= period
    return i if i < n else period - 1 - i


def _derivative_kernels(sx: float, sy: float):
    kd = np.array([-0.5, 0.0, 0.5], np.float32)
    one = np.ones(1, np.float32)
    lap = np.zeros((3, 3), np.float32)
    lap[1, 0] = lap[1, 2] = 1.0 / sx**2
    lap[0, 1] = lap[2, 1] = 1.0 / sy**2
    lap[1, 1] = -2.0 / sx**2 - 2.0 / sy**2
    return kd / np.float32(sx), kd / np.float32(sy), one, lap


def _gabor_kernels(sigma_x: float):
    import cv2

    size = 2 * int(3 * sigma_x + 0.5) + 1
    lambd = 4.0 * sigma_x
    out = []
    for t in range(_GABOR_THETAS):
        theta = np.pi * t / _GABOR_THETAS
        re = cv2.getGaborKernel((size, size), sigma_x, theta, lambd, 0.5, 0, ktype=cv2.CV_32F)
        im = cv2.getGaborKernel((size, size), sigma_x, theta, lambd, 0.5, np.pi / 2,
                                ktype=cv2.CV_32F)
        re -= re.mean()  # no response to a flat image
        out.append((re, im))
    return out


def slice_features(src: np.ndarray, k: int, spacing: Sequence[float], spec: FeatureSpec,
                   out: np.ndarray | None = None, *,
                   smoothed: dict[float, np.ndarray] | None = None,
                   z0: int = 0) -> np.ndarray:
    """The feature stack of slice ``k`` of ``src``.

    Parameters
    ----------
    src : ndarray, shape (nz, ny, nx)
        Scalar image (any real dtype; computed in float32).
    k : int
        Index of the slice in ``src``.
    spacing : (sx, sy, sz)
        Voxel size in mm.
    spec : FeatureSpec
    out : ndarray, shape (F, ny*nx), float32, optional
        Where to write; a feature per row (C-contiguous rows).
    smoothed : dict, optional
        For ``mode="3d"``: ``{sigma_mm: G}`` with ``G`` the 3D-smoothed slices
        ``z0 .. z0 + len(G) - 1`` of the volume, covering ``k - 1 .. k + 1`` (reflected at the
        volume's ends by the caller). Made by :func:`feature_stack`.
    z0 : int
        Index in ``src`` of ``G[0]``.

    Returns
    -------
    ndarray, shape (F, ny*nx), float32
    """
    import cv2

    sx, sy, sz = (float(s) for s in spacing)
    ny, nx = src.shape[1:3]
    if out is None:
        out = np.empty((spec.count, ny * nx), np.float32)
    img = np.asarray(src[k], dtype=np.float32)
    rows = iter(range(spec.count))

    def put(a: np.ndarray) -> None:
        out[next(rows)] = a.reshape(-1)

    if spec.intensity:
        put(img)
    need_3d = spec.mode == "3d" and smoothed is not None
    kdx, kdy, one, lap = _derivative_kernels(sx, sy)
    border = cv2.BORDER_REFLECT
    for s in spec.sigmas_mm:
        if need_3d:
            stack = smoothed[s]
            g = stack[k - z0]
        elif spec.gaussian or spec.gradient or spec.laplacian:
            g = _blur2d(img, s / sx, s / sy)
        if spec.gaussian:
            put(g)
        if spec.gradient:
            gx = cv2.sepFilter2D(g, cv2.CV_32F, kdx, one, borderType=border)
            gy = cv2.sepFilter2D(g, cv2.CV_32F, one, kdy, borderType=border)
            if need_3d:
                gz = (stack[k - z0 + 1] - stack[k - z0 - 1]) * np.float32(0.5 / sz)
                put(np.sqrt(gx * gx + gy * gy + gz * gz))
            else:
                put(cv2.magnitude(gx, gy))
        if spec.laplacian:
            lg = cv2.filter2D(g, cv2.CV_32F, lap, borderType=border)
            if need_3d:
                lg += (stack[k - z0 + 1] - 2.0 * g + stack[k - z0 - 1]) * np.float32(1 / sz**2)
            put(lg)
        if spec.gabor:
            for re, im in _gabor_kernels(s / sx):
                a = cv2.filter2D(img, cv2.CV_32F, re, borderType=border)
                b = cv2.filter2D(img, cv2.CV_32F, im, borderType=border)
                put(cv2.magnitude(a, b))
    if spec.lbp:
        import warnings

        from skimage.feature import local_binary_pattern

        with warnings.catch_warnings():
            # it warns on float images; CT/MR values compare exactly as they are
            warnings.simplefilter("ignore", UserWarning)
            put(local_binary_pattern(img, 8, 1, method="ror").astype(np.float32))
    return out


def smooth_slab(src: np.ndarray, lo: int, hi: int, spacing: Sequence[float],
                sigma_mm: float) -> tuple[np.ndarray, int]:
    """3D Gaussian around slices ``lo .. hi-1`` of ``src``, one extra slice on each side.

    Returns the smoothed slab (slices ``lo-1 .. hi``), shape ``(hi - lo + 2, ny, nx)``
    float32, and the index in ``src`` of its first slice (``lo - 1``). Outside the volume the
    Gaussian of the reflected image is used, which at ``-1`` equals the one at ``0`` (so the
    derivatives there match SciPy's ``mode="reflect"``). The in-plane pass runs per slice with
    OpenCV, the z pass as a weighted sum of slices.
    """
    from concurrent.futures import ThreadPoolExecutor

    from medview.core._shared.parallel import worker_count

    sx, sy, sz = (float(s) for s in spacing)
    n = src.shape[0]
    kz = gaussian_kernel_1d(sigma_mm / sz)
    r = len(kz) // 2
    first = lo - 1
    needed = sorted({_reflect_index(i, n) for i in range(first - r, hi + 1 + r)})
    slab = np.empty((hi - lo + 2, *src.shape[1:3]), np.float32)

    def blur(j: int) -> np.ndarray:
        return _blur2d(np.asarray(src[j], dtype=np.float32), sigma_mm / sx, sigma_mm / sy)

    def z_pass(m: int) -> None:
        z = first + m
        acc = slab[m]
        acc[...] = planes[_reflect_index(z - r, n)] * kz[0]
        for t in range(1, len(kz)):
            acc += planes[_reflect_index(z - r + t, n)] * kz[t]

    with ThreadPoolExecutor(worker_count()) as pool:  # OpenCV and NumPy release the GIL
        planes = dict(zip(needed, pool.map(blur, needed), strict=True))
        list(pool.map(z_pass, range(len(slab))))
    return slab, first


def feature_stack(volume: Volume, spec: FeatureSpec, *, slices: Sequence[int] | None = None
                  ) -> np.ndarray:
    """The feature stacks of some slices of ``volume`` (all by default).

    Meant for small numbers of slices (training, tests): a whole volume's stack holds F float32
    copies of it. Classifiers predict slice by slice instead.

    Parameters
    ----------
    volume : Volume
        Scalar volume, shape (nz, ny, nx).
    spec : FeatureSpec
    slices : sequence of int, optional
        Slice indices; all slices when None.

    Returns
    -------
    ndarray, shape (len(slices), F, ny*nx), float32

    Raises
    ------
    ValueError
        If ``volume`` is RGB or a slice index is out of range.
    """
    check_scalar(volume, "per-voxel features")
    n = volume.shape[0]
    ks = list(range(n)) if slices is None else [int(k) for k in slices]
    bad = [k for k in ks if not 0 <= k < n]
    if bad:
        raise ValueError(f"slices: {bad} outside 0..{n - 1}")
    out = np.empty((len(ks), spec.count, volume.shape[1] * volume.shape[2]), np.float32)
    src = volume.array
    for m, k in enumerate(ks):
        smoothed, z0 = None, 0
        if spec.mode == "3d" and spec.halo(volume.spacing):
            smoothed = {}
            for s in spec.sigmas_mm:
                smoothed[s], z0 = smooth_slab(src, k, k + 1, volume.spacing, s)
        slice_features(src, k, volume.spacing, spec, out[m], smoothed=smoothed, z0=z0)
    return out


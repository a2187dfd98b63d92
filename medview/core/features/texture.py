"""Texture features: a Gabor filter bank and local binary patterns (maps), GLCM measures (table).

All three work on slices (in-plane); the GLCM also counts voxel pairs across slices in 3D.
Sizes and frequencies are in millimetres and honour the voxel spacing.

The GLCM lives in :mod:`medview.core.features.glcm` and is re-exported here.
"""

from __future__ import annotations

import math
from typing import Annotated, Literal

import numpy as np

from medview.core._shared.checks import check_mask, check_positive, check_scalar
from medview.core._shared.parallel import map_slices
from medview.core.features.edges import _derived
from medview.core.features.glcm import (  # noqa: F401 (re-exported)
    _ALL_13,
    GLCM_MEASURES,
    _glcm_measures,
    glcm_texture,
)
from medview.core.labelmap import LabelMap
from medview.core.params import Range
from medview.core.progress import NO_PROGRESS, Progress
from medview.core.table import Table
from medview.core.volume import Volume

__all__ = ["gabor_bank", "gabor_kernel_mm", "glcm_texture", "lbp_code_count",
           "local_binary_pattern"]


# -- Gabor ---------------------------------------------------------------------------------
def _sigma_prefactor(bandwidth: float) -> float:
    b = bandwidth
    return 1.0 / np.pi * np.sqrt(np.log(2) / 2.0) * (2.0**b + 1) / (2.0**b - 1)


def gabor_kernel_mm(frequency_per_mm: float, theta: float, spacing_xy: tuple[float, float], *,
                    bandwidth: float = 1.0, n_stds: float = 3.0) -> np.ndarray:
    """Complex Gabor kernel on a pixel grid of ``spacing_xy`` (x, y) mm, shape (rows, cols).

    The formula is scikit-image's ``gabor_kernel`` in units of the x pixel: for square pixels
    of size s it equals ``skimage.filters.gabor_kernel(frequency_per_mm * s, theta,
    bandwidth)``; for non-square pixels the y coordinates are stretched by ``sy / sx`` so the
    kernel keeps its shape in millimetres. ``theta`` (radians) turns from the x axis (columns)
    towards y (rows).
    """
    sx, sy = spacing_xy
    ratio = sy / sx
    frequency = frequency_per_mm * sx  # cycles per x pixel
    sigma = _sigma_prefactor(bandwidth) / frequency
    ct, st = math.cos(theta), math.sin(theta)
    x0 = math.ceil(max(abs(n_stds * sigma * ct), abs(n_stds * sigma * st), 1))
    y0 = math.ceil(max(abs(n_stds * sigma * ct), abs(n_stds * sigma * st), 1) / ratio)
    y, x = np.meshgrid(np.arange(-y0, y0 + 1) * ratio, np.arange(-x0, x0 + 1), indexing="ij",
                       sparse=True)
    rotx = x * ct + y * st
    roty = -x * st + y * ct
    g = np.exp(-0.5 * (rotx**2 / sigma**2 + roty**2 / sigma**2)
               + 1j * (2 * np.pi * frequency * rotx))
    g *= 1 / (2 * np.pi * sigma * sigma)
    return g


def gabor_bank(
    volume: Volume,
    *,
    frequency_per_mm: Annotated[float, Range(0.001, 10.0, step=0.01, unit="1/mm")] = 0.25,
    n_frequencies: Annotated[int, Range(1, 5, step=1)] = 2,
    n_orientations: Annotated[int, Range(1, 12, step=1)] = 4,
    theta_deg: Annotated[float, Range(0.0, 180.0, step=1.0, unit="°")] = 0.0,
    bandwidth: Annotated[float, Range(0.3, 3.0, step=0.1, unit="octaves")] = 1.0,
    progress: Progress = NO_PROGRESS,
) -> dict[str, Volume]:
    """Gabor filter bank on each slice: the strongest response and which filter gave it.

    The bank has ``n_frequencies`` frequencies one octave apart, from ``frequency_per_mm``
    down (f, f/2, f/4, ...), times ``n_orientations`` orientations ``theta_deg + j * 180° /
    n_orientations``. Each filter is scikit-image's complex Gabor kernel (Gaussian envelope of
    the given ``bandwidth``, truncated at 3σ; see :func:`gabor_kernel_mm`), and its response
    is the magnitude ``hypot(real, imag)`` of the convolution with reflected borders, the
    same as ``np.hypot(*skimage.filters.gabor(slice, f * spacing, theta, mode="reflect"))``.
    One filter: ``n_frequencies = n_orientations = 1`` and the wanted ``theta_deg``.

    Why not one volume per filter: a bank of 8 filters would hold 8 float32 copies of the
    volume, beyond the three-copies budget of a step; the maximum over the bank (the usual
    texture-energy feature) and the index of the winning filter keep two. Every slice is
    transformed once with an FFT and multiplied by each filter's spectrum (about 4× faster
    than ``cv2.filter2D`` per filter), in threads.

    Parameters
    ----------
    volume : Volume
        Scalar volume, shape (z, y, x).
    frequency_per_mm : float
        Highest centre frequency of the bank in cycles per mm; below the in-plane Nyquist limit.
    n_frequencies : int
        Number of frequencies, one octave apart.
    n_orientations : int
        Number of orientations evenly spread over 180°.
    theta_deg : float
        Orientation of the first filter, degrees from the x axis towards y.
    bandwidth : float
        Frequency bandwidth in octaves (sets the Gaussian envelope).

    Returns
    -------
    dict
        ``"magnitude"``: float32 Volume, the largest filter response at each voxel;
        ``"strongest"``: uint8 Volume, the index ``i * n_orientations + j`` (frequency i,
        orientation j) of that filter. Both carry ``GaborFilters``: ``[[frequency_per_mm,
        theta_deg], ...]`` in index order.

    Raises
    ------
    ValueError
        On an RGB volume or a frequency at or beyond the Nyquist limit of the pixel spacing.
    """
    import cv2
    import scipy.fft as sfft

    check_scalar(volume, "a Gabor filter bank")
    sx, sy, _ = volume.spacing
    nyquist = 0.5 / max(sx, sy)
    if not 0 < frequency_per_mm < nyquist:
        raise ValueError(f"frequency_per_mm: {frequency_per_mm} is not below the Nyquist limit "
                         f"{nyquist:.4g} cycles/mm of the {max(sx, sy):g} mm pixels")
    if not bandwidth > 0:
        raise ValueError(f"bandwidth: must be > 0 octaves, got {bandwidth}")
    if n_frequencies < 1 or n_orientations < 1:
        raise ValueError(f"n_frequencies, n_orientations: must be >= 1, got {n_frequencies}, "
                         f"{n_orientations}")
    filters = [(frequency_per_mm / 2**i, (theta_deg + j * 180.0 / n_orientations) % 180.0)
               for i in range(n_frequencies) for j in range(n_orientations)]
    if len(filters) > 255:
        raise ValueError(f"n_frequencies, n_orientations: at most 255 filters, got "
                         f"{len(filters)}")
    kernels = [gabor_kernel_mm(f, math.radians(t), (sx, sy), bandwidth=bandwidth)
               for f, t in filters]
    nz, ny, nx = volume.shape
    ry = max(k.shape[0] // 2 for k in kernels)
    rx = max(k.shape[1] // 2 for k in kernels)
    fy, fx = sfft.next_fast_len(ny + 2 * ry), sfft.next_fast_len(nx + 2 * rx)
    spectra = []
    for k in kernels:
        h, w = k.shape[0] // 2, k.shape[1] // 2
        padded = np.zeros((fy, fx), np.complex64)
        padded[:k.shape[0], :k.shape[1]] = k
        # the kernel's centre at index (0, 0): a circular convolution, valid in the interior
        spectra.append(sfft.fft2(np.roll(padded, (-h, -w), axis=(0, 1)), workers=1))
    strongest = np.empty(volume.shape, np.uint8)
    magnitude = np.empty(volume.shape, np.float32)
    arr = volume.array

    def respond(k) -> np.ndarray:
        k = int(k)
        img = arr[k].astype(np.float32)
        # reflected borders, at least ry/rx pixels: the circular convolution never wraps
        # into the interior
        big = cv2.copyMakeBorder(img, ry, fy - ny - ry, rx, fx - nx - rx, cv2.BORDER_REFLECT)
        spectrum = sfft.fft2(big, workers=1)
        best = np.zeros((ny, nx), np.float32)
        which = np.zeros((ny, nx), np.uint8)
        for i, s in enumerate(spectra):
            mag = np.abs(sfft.ifft2(spectrum * s, workers=1)[ry:ry + ny, rx:rx + nx])
            better = mag > best
            np.copyto(best, mag, where=better)
            which[better] = i
        strongest[k] = which
        return best

    map_slices(respond, np.arange(nz), magnitude, progress=progress, message="Gabor bank")
    bank = [[float(f), float(t)] for f, t in filters]
    units = str(volume.metadata.get("Units") or "")
    return {
        "magnitude": _derived(volume, magnitude, units).with_array(magnitude,
                                                                    GaborFilters=bank),
        "strongest": volume.with_array(strongest, Units="", GaborFilters=bank,
                                       WindowCenter=(len(filters) - 1) / 2,
                                       WindowWidth=max(len(filters), 2)),
    }


# -- local binary patterns -----------------------------------------------------------------
def lbp_code_count(points: int, method: str) -> int:
    """How many distinct codes ``method`` gives with ``points`` neighbours."""
    if method == "uniform":
        return points + 2
    if method == "nri_uniform":
        return points * (points - 1) + 3
    return 1 << points


def _lbp_offsets(points: int, radius_mm: float, sx: float, sy: float):
    """Neighbour offsets (rows, cols) in pixels, rounded as scikit-image rounds them."""
    angles = 2 * np.pi * np.arange(points, dtype=np.double) / points
    rp = np.round(-(radius_mm / sy) * np.sin(angles), 5)
    cp = np.round((radius_mm / sx) * np.cos(angles), 5)
    return rp, cp


def _lbp_slice(img: np.ndarray, rp: np.ndarray, cp: np.ndarray, method: str) -> np.ndarray:
    """LBP codes of one slice; the arithmetic follows scikit-image's, bit for bit."""
    points = len(rp)
    img = np.asarray(img, dtype=np.float64)
    h, w = img.shape
    pad = int(np.ceil(max(np.abs(rp).max(), np.abs(cp).max()))) + 1
    padded = np.zeros((h + 2 * pad, w + 2 * pad))  # zeros outside the image, as mode 'C'
    padded[pad:pad + h, pad:pad + w] = img
    rows = np.arange(h, dtype=np.float64)[:, None]
    cols = np.arange(w, dtype=np.float64)[None, :]

    def shifted(dr: int, dc: int) -> np.ndarray:
        return padded[pad + dr:pad + dr + h, pad + dc:pad + dc + w]

    bits = np.empty((points, h, w), bool)
    for i in range(points):
        r, c = rows + rp[i], cols + cp[i]
        # floor(r + rp) - r is the same for every row: rp has 5 decimals, far above an ulp
        r0, r1 = int(np.floor(rp[i])), int(np.ceil(rp[i]))
        c0, c1 = int(np.floor(cp[i])), int(np.ceil(cp[i]))
        dr, dc = r - np.floor(r), c - np.floor(c)
        if r0 == r1 and c0 == c1:
            texture = shifted(r0, c0)
        else:
            top = (1 - dc) * shifted(r0, c0) + dc * shifted(r0, c1)
            if r0 == r1:  # dr == 0: the bottom row has weight 0
                texture = top
            else:
                bottom = (1 - dc) * shifted(r1, c0) + dc * shifted(r1, c1)
                texture = (1 - dr) * top + dr * bottom
        np.greater_equal(texture - img, 0, out=bits[i])
    if method in ("default", "ror"):
        code = np.zeros((h, w), np.int64)
        for i in range(points):
            code |= bits[i].astype(np.int64) << i
        if method == "ror":
            best = code.copy()
            for _ in range(points - 1):
                code = (code >> 1) | ((code & 1) << (points - 1))
                np.minimum(best, code, out=best)
            code = best
        return code
    changes = np.zeros((h, w), np.int64)
    for i in range(points - 1):
        changes += bits[i] != bits[i + 1]
    ones = bits.sum(axis=0, dtype=np.int64)
    uniform = changes <= 2
    if method == "uniform":
        return np.where(uniform, ones, points + 1)
    # nri_uniform: uniform patterns by number of ones and rotation, as scikit-image numbers them
    first_one = np.argmax(bits, axis=0)
    first_zero = np.argmax(~bits, axis=0)
    rot = np.where(first_one == 0, ones - first_zero, points - first_one)
    code = 1 + (ones - 1) * points + rot
    code = np.where(ones == 0, 0, np.where(ones == points, points * (points - 1) + 1, code))
    return np.where(uniform, code, points * (points - 1) + 2)


def _count_codes(codes: np.ndarray, n_codes: int) -> dict[int, int]:
    """How often each code occurs (codes that occur), in 1M-value chunks."""
    counts = np.zeros(min(n_codes, 1 << 16), np.int64)
    sparse: dict[int, int] = {}
    for start in range(0, codes.size, 1 << 20):
        chunk = codes[start:start + (1 << 20)]
        if n_codes <= 1 << 16:  # bincount widens to intp: one chunk at a time
            counts += np.bincount(chunk, minlength=n_codes)
        else:
            for c, k in zip(*np.unique(chunk, return_counts=True), strict=True):
                sparse[int(c)] = sparse.get(int(c), 0) + int(k)
    if n_codes > 1 << 16:
        return sparse
    return {int(c): int(counts[c]) for c in np.flatnonzero(counts)}


def local_binary_pattern(
    volume: Volume,
    mask: LabelMap | None = None,
    *,
    points: Annotated[int, Range(4, 24, step=1)] = 8,
    radius_mm: Annotated[float, Range(0.1, 50.0, step=0.1, unit="mm")] = 1.0,
    method: Literal["uniform", "default", "ror", "nri_uniform"] = "uniform",
    progress: Progress = NO_PROGRESS,
) -> dict[str, Volume | Table]:
    """Local binary patterns of each slice, and their histogram per region.

    ``points`` neighbours on a circle of ``radius_mm`` (an ellipse in pixels when the pixels are
    not square) are sampled with bilinear interpolation (zero outside the slice) and compared
    with the centre (neighbour >= centre gives 1). Codes: "default" (2^P codes, not rotation
    invariant), "ror" (rotation invariant), "uniform" (P + 2 codes: the number of ones of a
    uniform pattern, P + 1 for the others) and "nri_uniform" (P(P-1) + 3 codes). The same
    codes as ``skimage.feature.local_binary_pattern(slice, points, radius_mm / spacing,
    method)`` for square pixels, computed with vectorised NumPy per slice in threads.

    Parameters
    ----------
    volume : Volume
        Scalar volume, shape (z, y, x).
    mask : LabelMap, optional
        Regions for the histograms, on the volume's grid; without it the whole image.
    points : int
        Number of neighbours P.
    radius_mm : float
        Radius of the circle of neighbours in mm.
    method : {"uniform", "default", "ror", "nri_uniform"}
        Which codes to give the patterns.

    Returns
    -------
    dict
        ``"map"``: Volume of codes (uint8, uint16 or uint32, the smallest that holds them),
        same grid; ``"histogram"``: Table with one row per region and code (label, name,
        code, count, fraction; only the codes that occur when there are more than 4096).

    Raises
    ------
    ValueError
        On an RGB volume, a mask on another grid, bad ``points``/``radius_mm``/``method``.
    """
    check_scalar(volume, "local binary patterns")
    check_mask(volume, mask)
    if not 1 <= points <= 24:
        raise ValueError(f"points: expected 1 to 24 neighbours, got {points}")
    radius_mm = check_positive("radius_mm", radius_mm)
    if method not in ("uniform", "default", "ror", "nri_uniform"):
        raise ValueError(f"method: expected uniform, default, ror or nri_uniform, got "
                         f"{method!r}")
    sx, sy, _ = volume.spacing
    rp, cp = _lbp_offsets(points, radius_mm, sx, sy)
    n_codes = lbp_code_count(points, method)
    dtype = np.uint8 if n_codes <= 256 else np.uint16 if n_codes <= 65536 else np.uint32
    out = np.empty(volume.shape, dtype)
    map_slices(lambda img: _lbp_slice(img, rp, cp, method), volume.array, out,
               progress=progress.sub(0.0, 0.9), message="local binary patterns")
    regions = [(0, "image")] if mask is None else [(s.number, s.name) for s in mask.segments]
    rows = []
    for label, name in regions:
        progress.check()
        codes = out.reshape(-1) if mask is None else out[mask.array == label]
        counts = _count_codes(codes, n_codes)
        listed = sorted(counts) if n_codes > 4096 else range(n_codes)
        rows += [{"label": label, "name": name, "code": int(c), "count": counts.get(c, 0),
                  "fraction": counts.get(c, 0) / codes.size if codes.size else 0.0}
                 for c in listed]
    progress.update(1.0, "local binary patterns")
    lbp_map = volume.with_array(out, Units="", WindowCenter=(n_codes - 1) / 2,
                                WindowWidth=n_codes,
                                LBP={"points": points, "radius_mm": radius_mm,
                                     "method": method, "codes": n_codes})
    return {"map": lbp_map,
            "histogram": Table(tuple(rows), title=f"LBP histogram ({method}, P={points}, "
                                                   f"R={radius_mm:g} mm)")}

"""Segment benchmark cases: thresholds, region growing, k-means, clean-up, components.

References are the fastest implementation of the same result available here (measured on the
512×512×300 phantom): NumPy for a range test (SimpleITK's BinaryThreshold is 8× slower),
scikit-image for the automatic thresholds (Otsu 2× faster than SimpleITK), SimpleITK's
ConnectedThreshold for region growing, SciPy for opening/closing/hole filling/labelling
(SimpleITK's ball opening takes 24 s and BinaryFillhole 45 s, SciPy 8.5 s and 5–7 s), and
scikit-learn's KMeans fitted on a 1 % sample and predicting every voxel (fitting every voxel
takes 30 s).

The clean-up steps get a body mask (``value > -400 HU``: soft tissue and bone, with the lungs
as holes), made once per volume and shared by medview and the reference.
"""

from __future__ import annotations

import numpy as np

from benchmarks.step_cases import Case

_MASKS: dict[int, object] = {}


def _body(vol):
    """The body mask as a LabelMap, cached so that neither side pays for it."""
    from medview.core.labelmap import LabelMap, Segment

    key = id(vol)
    if key not in _MASKS:
        _MASKS.clear()
        arr = (vol.array > -400).view(np.uint8)
        _MASKS[key] = LabelMap.like(vol, arr, segments=(Segment(1, "body"),))
    return _MASKS[key]


def _above(vol, fn):
    return vol.array > fn(vol.array)


def _skimage(name):
    def run(vol):
        import skimage.filters as skf

        return _above(vol, getattr(skf, name))

    return run


def _multiotsu(vol):
    import skimage.filters as skf

    return np.digitize(vol.array, skf.threshold_multiotsu(vol.array, classes=3))


# region growing: a seed in the soft tissue of the upper abdomen (slice 10; the field of view
# is 358.4 mm at every --size, so the same LPS point works for any benchmark grid)
_SEED_LPS = [105.0, 179.2, 10.0]


def _sitk_region(vol):
    import SimpleITK as sitk

    seed = tuple(int(c) for c in np.rint(vol.lps_to_index(_SEED_LPS)))
    img = sitk.GetImageFromArray(vol.array)
    out = sitk.ConnectedThreshold(img, seedList=[seed], lower=-200.0, upper=200.0)
    return sitk.GetArrayFromImage(out)


def _sklearn_kmeans(vol):
    from sklearn.cluster import KMeans

    x = vol.array.reshape(-1, 1)
    rng = np.random.default_rng(0)
    sample = x[rng.choice(x.shape[0], max(1000, x.shape[0] // 100), replace=False)]
    return KMeans(3, n_init=1, random_state=0).fit(sample).predict(x)


def _footprint(vol, radius_mm=2.0):
    from medview.core.morphology.cleanup import ellipsoid_footprint

    return ellipsoid_footprint(radius_mm, vol.spacing)


def _scipy_open(vol):
    import scipy.ndimage as ndi

    m, fp = _body(vol).array, _footprint(vol)
    return ndi.binary_dilation(ndi.binary_erosion(m, fp, border_value=1), fp)


def _scipy_close(vol):
    import scipy.ndimage as ndi

    m, fp = _body(vol).array, _footprint(vol)
    return ndi.binary_erosion(ndi.binary_dilation(m, fp), fp, border_value=1)


def _scipy_fill(vol):
    import scipy.ndimage as ndi

    return ndi.binary_fill_holes(_body(vol).array)


def _scipy_largest(vol):
    import scipy.ndimage as ndi

    lab, _ = ndi.label(_body(vol).array)
    sizes = np.bincount(lab.ravel())
    sizes[0] = 0
    return lab == np.argmax(sizes)


def _scipy_components(vol):
    import scipy.ndimage as ndi

    lm = _body(vol)
    lab, _ = ndi.label(lm.array)
    return lab, np.bincount(lab.ravel())[1:] * lm.voxel_volume_ml


_LABELS = {"labels": _body}

CASES = [
    Case("segment.threshold", {"low": -1000.0, "high": -400.0}, "numpy (a>=lo)&(a<=hi)",
         lambda vol: (vol.array >= -1000.0) & (vol.array <= -400.0)),
    Case("segment.otsu", {}, "skimage threshold_otsu + >", _skimage("threshold_otsu")),
    Case("segment.multi_otsu", {"classes": 3}, "skimage threshold_multiotsu+digitize",
         _multiotsu),
    Case("segment.li", {}, "skimage threshold_li + >", _skimage("threshold_li")),
    Case("segment.triangle", {}, "skimage threshold_triangle + >",
         _skimage("threshold_triangle")),
    Case("segment.region_grow", {"seeds": [_SEED_LPS], "criterion": "range", "low": -200.0,
                                 "high": 200.0},
         "sitk ConnectedThreshold", _sitk_region),
    Case("segment.kmeans", {"k": 3, "seed": 0}, "sklearn KMeans 1% fit + predict",
         _sklearn_kmeans),
    Case("segment.open", {"radius_mm": 2.0}, "scipy binary erosion+dilation", _scipy_open,
         extra_inputs=_LABELS),
    Case("segment.close", {"radius_mm": 2.0}, "scipy binary dilation+erosion", _scipy_close,
         extra_inputs=_LABELS),
    Case("segment.fill_holes", {}, "scipy binary_fill_holes", _scipy_fill,
         extra_inputs=_LABELS),
    Case("segment.keep_largest", {}, "scipy label + bincount", _scipy_largest,
         extra_inputs=_LABELS),
    Case("segment.components", {}, "scipy label + bincount", _scipy_components,
         extra_inputs=_LABELS),
]

"""Fuse benchmark cases: the CT phantom is the fixed volume.

Moving volumes, made once per benchmark volume (not timed): the phantom's PET-like uptake on
its own 4 mm grid in the same frame of reference (resample, blend), the same CT voxels placed
3° and 4 mm away (registration: the true motion is known), the same voxels on the same grid
(average/weighted/maximum: values do not change their speed). References start from NumPy
arrays and end in NumPy arrays, as medview does.
"""

from __future__ import annotations

import math

import numpy as np

from benchmarks.step_cases import Case

_CACHE: dict = {}
WINDOW = (40.0, 400.0)
PET_RANGE = (2000.0, 20000.0)  # Bq/ml
SAMPLES, BINS, ITERATIONS, LEVELS = 20_000, 50, 200, 3


def _cached(name: str, vol, make):
    key = (name, id(vol))
    if key not in _CACHE:
        _CACHE[key] = make(vol)
    return _CACHE[key]


def _pet(vol):
    from phantoms import pet_phantom_volume

    return _cached("pet", vol, lambda v: pet_phantom_volume(v.shape, v.spacing, v.origin,
                                                            spacing_xyz=(4.0, 4.0, 4.0)))


def _moved(vol):
    """Same voxels, rotated 3° about an oblique axis through the centre and shifted 4 mm."""
    from medview.core.volume import Volume

    def make(v):
        a = np.array([1.0, 2.0, 0.5]) / np.linalg.norm([1.0, 2.0, 0.5])
        k = np.array([[0, -a[2], a[1]], [a[2], 0, -a[0]], [-a[1], a[0], 0]])
        t = math.radians(3.0)
        rot = np.eye(3) + math.sin(t) * k + (1 - math.cos(t)) * k @ k
        nz, ny, nx = v.shape
        c = v.index_to_lps(((nx - 1) / 2, (ny - 1) / 2, (nz - 1) / 2))
        shift = 4.0 * np.array([2.0, -1.0, 0.5]) / np.linalg.norm([2.0, -1.0, 0.5])
        return Volume(v.array, v.spacing, rot @ (np.asarray(v.origin) - c) + c + shift,
                      rot @ v.direction, dict(v.metadata))

    return _cached("moved", vol, make)


def _same(vol):
    from medview.core.volume import Volume

    return _cached("same", vol, lambda v: Volume(v.array, v.spacing, v.origin, v.direction))


def _sitk(arr, vol, pixel=None):
    import SimpleITK as sitk

    img = sitk.GetImageFromArray(arr)
    if pixel is not None:
        img = sitk.Cast(img, pixel)
    img.SetSpacing(vol.spacing)
    img.SetOrigin(vol.origin)
    img.SetDirection(tuple(vol.direction.ravel()))
    return img


def _sitk_resample(moving, fixed, transform=None, interpolator=None):
    import SimpleITK as sitk

    src = _sitk(moving.array, moving, sitk.sitkFloat32)
    out = sitk.Resample(src, fixed.shape[::-1], transform or sitk.Transform(),
                        interpolator or sitk.sitkLinear, fixed.origin, fixed.spacing,
                        tuple(fixed.direction.ravel()), 0.0, sitk.sitkFloat32)
    return sitk.GetArrayFromImage(out)


def _ref_resample(vol):
    return _sitk_resample(_pet(vol), vol)


def _ref_register(vol):
    """SimpleITK's own multi-resolution registration with the same settings (its own
    smoothing + shrinking pyramid, shrink factors 6/3/2 ≈ medview's 1 mm finest level on the
    0.7 mm CT), then Resample."""
    import SimpleITK as sitk

    moving = _moved(vol)
    fixed_img = _sitk(vol.array, vol, sitk.sitkFloat32)
    moving_img = _sitk(moving.array, moving, sitk.sitkFloat32)
    base = max(min(vol.spacing), 1.0)  # medview's finest_mm default
    shrink = [math.ceil(base * 2 ** (LEVELS - 1 - k) / min(vol.spacing) - 0.05)
              for k in range(LEVELS)]
    reg = sitk.ImageRegistrationMethod()
    reg.SetMetricAsMattesMutualInformation(BINS)
    reg.SetMetricSamplingStrategy(reg.RANDOM)
    n = fixed_img.GetNumberOfPixels()
    reg.SetMetricSamplingPercentagePerLevel([min(1.0, SAMPLES * f ** 3 / n) for f in shrink], 0)
    reg.SetMetricUseFixedImageGradientFilter(False)
    reg.SetMetricUseMovingImageGradientFilter(False)
    reg.SetInterpolator(sitk.sitkLinear)
    reg.SetOptimizerAsRegularStepGradientDescent(learningRate=1.0, minStep=1e-3,
                                                 numberOfIterations=ITERATIONS,
                                                 relaxationFactor=0.5)
    reg.SetOptimizerScalesFromPhysicalShift()
    reg.SetShrinkFactorsPerLevel(shrink)
    reg.SetSmoothingSigmasPerLevel([0.5 * f * min(vol.spacing) for f in shrink])
    reg.SmoothingSigmasAreSpecifiedInPhysicalUnitsOn()
    init = sitk.Euler3DTransform()
    nz, ny, nx = vol.shape
    init.SetCenter(tuple(vol.index_to_lps(((nx - 1) / 2, (ny - 1) / 2, (nz - 1) / 2))))
    reg.SetInitialTransform(init, inPlace=True)
    transform = reg.Execute(fixed_img, moving_img)
    del fixed_img
    out = sitk.Resample(moving_img, vol.shape[::-1], transform, sitk.sitkLinear, vol.origin,
                        vol.spacing, tuple(vol.direction.ravel()), 0.0, sitk.sitkFloat32)
    return transform, sitk.GetArrayFromImage(out)


def _ref_weighted(vol, w=0.3):
    import cv2

    a = vol.array.reshape(-1, vol.shape[2])
    b = _same(vol).array.reshape(-1, vol.shape[2])
    return cv2.addWeighted(a, 1.0 - w, b, w, 0.0).reshape(vol.shape)


def _ref_maximum(vol):
    import cv2

    a = vol.array.reshape(-1, vol.shape[2])
    return cv2.max(a, _same(vol).array.reshape(-1, vol.shape[2])).reshape(vol.shape)


def _ref_blend(vol, opacity=0.5):
    """Resample (SimpleITK), then window, colour map and blend the whole volume at once
    (NumPy + OpenCV's applyColorMap/cvtColor/addWeighted)."""
    import cv2

    pet = _pet(vol)
    m = _sitk_resample(pet, vol)
    c, w = WINDOW
    lo, hi = PET_RANGE
    nz, ny, nx = vol.shape
    g = np.clip((vol.array - (c - w / 2)) * (255.0 / w), 0, 255).astype(np.uint8)
    gray = cv2.cvtColor(g.reshape(-1, nx), cv2.COLOR_GRAY2RGB)
    idx = np.clip((m - lo) * (255.0 / (hi - lo)), 0, 255).astype(np.uint8)
    colour = cv2.cvtColor(cv2.applyColorMap(idx.reshape(-1, nx), cv2.COLORMAP_HOT),
                          cv2.COLOR_BGR2RGB)
    hidden = (m < lo).reshape(-1, nx)
    colour[hidden] = gray[hidden]
    return cv2.addWeighted(gray, 1 - opacity, colour, opacity, 0).reshape(nz, ny, nx, 3)


CASES = [
    Case("fuse.resample", {"interpolation": "linear"}, "SimpleITK Resample (linear)",
         _ref_resample, extra_inputs={"moving": _pet}, note="PET 4 mm onto the CT grid"),
    Case("fuse.register_rigid", {"levels": LEVELS, "samples": SAMPLES,
                                 "histogram_bins": BINS, "iterations": ITERATIONS},
         "SimpleITK ImageRegistrationMethod+Resample", _ref_register,
         extra_inputs={"moving": _moved}, note="3° + 4 mm, Mattes MI, 3 levels"),
    Case("fuse.average", {}, "cv2.addWeighted", lambda v: _ref_weighted(v, 0.5),
         extra_inputs={"moving": _same}),
    Case("fuse.weighted", {"weight": 0.3}, "cv2.addWeighted", _ref_weighted,
         extra_inputs={"moving": _same}),
    Case("fuse.maximum", {}, "cv2.max", _ref_maximum, extra_inputs={"moving": _same}),
    Case("fuse.blend", {"window_center": WINDOW[0], "window_width": WINDOW[1],
                        "moving_min": PET_RANGE[0], "moving_max": PET_RANGE[1],
                        "opacity": 0.5},
         "SimpleITK Resample + NumPy/cv2 colour", _ref_blend,
         extra_inputs={"moving": _pet}, note="PET hot over CT"),
]

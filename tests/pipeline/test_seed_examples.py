"""resources/chains/seed_examples.json against the OpenCV calls it reproduces, on real CT.

The article medview grew from shows OpenCV on 8-bit images: ``cv2.filter2D`` with a 5×5 mean
kernel, ``cv2.Canny(img, 50, 150)``, ``cv2.threshold(img, 127, 255, THRESH_BINARY)``, a
random-trees classifier and ``cv2.addWeighted`` fusion. Here the same calls run on windowed
slices of a real abdominal CT (kits_dupe_positions) beside the seed chain.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

import medview
from medview.core.filters.smoothing import smooth_mean
from medview.core.labelmap import LabelMap
from medview.core.segmentation.pixel_features import FeatureSpec, feature_stack
from medview.core.volume import Volume
from medview.pipeline.chain import Chain
from medview.pipeline.runner import run_chain
from medview.resources import resources_dir

SEED = resources_dir() / "chains" / "seed_examples.json"
PIXEL = (1.0, 1.0, 1.0)  # an 8-bit picture as OpenCV sees it: 1 mm pixels
KERNEL = np.ones((5, 5), np.float32) / 25


def _eight_bit(ct: Volume, z: int, *, level: float = 40.0, width: float = 400.0) -> np.ndarray:
    """The central 256² of slice z in an abdomen window, as the 8-bit image OpenCV reads;
    the crop keeps tissue at the image's borders (the full slice ends in air: 0 all round)."""
    hu = ct.array[z, 128:384, 128:384].astype(np.float32)
    u8 = np.clip((hu - (level - width / 2)) / width * 255, 0, 255).astype(np.uint8)
    return np.ascontiguousarray(u8)


@pytest.fixture(scope="module")
def images(data_dir):
    ct = medview.load(data_dir / "kits_dupe_positions")
    return _eight_bit(ct, 107), _eight_bit(ct, 94)


def _scribbles(a: np.ndarray) -> np.ndarray:
    """Sparse strokes (every 6th pixel) inside three eroded grey-level classes of ``a``."""
    grid = np.zeros(a.shape, bool)
    grid[::6, ::6] = True
    out = np.zeros(a.shape, np.uint8)
    for label, region in ((1, a < 60), (2, (a > 140) & (a < 190)), (3, a > 205)):
        inner = cv2.erode(region.astype(np.uint8), np.ones((7, 7), np.uint8)) > 0
        out[inner & grid] = label
    return out


@pytest.fixture(scope="module")
def seed_run(images):
    a, b = images
    scribbles = _scribbles(a)
    assert all((scribbles == k).sum() >= 30 for k in (1, 2, 3))
    inputs = {"image": Volume(a[None], PIXEL), "moving": Volume(b[None], PIXEL),
              "scribbles": LabelMap(scribbles[None], PIXEL)}
    return run_chain(Chain.load(SEED), inputs).values, scribbles


def test_mean_kernel_equals_filter2d_everywhere_with_reflect_101(images, seed_run):
    a, _ = images
    values, _ = seed_run
    mine = values["mean_5x5"].array[0]
    # float32 in, float32 out: the same numbers, border included
    np.testing.assert_array_equal(mine, cv2.filter2D(a.astype(np.float32), -1, KERNEL))
    # and the article's 8-bit call, rounded as OpenCV rounds
    np.testing.assert_array_equal(np.rint(mine).astype(np.uint8), cv2.filter2D(a, -1, KERNEL))
    # the default border (reflect, SciPy's) differs from filter2D's only on the 2-pixel rim
    default = smooth_mean(Volume(a[None], PIXEL), kernel=np.ones((5, 5)).tolist()).array[0]
    diff = np.abs(default - cv2.filter2D(a.astype(np.float32), -1, KERNEL))
    assert diff[2:-2, 2:-2].max() == 0 and diff.max() > 5


def test_canny_l1_matches_cv2_canny(images, seed_run):
    a, _ = images
    values, _ = seed_run
    mine = values["canny_50_150"].array[0] > 0
    ref = cv2.Canny(a, 50, 150) > 0
    dice = 2 * (mine & ref).sum() / (mine.sum() + ref.sum())
    assert ref.sum() > 1000  # a slice with edges to find
    assert dice >= 0.99, f"Dice {dice:.4f}"
    assert dice == 1.0  # measured: identical edge maps (integer slice, whole-number scale)


def test_binary_threshold_at_127_is_exact(images, seed_run):
    a, _ = images
    values, _ = seed_run
    _, ref = cv2.threshold(a, 127, 255, cv2.THRESH_BINARY)
    np.testing.assert_array_equal(values["binary_127"].array[0] > 0, ref > 0)


def test_average_and_weighted_fusion_equal_add_weighted(images, seed_run):
    a, b = images
    values, _ = seed_run
    a32, b32 = a.astype(np.float32), b.astype(np.float32)
    average, weighted = values["average"].array[0], values["weighted"].array[0]
    np.testing.assert_array_equal(average, cv2.addWeighted(a32, 0.5, b32, 0.5, 0))
    np.testing.assert_array_equal(weighted, cv2.addWeighted(a32, 0.7, b32, 0.3, 0))
    np.testing.assert_array_equal(np.rint(weighted).astype(np.uint8),
                                  cv2.addWeighted(a, 0.7, b, 0.3, 0))
    assert not np.array_equal(a, b)  # two different slices, or the test proves nothing


def test_random_trees_agree_with_an_independent_forest(images, seed_run):
    """OpenCV 5 has no ``cv2.ml`` (RTrees moved to opencv_contrib), so the reference is
    another random forest with RTrees' settings (bootstrap, √features per split, 32 trees of
    depth ≤ 12), trained with another seed on the same features and strokes. Measured: 99.3 %
    of the pixels get the same label."""
    from sklearn.ensemble import RandomForestClassifier

    a, _ = images
    values, scribbles = seed_run
    mine = values["random_trees"].array[0]
    features = feature_stack(Volume(a[None], PIXEL), FeatureSpec(sigmas_mm=(1.0, 2.0, 4.0)))
    x = np.ascontiguousarray(features[0].T)
    y = scribbles.ravel()
    forest = RandomForestClassifier(n_estimators=32, max_depth=12, max_features="sqrt",
                                    random_state=7).fit(x[y > 0], y[y > 0])
    ref = forest.predict(x).reshape(a.shape)
    agreement = float((ref == mine).mean())
    assert agreement >= 0.98, f"agreement {agreement:.4f}"
    # both learnt the strokes: each stroke pixel keeps its class
    assert (mine[scribbles > 0] == scribbles[scribbles > 0]).mean() >= 0.98

"""The Volume convention: index (x, y, z) → LPS, validation, SimpleITK round trip."""

from __future__ import annotations

import numpy as np
import pytest

from medview.core.progress import Cancelled, Progress
from medview.core.volume import Volume


def test_index_to_lps_follows_simpleitk():

    c, s = np.cos(0.4), np.sin(0.4)
    d = np.array([[1, 0, 0], [0, c, -s], [0, s, c]])
    vol = Volume(np.zeros((4, 5, 6), np.int16), (0.5, 0.75, 2.0), (10, -20, 30), d)
    img = vol.to_sitk()
    for idx in [(0, 0, 0), (5, 4, 3), (2, 1, 3)]:
        np.testing.assert_allclose(vol.index_to_lps(idx),
                                   img.TransformIndexToPhysicalPoint(idx), atol=1e-9)
        np.testing.assert_allclose(vol.lps_to_index(vol.index_to_lps(idx)), idx, atol=1e-9)
    back = Volume.from_sitk(img)
    assert back.same_grid(vol)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"spacing": (1, 0, 1)}, "spacing"), ({"origin": (0, np.nan, 0)}, "origin"),
     ({"direction": np.zeros((3, 3))}, "direction")],
)
def test_bad_geometry_is_refused_with_the_argument_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Volume(np.zeros((2, 2, 2)), **kwargs)


def test_metadata_is_read_only_and_with_array_keeps_grid():
    vol = Volume(np.zeros((2, 3, 4), np.int16), (1, 2, 3), metadata={"Modality": "CT"})
    with pytest.raises(TypeError):
        vol.metadata["Modality"] = "MR"  # type: ignore[index]
    other = vol.with_array(np.ones((2, 3, 4), np.float32), Units="HU")
    assert other.same_grid(vol) and other.metadata["Units"] == "HU"
    with pytest.raises(ValueError, match="shape"):
        vol.with_array(np.ones((3, 3, 4)))


def test_progress_reports_and_cancels():
    seen = []
    p = Progress(lambda f, m: seen.append((f, m)))
    sub = p.sub(0.5, 1.0)
    sub.update(0.5, "half")
    assert seen[-1] == (0.75, "half")
    p.cancel()
    assert sub.cancelled
    with pytest.raises(Cancelled):
        sub.check()

"""The annotation model: validation, precision, measurements on a small volume."""

from __future__ import annotations

import numpy as np
import pytest

from medview.core.annotations import Annotation, make_annotation, unit_of_values
from medview.core.volume import Volume


def _volume(**meta) -> Volume:
    arr = np.arange(4 * 20 * 30, dtype=np.int16).reshape(4, 20, 30)
    return Volume(arr, spacing=(0.5, 0.75, 2.0), origin=(-10.0, 5.0, 30.0),
                  metadata={"Modality": "CT", "Units": "HU", "FrameOfReferenceUID": "1.2.3",
                            **meta})


def test_annotation_model_validates():
    with pytest.raises(ValueError, match="a distance has 2 point"):
        Annotation("distance", [(0, 0, 0)])
    with pytest.raises(ValueError, match="kind"):
        Annotation("circle", [(0, 0, 0)])
    with pytest.raises(ValueError, match="finite"):
        Annotation("text", [(0, float("nan"), 0)])
    with pytest.raises(ValueError, match="at least 3"):
        Annotation("polygon", [(0, 0, 0), (1, 0, 0)])
    with pytest.raises(ValueError, match="frames count from 1"):
        Annotation("text", [(0, 0, 0)], frame_number=0)
    a = Annotation("text", [(0.1, 0.2, 0.3)])
    assert a.label == "text" and a.uid.startswith("2.25.")
    assert Annotation("text", [(0, 0, 0)]).uid != a.uid
    # stored at DICOM's FL precision: what is saved is what is read back
    assert a.points_mm[0][0] == float(np.float32(0.1)) != 0.1


def test_angle_needs_arms():
    vol = _volume()
    p = vol.index_to_lps((3, 3, 1))
    with pytest.raises(ValueError, match="arms must have a length"):
        make_annotation("angle", [p, p, vol.index_to_lps((5, 5, 1))], volume=vol)


def test_polygon_statistics_on_a_small_volume():
    vol = _volume()
    corners = [vol.index_to_lps(p) for p in ((2, 3, 2), (9, 3, 2), (9, 8, 2), (2, 8, 2))]
    ann = make_annotation("polygon", corners, label="box", volume=vol, slice_index=2)
    values = vol.array[2, 3:9, 2:10].astype(np.float64)
    got = {m.name: m.value for m in ann.measurements}
    assert got["area"] == pytest.approx(7 * 0.5 * 5 * 0.75)
    assert got["mean"] == pytest.approx(values.mean())
    assert got["sd"] == pytest.approx(values.std())
    assert (got["min"], got["max"]) == (values.min(), values.max())
    assert ann.frame_of_reference_uid == "1.2.3"
    assert {m.unit for m in ann.measurements} == {"mm2", "[hnsf'U]"}


def test_an_oblique_roi_gets_its_area_only():
    """An outline that is not in a plane of the grid (an oblique reformat): no voxel mask is
    guessed, the area is still measured."""
    vol = _volume()
    pts = [vol.index_to_lps(p) for p in ((2, 3, 0), (9, 3, 1), (9, 8, 2), (2, 8, 1))]
    ann = make_annotation("polygon", pts, volume=vol)
    assert [m.name for m in ann.measurements] == ["area"]


def test_units_of_values():
    assert unit_of_values(_volume()) == "[hnsf'U]"
    assert unit_of_values(_volume(Modality="MR", Units="")) == "1"
    assert unit_of_values(_volume(Modality="PT", Units="BQML")) == "Bq/mL"


def test_ellipse_major_axis_comes_first():
    """DICOM ELLIPSE lists the major axis first: given minor-first it is the same ellipse,
    stored in DICOM's order."""
    minor, major = [(0, -1, 0), (0, 1, 0)], [(-3, 0, 0), (3, 0, 0)]
    ann = Annotation("ellipse", [*minor, *major])
    assert ann.points_mm == (*[tuple(map(float, p)) for p in major],
                             *[tuple(map(float, p)) for p in minor])
    assert make_annotation("ellipse", ann.points_mm).value("area").value == pytest.approx(
        np.pi * 3 * 1)

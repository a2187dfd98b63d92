"""File ▸ Export from the window: SEG, derived series, Secondary Capture, CSV, PNG (issue 5).

Every DICOM object written passes dciodvfy and comes back where it came from.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from dicom_validate import assert_valid_dicom
from petct_helpers import window_on_ct, write_pet_ct
from PySide6.QtGui import QImage

import medview
from medview.app.measurements import Measurement

CT_SHAPE = (24, 96, 96)
CT_SPACING = (3.5, 3.5, 5.0)
STUDY = "1.2.826.0.1.3680043.8.498.21"


@pytest.fixture(scope="module")
def pet_ct(tmp_path_factory):
    return write_pet_ct(tmp_path_factory.mktemp("petct"), shape=CT_SHAPE, spacing=CT_SPACING,
                        patient_id="E1", study_uid=STUDY)


@pytest.fixture
def window(app, qtbot, tmp_path, pet_ct):
    return window_on_ct(qtbot, tmp_path, pet_ct)


def _item(window, name):
    return next(i for i in window.exportables() if i.name == name)


def _export(window, qtbot, name, fmt, path, **kw):
    item = _item(window, name)
    with qtbot.waitSignal(window.exported, timeout=60_000) as blocker:
        window.export(item, fmt, path, **kw)
    return blocker.args[0]


def test_painted_label_map_exports_as_a_valid_seg_that_reads_back(window, qtbot, tmp_path):
    from medview.dicom.series.seg import read_seg

    state = window.state
    state.set_tool("brush")
    state.set_brush_mm(8.0)
    for k in (8, 9, 10):
        state.set_slice(k)
        state.paint("axial", (48.5, 48.5))
    state.update_segment(1, name="Lesion", color=(250, 40, 40))
    [path] = _export(window, qtbot, "Label map", "seg", tmp_path / "lesion.dcm")
    assert_valid_dicom(path)
    back = read_seg(path, source=state.volume)
    assert np.array_equal(back.array > 0, state.labels.array > 0)
    assert back.segments[0].name == "Lesion"

    nifti, side = _export(window, qtbot, "Label map", "nifti", tmp_path / "lesion.nii.gz")
    assert side.name == "lesion.segments.json"
    assert json.loads(side.read_text())[0]["name"] == "Lesion"
    back = medview.formats.volume_io.read_volume(nifti)
    assert np.array_equal(back.array, state.labels.array)
    # an existing sidecar is not replaced silently either (and no image is written then)
    (tmp_path / "other.segments.json").write_text("keep")
    with qtbot.waitSignal(window.exported_failed, timeout=60_000):
        window.export(_item(window, "Label map"), "nifti", tmp_path / "other.nii.gz")
    assert (tmp_path / "other.segments.json").read_text() == "keep"
    assert not (tmp_path / "other.nii.gz").exists()


def test_derived_result_exports_as_a_series_that_reimports_in_place(window, qtbot, tmp_path):
    from medview.core.filters.smoothing import gaussian

    state = window.state
    smoothed = gaussian(state.volume, sigma_mm=3.0)
    window.layers.add_results({"smoothed": smoothed})
    written = _export(window, qtbot, "Result: smoothed", "series", tmp_path / "smoothed")
    assert len(written) == CT_SHAPE[0]
    for path in written[:3]:
        assert_valid_dicom(path)
    back = medview.load(tmp_path / "smoothed")
    assert back.shape == smoothed.shape
    assert np.allclose(back.origin, smoothed.origin, atol=1e-3)
    assert np.allclose(back.array, smoothed.array, atol=0.51)  # stored at the rescale's step
    assert back.metadata["StudyInstanceUID"] == state.volume.metadata["StudyInstanceUID"]
    assert back.metadata["SeriesInstanceUID"] != state.volume.metadata["SeriesInstanceUID"]


def test_fused_image_exports_as_secondary_capture(window, qtbot, tmp_path):
    panel = window.fusion_panel
    with qtbot.waitSignal(panel.fused, timeout=60_000):
        panel.fuse_selected()
    window.state.set_fusion_colormap("inferno")
    [path] = _export(window, qtbot, "Fused image", "capture", tmp_path / "fused.dcm")
    assert_valid_dicom(path)
    back = medview.load(path)
    assert back.is_rgb and back.shape[:3] == window.state.volume.shape
    # the colours are the view's: a voxel at the top of the PET window, fully opaque, is the
    # last entry of the colour map the views use
    from medview.gui.colormaps import colormap_lut

    state = window.state
    state.set_fusion_opacity(1.0)
    fused = window._blend_fusion()
    hot = np.argwhere(state.fusion.array >= state.fusion_window[1])[0]
    assert fused.array[tuple(hot)].tolist() == colormap_lut("inferno")[-1].tolist()


def test_measurements_csv_and_view_png_without_overlays(window, qtbot, tmp_path):
    state = window.state
    g = state.geometry("axial")
    k = state.slice_index
    state.add_measurement(Measurement("distance", "axial", k, (10.5, 10.5), (60.5, 10.5)))
    state.add_measurement(Measurement("rectangle", "axial", k, (20.5, 20.5), (40.5, 30.5)))
    [csv_path] = _export(window, qtbot, "Measurements", "json", tmp_path / "m.json")
    rows = json.loads(csv_path.read_text())["rows"]
    assert rows[0]["distance_mm"] == pytest.approx(50 * CT_SPACING[0])
    pixels = g.image(state.volume.array, k)[20:31, 20:41].astype(float)
    assert rows[1]["count"] == pixels.size
    assert rows[1]["mean"] == pytest.approx(pixels.mean())

    with_overlays = _export(window, qtbot, "View", "png", tmp_path / "with.png")[0]
    plain = _export(window, qtbot, "View", "png-plain", tmp_path / "plain.png")[0]
    a, b = QImage(str(with_overlays)), QImage(str(plain))
    assert a.size() == b.size() and a != b  # the same view, without text and measurements
    assert window.viewer.overlays["top_left"].isVisible()  # shown again afterwards


def test_export_never_overwrites_silently(window, qtbot, tmp_path):
    target = tmp_path / "taken.nii.gz"
    target.write_bytes(b"keep me")
    with qtbot.waitSignal(window.exported_failed, timeout=60_000):
        window.export(_item(window, "Series"), "nifti", target)
    assert target.read_bytes() == b"keep me"
    assert "exists" in window.last_error.message
    written = _export(window, qtbot, "Series", "nifti", target, overwrite=True)
    assert medview.formats.volume_io.read_volume(written[0]).shape == window.state.volume.shape

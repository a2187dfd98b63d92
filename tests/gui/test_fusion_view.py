"""Fusion in the window: PET over CT from the catalog, scrolling in step, opacity, colour."""

from __future__ import annotations

import numpy as np
import pytest
from petct_helpers import window_on_ct, write_pet_ct

from medview.app import library
from medview.core.registration.resample import resample_to_grid
from medview.gui.colormaps import fusion_lut

CT_SHAPE = (40, 128, 128)
CT_SPACING = (2.8, 2.8, 5.0)
STUDY = "1.2.826.0.1.3680043.8.498.11"


@pytest.fixture(scope="module")
def pet_ct(tmp_path_factory):
    return write_pet_ct(tmp_path_factory.mktemp("petct"), shape=CT_SHAPE, spacing=CT_SPACING,
                        patient_id="P1", study_uid=STUDY)


@pytest.fixture
def window(app, qtbot, tmp_path, pet_ct):
    return window_on_ct(qtbot, tmp_path, pet_ct)


def test_pet_over_ct_scrolls_in_step_with_colour_and_opacity(window, qtbot):
    panel = window.fusion_panel
    assert panel.series.count() == 1  # the PET; the open CT is not offered
    with qtbot.waitSignal(panel.fused, timeout=60_000):
        panel.fuse_selected()
    state = window.state
    pet = library.load_series(window.catalog, panel.series.currentData())
    assert pet.metadata["Modality"] == "PT"
    # NaN where the PET has no data: drawn transparent (tests/gui/test_rendered_pixels.py)
    expected = resample_to_grid(state.volume, pet, default_value=np.nan)
    assert np.allclose(state.fusion.array, expected.array, equal_nan=True)
    view = window.viewer
    for k in (5, 20, 33):
        state.set_slice(k)
        assert np.array_equal(view.fusion_item.image, expected.array[k], equal_nan=True)
    assert view.fusion_item.isVisible()
    assert np.array_equal(view.fusion_item.lut, fusion_lut("hot"))
    assert view.fusion_item.lut[0, 3] == 0  # no uptake: the CT shows through
    low, high = state.fusion_window
    assert low < high
    panel.opacity.setValue(30)
    assert view.fusion_item.opacity() == pytest.approx(0.3)
    panel.colormap.setCurrentIndex(panel.colormap.findData("inferno"))
    assert np.array_equal(view.fusion_item.lut, fusion_lut("inferno"))
    window.view_grid.set_layout("2x2")  # the reformats show it too
    coronal = window.views["coronal"]
    g = coronal.geometry_
    assert np.array_equal(coronal.fusion_item.image,
                          g.image(expected.array, state.plane_slice("coronal")), equal_nan=True)
    panel.remove_button.click()
    assert state.fusion is None and not view.fusion_item.isVisible()


def test_registered_fusion_uses_the_rigid_registration(window, qtbot):
    from medview.core.registration.rigid import register_rigid

    panel = window.fusion_panel
    panel.register.setChecked(True)
    with qtbot.waitSignal(panel.fused, timeout=120_000):
        panel.fuse_selected()
    assert panel.transform is not None
    moving = library.load_series(window.catalog, panel.series.currentData())
    expected = register_rigid(window.state.volume, moving, default_value=np.nan)
    got, want = panel.transform.rows[0], expected["transform"].rows[0]
    # the same seeded registration; SimpleITK's threaded metric may differ in the last digits
    for key in ("rotation_x_deg", "rotation_y_deg", "rotation_z_deg", "translation_x_mm",
                "translation_y_mm", "translation_z_mm"):
        assert got[key] == pytest.approx(want[key], abs=1e-3)
    np.testing.assert_allclose(window.state.fusion.array, expected["volume"].array,
                               atol=1e-2 * float(np.nanmax(expected["volume"].array)
                                                 - np.nanmin(expected["volume"].array)))
    # PET and CT share the frame of reference: the registration stays near the identity
    assert panel.transform.rows[0]["translation_mm"] < 2.0
    assert window.state.fusion.shape == window.state.volume.shape
    assert "registered" in panel.status.text()


def test_fusion_takes_a_series_from_the_volume_cache(app, qtbot, tmp_path, pet_ct):
    import shutil

    study = tmp_path / "study"
    shutil.copytree(pet_ct, study)
    w = window_on_ct(qtbot, tmp_path, study)
    ct_uid = w.state.volume.metadata["SeriesInstanceUID"]
    pet_uid = next(s.series_uid for p in library.list_patients(w.catalog)
                   for st in p.studies for s in st.series if s.modality == "PT")
    with qtbot.waitSignal(w.series_opened, timeout=60_000):
        w.open_series(pet_uid)  # decoded once, now in the cache
    with qtbot.waitSignal(w.series_opened, timeout=60_000):
        w.open_series(ct_uid)
    shutil.rmtree(study / "pet")  # only the cache can provide it now
    panel = w.fusion_panel
    panel.series.setCurrentIndex(panel.series.findData(pet_uid))
    with qtbot.waitSignal(panel.fused, timeout=60_000):
        panel.fuse_selected()
    assert w.state.fusion.metadata["Modality"] == "PT"

"""The processing-chain panel on real CT: build by clicking, edit, preview, run, cancel, pick."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PySide6.QtCore import QModelIndex, Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QCheckBox, QDoubleSpinBox, QLineEdit, QSpinBox
from realparts import REPO
from viewer_helpers import dock_session

from medview.app.chain_model import result_layer_names
from medview.app.chain_preview import slab
from medview.app.state import ViewerState
from medview.core.labelmap import LabelMap
from medview.core.table import Table
from medview.gui.chain_panel import ChainPanel
from medview.gui.layers_panel import LayersPanel, TablePanel
from medview.gui.slice_viewer import SliceViewer
from medview.gui.tasks import TaskRunner
from medview.pipeline.chain import Chain
from medview.pipeline.executors import register_executor, unregister_executor
from medview.pipeline.runner import run_chain

TIMEOUT_MS = 120_000
CHAINS = REPO / "resources" / "chains"

#: smoothing, a threshold and connected components (a label map and a table): ~3 s on the CT
RUN_CHAIN = {
    "name": "test: lungs",
    "steps": [
        {"step": "smooth.gaussian", "params": {"sigma_mm": 1.0}, "output": "smoothed"},
        {"step": "segment.threshold", "params": {"low": -950.0, "high": -400.0}},
        {"step": "segment.components", "params": {"min_volume_ml": 5.0}, "output": "parts"},
    ],
}


class Setup:
    def __init__(self, qtbot, volume):
        self.state = ViewerState()
        self.layers = self.state.layers
        self.tasks = TaskRunner()
        self.session = dock_session(self.tasks)
        self.panel = ChainPanel(self.state, self.layers, self.session)
        qtbot.addWidget(self.panel)
        self.panel.resize(420, 900)
        self.panel.show()
        if volume is not None:
            self.state.set_volume(volume)


@pytest.fixture
def setup(app, qtbot, ct_volume):
    s = Setup(qtbot, ct_volume)
    yield s
    assert s.session.close(timeout=30)


def _palette_item(panel: ChainPanel, step_id: str):
    tree = panel.palette
    for i in range(tree.topLevelItemCount()):
        cat = tree.topLevelItem(i)
        for j in range(cat.childCount()):
            if cat.child(j).data(0, Qt.ItemDataRole.UserRole) == step_id:
                return cat.child(j)
    raise AssertionError(f"{step_id} is not in the palette")


def _chain_texts(panel: ChainPanel) -> list[str]:
    return [panel.chain_list.item(i).text() for i in range(panel.chain_list.count())]


def test_palette_lists_every_step_by_category(setup):
    from medview.pipeline.registry import all_steps

    tree = setup.panel.palette
    found = {}
    for i in range(tree.topLevelItemCount()):
        cat = tree.topLevelItem(i)
        for j in range(cat.childCount()):
            found[cat.child(j).data(0, Qt.ItemDataRole.UserRole)] = cat.text(0)
    assert found == {s.id: s.category for s in all_steps()}
    item = _palette_item(setup.panel, "smooth.gaussian")
    assert item.text(0) == "Gaussian smoothing"
    assert "smooth.gaussian" in item.toolTip(0)


def test_add_reorder_disable_and_edit_by_clicking(setup, qtbot):
    panel, model = setup.panel, setup.panel.model
    # double-click in the palette appends; "Add" appends the selected step
    panel.palette.itemDoubleClicked.emit(_palette_item(panel, "smooth.gaussian"), 0)
    panel.palette.setCurrentItem(_palette_item(panel, "segment.threshold"))
    qtbot.mouseClick(panel.add_button, Qt.MouseButton.LeftButton)
    panel.palette.itemDoubleClicked.emit(_palette_item(panel, "segment.open"), 0)
    assert [s.step for s in model.steps] == ["smooth.gaussian", "segment.threshold",
                                             "segment.open"]
    assert _chain_texts(panel) == ["Gaussian smoothing", "Threshold", "Opening"]
    assert model.selected == 2

    # a row moved in the list (what a drag does) reorders the model
    list_model = panel.chain_list.model()
    assert list_model.moveRow(QModelIndex(), 2, QModelIndex(), 0)
    qtbot.waitUntil(lambda: model.steps[0].step == "segment.open", timeout=5000)
    assert [s.step for s in model.steps] == ["segment.open", "smooth.gaussian",
                                             "segment.threshold"]
    qtbot.mouseClick(panel.down_button, Qt.MouseButton.LeftButton)  # selection moves down
    assert [s.step for s in model.steps][:2] == ["smooth.gaussian", "segment.open"]

    # the check box disables a step
    panel.chain_list.item(1).setCheckState(Qt.CheckState.Unchecked)
    assert model.steps[1].enabled is False
    assert model.to_dict()["steps"][1]["enabled"] is False

    # the parameter form follows the selection; a spin box edits the parameter
    panel.chain_list.setCurrentRow(0)
    sigma = panel.form.fields["sigma_mm"]
    assert isinstance(sigma, QDoubleSpinBox)
    spec = model.steps[0].spec.param("sigma_mm")
    assert sigma.suffix() == f" {spec.unit}" == " mm"
    assert (sigma.minimum(), sigma.maximum()) == (spec.min, spec.max)
    sigma.setValue(2.5)
    assert model.steps[0].params["sigma_mm"] == 2.5
    in_plane = panel.form.fields["in_plane_only"]
    assert isinstance(in_plane, QCheckBox)
    in_plane.setChecked(True)
    assert model.steps[0].params["in_plane_only"] is True
    assert "Gaussian" in panel.help_view.toPlainText()

    # remove
    qtbot.mouseClick(panel.remove_button, Qt.MouseButton.LeftButton)
    assert [s.step for s in model.steps] == ["segment.open", "segment.threshold"]


def test_invalid_values_show_a_message_and_keep_the_model(setup):
    panel, model = setup.panel, setup.panel.model
    panel.add_step("features.statistics")
    field = panel.form.fields["percentiles"]
    assert isinstance(field, QLineEdit)
    before = list(model.steps[0].params["percentiles"])
    field.setText("5, 200")  # above the maximum of 100
    field.editingFinished.emit()
    assert "percentiles" in panel.form.error_label.text()
    assert "maximum" in panel.form.error_label.text()
    assert model.steps[0].params["percentiles"] == before
    field.setText("1, 50, 99")
    field.editingFinished.emit()
    assert model.steps[0].params["percentiles"] == [1.0, 50.0, 99.0]
    assert panel.form.error_label.text() == ""
    bins = panel.form.fields["bins"]
    assert isinstance(bins, QSpinBox)
    bins.setValue(bins.maximum() + 5)  # clamped by the spin box's range from the spec
    assert model.steps[0].params["bins"] == bins.maximum()


def test_load_and_save_round_trip(setup, tmp_path):
    panel = setup.panel
    source = CHAINS / "ct_denoise_lung_threshold.json"
    assert panel.load_chain(source)
    assert _chain_texts(panel)[:2] == ["Gaussian smoothing", "Threshold"]
    saved = panel.save_chain(tmp_path / "copy.json")
    assert saved is not None
    assert json.loads(saved.read_text()) == Chain.load(source).to_dict()
    # a broken file is a message, and the chain stays
    bad = tmp_path / "bad.json"
    bad.write_text('{"steps": [{"step": "smooth.gaussian", "params": {"sigma_mm": -1}}]}')
    assert not panel.load_chain(bad)
    assert "sigma_mm" in str(panel.last_error.exception)
    assert len(panel.model) == 5


def test_preview_equals_the_chain_on_that_slice(setup, qtbot, ct_volume):
    panel, state = setup.panel, setup.state
    panel.add_step("segment.threshold")
    state.set_slice(100)
    with qtbot.waitSignal(panel.preview_ready, timeout=TIMEOUT_MS):
        panel.preview_check.setChecked(True)
    # a parameter change re-runs the preview (debounced)
    with qtbot.waitSignal(panel.preview_ready, timeout=TIMEOUT_MS) as blocker:
        panel.form.fields["low"].setValue(-500.0)
    result = blocker.args[0]
    chain = panel.model.to_chain()
    expected = run_chain(chain, {"image": slab(ct_volume, 100, 101)}).result
    assert result.kind == "labels" and result.z == 100 and result.halo == 0 and result.exact
    assert np.array_equal(state.preview.image, expected.array[0])
    assert expected.array[0].any() and not expected.array[0].all()
    assert np.array_equal(panel.form.model.steps[0].params["low"], -500.0)
    # the view shows it over the original; "Show original" hides it
    viewer = SliceViewer(state)
    qtbot.addWidget(viewer)
    assert viewer.preview_item.isVisible()
    panel.original_check.setChecked(True)
    assert not viewer.preview_item.isVisible()
    panel.original_check.setChecked(False)
    assert viewer.preview_item.isVisible()
    # another slice: the preview follows
    with qtbot.waitSignal(panel.preview_ready, timeout=TIMEOUT_MS) as blocker:
        state.set_slice(60)
    assert blocker.args[0].z == 60
    expected = run_chain(chain, {"image": slab(ct_volume, 60, 61)}).result
    assert np.array_equal(state.preview.image, expected.array[0])


def test_preview_of_a_3d_step_uses_a_slab_and_matches_the_full_run(setup, qtbot, ct_volume):
    panel, state = setup.panel, setup.state
    panel.add_step("smooth.gaussian", )
    panel.form.fields["sigma_mm"].setValue(2.0)
    state.set_slice(70)
    with qtbot.waitSignal(panel.preview_ready, timeout=TIMEOUT_MS) as blocker:
        panel.preview_check.setChecked(True)
    result = blocker.args[0]
    assert result.kind == "image" and result.exact
    assert result.halo == 4  # 4 sigma = 8 mm over 2.5 mm slices
    chain = panel.model.to_chain()
    expected = run_chain(chain, {"image": slab(ct_volume, 60, 81)}).result.array[10]
    assert np.array_equal(result.image, expected)


def test_full_run_makes_layers_equal_to_run_chain(setup, qtbot, ct_volume, tmp_path):
    panel, layers, state = setup.panel, setup.layers, setup.state
    panel.model.set_chain(Chain.from_dict(RUN_CHAIN))
    with qtbot.waitSignal(panel.run_finished, timeout=TIMEOUT_MS) as blocker:
        task = panel.run()
    assert task is not None
    new = blocker.args[0]
    expected = run_chain(Chain.from_dict(RUN_CHAIN), {"image": ct_volume})
    named = result_layer_names(Chain.from_dict(RUN_CHAIN), expected.outputs(exclude={"image"}))
    outputs = {named[k]: v for k, v in expected.outputs(exclude={"image"}).items()}
    # output names as the chain gives them; the unnamed step by its title, not "step2"
    assert [layer.name for layer in new] == ["smoothed", "Threshold", "parts.labels",
                                             "parts.table"] == list(outputs)
    for layer in new:
        value = outputs[layer.name]
        if isinstance(value, Table):
            assert layer.kind == "table" and layer.value.rows == value.rows
        else:
            assert np.array_equal(layer.value.array, value.array)
            assert layer.kind == ("labels" if isinstance(value, LabelMap) else "volume")
    assert panel.progress_bar.isHidden()
    assert "Done" in panel.status.text()

    # the layers: a derived volume replaces the series in the views, crosshair kept
    state.set_cursor(200, 300, 90)
    lp = LayersPanel(layers, state)
    qtbot.addWidget(lp)
    smoothed = layers.by_name("smoothed")
    lp._on_item_clicked(lp.item_of(smoothed))
    assert state.volume is smoothed.value and state.cursor == (200, 300, 90)
    # a label map: the overlay, with its legend
    parts = layers.by_name("parts.labels")
    lp.item_of(parts).setCheckState(Qt.CheckState.Checked)
    assert state.labels is parts.value
    assert lp.legend.count() == len(parts.value.segments) > 0
    lp.item_of(layers.series).setSelected(True)
    lp._on_item_clicked(lp.item_of(layers.series))
    assert state.volume is ct_volume and state.labels is parts.value
    # a table: the table dock, saved as CSV
    table = layers.by_name("parts.table")
    tp = TablePanel()
    qtbot.addWidget(tp)
    tp.set_table(table.value, table.name)
    assert tp.model.rowCount() == len(table.value.rows)
    path = tp.save_csv(tmp_path / "parts.csv")
    assert path.read_text() == table.value.to_csv()


def test_cancel_leaves_no_partial_layer(setup, qtbot):
    panel, layers = setup.panel, setup.layers
    panel.model.set_chain(Chain.from_dict({"steps": [
        {"step": "segment.threshold", "params": {"low": 0.0, "high": 100.0}},
        {"step": "smooth.curvature_diffusion", "params": {"iterations": 20}},
    ]}))
    before = list(layers.layers)
    with qtbot.waitSignal(panel.run_cancelled, timeout=TIMEOUT_MS):
        task = panel.run()
        qtbot.waitUntil(lambda: task.progress.fraction > 0.0, timeout=TIMEOUT_MS)
        panel.cancel_button.click()
    assert layers.layers == before
    assert panel.run_task is None and panel.run_button.isEnabled()
    assert "cancelled" in panel.status.text()


def test_a_failing_step_is_a_message(setup, qtbot, tmp_path):
    panel, layers = setup.panel, setup.layers
    panel.add_step("segment.classifier_apply")
    panel.form.fields["model_path"].setText(str(tmp_path / "missing.model"))
    panel.form.fields["model_path"].editingFinished.emit()
    errors = []
    panel.error_handler = errors.append
    with qtbot.waitSignal(panel.run_failed, timeout=TIMEOUT_MS):
        panel.run()
    assert errors and "missing.model" in errors[0].message
    assert len(layers.layers) == 1


def test_invalid_chain_does_not_start(setup):
    panel = setup.panel
    errors = []
    panel.error_handler = errors.append
    panel.add_step("segment.region_grow")  # seeds not picked yet
    assert panel.run() is None
    assert "seeds" in errors[0].message


def test_seed_pick_by_clicking_in_a_view(setup, qtbot, ct_volume):
    panel, state = setup.panel, setup.state
    viewer = SliceViewer(state)
    qtbot.addWidget(viewer)
    viewer.resize(600, 600)
    viewer.show()
    qtbot.waitExposed(viewer)
    viewer.point_picked.connect(panel.add_picked_point)
    panel.add_step("segment.region_grow")
    state.set_slice(95)
    pick = panel.form.pick_buttons["seeds"]
    pick.click()
    assert panel.form.picking() == "seeds"
    for x, y in ((150, 210), (300, 260)):
        QTest.mouseClick(viewer.viewport(), Qt.MouseButton.LeftButton,
                         pos=viewer.viewport_pos_of_pixel(x, y))
    seeds = panel.model.steps[0].params["seeds"]
    expected = [list(ct_volume.index_to_lps((x, y, 95.0))) for x, y in ((150, 210), (300, 260))]
    assert np.allclose(seeds, expected)
    # back to voxels: the seeds are where we clicked
    assert np.allclose(ct_volume.lps_to_index(np.asarray(seeds[1])), (300, 260, 95), atol=1e-6)
    assert "(" in panel.form.fields["seeds"].text()
    pick.click()
    QTest.mouseClick(viewer.viewport(), Qt.MouseButton.LeftButton,
                     pos=viewer.viewport_pos_of_pixel(10, 10))
    assert len(panel.model.steps[0].params["seeds"]) == 2


def test_run_on_lists_registered_executors(setup):
    class Echo:
        name = "Test endpoint"

        def run(self, chain, inputs, *, progress):
            return run_chain(chain, inputs, progress=progress)

    combo = setup.panel.executor_combo
    assert [combo.itemText(i) for i in range(combo.count())] == ["Local"]
    register_executor(Echo())
    try:
        assert [combo.itemText(i) for i in range(combo.count())] == ["Local", "Test endpoint"]
    finally:
        unregister_executor("Test endpoint")
    assert combo.count() == 1


def test_main_window_chain_dock_run_and_pick(app, qtbot, tmp_path, demo_dir, demo_volume):
    from medview.gui.main_window import MainWindow

    window = MainWindow(catalog_path=tmp_path / "catalog.sqlite")
    qtbot.addWidget(window)
    window.resize(1400, 900)
    window.show()
    qtbot.waitExposed(window)
    try:
        with qtbot.waitSignal(window.series_opened, timeout=TIMEOUT_MS):
            window.import_folder(demo_dir, open_first=True)
        assert not window.chain_dock.isVisible()
        window.chain_action.trigger()
        assert window.chain_dock.isVisible()
        assert window.dockWidgetArea(window.chain_dock) == Qt.DockWidgetArea.RightDockWidgetArea
        panel = window.chain_panel
        assert [x.kind for x in window.layers.layers] == ["series"]
        panel.add_step("segment.otsu")
        with qtbot.waitSignal(panel.run_finished, timeout=TIMEOUT_MS) as blocker:
            task = panel.run()
            assert window._progress_task is task and window.progress_bar.isVisible()
        expected = run_chain(panel.model.to_chain(), {"image": demo_volume}).result
        (layer,) = blocker.args[0]
        assert np.array_equal(layer.value.array, expected.array)
        # seeds picked in the window's own view, in LPS mm of the series (sagittal MR)
        panel.add_step("segment.region_grow")
        panel.form.pick_buttons["seeds"].click()
        viewer = window.viewer
        z = window.state.slice_index
        QTest.mouseClick(viewer.viewport(), Qt.MouseButton.LeftButton,
                         pos=viewer.viewport_pos_of_pixel(100, 120))
        (seed,) = panel.model.steps[1].params["seeds"]
        assert np.allclose(seed, demo_volume.index_to_lps((100.0, 120.0, float(z))))
    finally:
        assert window.tasks.shutdown(timeout_ms=30_000)

"""After a chain run in the window: its last output is shown and selected, layers carry the
chain's output names, and the layers' check boxes can be seen on the dark theme."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtGui import QImage

from medview.core.labelmap import LabelMap
from medview.gui.main_window import MainWindow
from medview.pipeline.chain import Chain

CHAIN = {"name": "test: demo", "steps": [
    {"step": "smooth.gaussian", "params": {"sigma_mm": 1.0}, "output": "smoothed"},
    {"step": "segment.otsu", "params": {}},
    {"step": "segment.components", "params": {"min_volume_ml": 0.1}, "output": "parts"},
]}


@pytest.fixture
def window(app, qtbot, tmp_path, demo_dir):
    w = MainWindow(catalog_path=tmp_path / "catalog.sqlite")
    qtbot.addWidget(w)
    w.resize(1300, 860)
    w.show()
    qtbot.waitExposed(w)
    with qtbot.waitSignal(w.series_opened, timeout=60_000):
        w.import_folder(demo_dir, open_first=True)
    yield w
    assert w.tasks.shutdown(timeout_ms=30_000)


def _rgb(image: QImage) -> np.ndarray:
    img = image.convertToFormat(QImage.Format.Format_RGB888)
    arr = np.frombuffer(img.constBits(), np.uint8).reshape(img.height(), img.bytesPerLine())
    return arr[:, : img.width() * 3].reshape(img.height(), img.width(), 3).astype(int)


def test_the_last_output_is_shown_selected_and_named_after_the_chain(window, qtbot):
    panel = window.chain_panel
    window.chain_action.trigger()
    panel.model.set_chain(Chain.from_dict(CHAIN))
    with qtbot.waitSignal(panel.run_finished, timeout=120_000) as blocker:
        panel.run()
    names = [layer.name for layer in blocker.args[0]]
    assert names == ["smoothed", "Otsu threshold", "parts.labels", "parts.table"]
    assert not any(n.startswith("step") for n in names)
    main = window.layers.by_name("parts.labels")
    assert panel.main_layer is main
    assert window.layers.shown_labels is main
    assert isinstance(window.state.labels, LabelMap) and window.state.labels is main.value
    assert window.layers_dock.isVisible()
    current = window.layers_panel.list.currentItem()
    assert window.layers_panel.layer_of(current) is main


def test_layer_check_boxes_stand_out_from_the_dark_list(window, qtbot):
    panel = window.chain_panel
    window.chain_action.trigger()
    panel.model.set_chain(Chain.from_dict(CHAIN))
    with qtbot.waitSignal(panel.run_finished, timeout=120_000):
        panel.run()
    lp = window.layers_panel
    window.layers_dock.raise_()
    qtbot.waitExposed(lp.list)
    background = np.array(lp.list.palette().base().color().getRgb()[:3])
    for name, checked in (("parts.labels", True), ("Otsu threshold", False)):
        item = lp.item_of(window.layers.by_name(name))
        assert bool(item.checkState().value) == checked
        rect = lp.list.visualItemRect(item)
        pixels = _rgb(lp.list.viewport().grab(rect).toImage())
        box = pixels[:, : rect.height() + 4]  # the indicator comes first in the row
        if lp.list.currentItem() is item:  # the selected row has the highlight behind it
            background_here = np.array(lp.list.palette().highlight().color().getRgb()[:3])
        else:
            background_here = background
        contrast = np.abs(box - background_here).sum(axis=2).max()
        # Fusion on the dark palette: 16 for an unticked box (invisible), 246 ticked
        assert contrast > 300, (name, contrast)  # a light outline, not dark grey on black

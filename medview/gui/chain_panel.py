"""The processing-chain panel: build a chain by clicking, preview it live, run it.

Top to bottom: the step palette (the registry's steps by category; double-click or "Add"
appends), the chain (drag to reorder, check box to enable, Remove), the selected step's help
and parameter form (:mod:`medview.gui.param_form`), the chain's extra inputs (e.g. the
scribbles of the classifier chain: chosen among the layers), Load/Save, "Run on" (the
executors of :mod:`medview.pipeline.executors`: "Local", plus any remote endpoint
registered there), Run/Cancel with per-step progress, and Live preview with "Show original"
to compare.

The full run and the live preview are the Session's (:mod:`medview.gui.chain_running`, a
mixin of the panel along that seam).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QScrollArea,
    QSplitter,
    QTextBrowser,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from medview.app.chain_model import ChainModel
from medview.app.chain_preview import PreviewResult
from medview.app.layers import LayerList
from medview.app.messages import TaskError
from medview.app.session import Session
from medview.app.state import ViewerState
from medview.gui.chain_running import ChainRunning
from medview.gui.dochtml import docstring_html
from medview.gui.param_form import ParamForm
from medview.gui.step_palette import ID_ROLE, StepPalette
from medview.gui.tasks import Task
from medview.pipeline.chain import ChainError

__all__ = ["PREVIEW_DELAY_MS", "ChainPanel"]

log = logging.getLogger(__name__)

#: Debounce of the live preview: it runs this long after the last change.
PREVIEW_DELAY_MS = 250


class _ChainList(QListWidget):
    """The chain's steps; internal drag and drop reorders them."""

    def __init__(self, parent: QWidget):
        super().__init__(parent)
        self.setDragDropMode(QAbstractItemView.DragDropMode.InternalMove)
        self.setDefaultDropAction(Qt.DropAction.MoveAction)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)

    def uids(self) -> list[int]:
        return [self.item(i).data(ID_ROLE) for i in range(self.count())]


class ChainPanel(ChainRunning, QWidget):
    """Build, preview and run a processing chain on the series of ``state``.

    Parameters
    ----------
    state : ViewerState
    layers : LayerList
        Where a finished run's results go (and where extra chain inputs are chosen).
    session : Session
        Runs the chain and the previews; its ``run_on`` is where the full run happens
        (shared with the window's other docks).

    Signals
    -------
    run_started(object)
        A full run's :class:`~medview.gui.tasks.Task` (the window tracks its progress).
    run_finished(object)
        The list of new :class:`~medview.app.layers.Layer`.
    run_failed(object), preview_failed(object)
        A :class:`~medview.app.messages.TaskError`.
    run_cancelled()
    preview_ready(object)
        The :class:`~medview.app.chain_preview.PreviewResult` shown.
    """

    run_started = Signal(object)
    run_finished = Signal(object)
    run_failed = Signal(object)
    run_cancelled = Signal()
    preview_ready = Signal(object)
    preview_failed = Signal(object)

    def __init__(self, state: ViewerState, layers: LayerList, session: Session,
                 parent: QWidget | None = None):
        super().__init__(parent)
        self.state = state
        self.session = session
        self.run_on = session.run_on
        self.layers = layers
        self.model = ChainModel()
        self.run_task: Task | None = None
        #: the layer of the last run's main (last) output, shown and selected after the run
        self.main_layer = None
        self.preview_task: Task | None = None
        self.last_error: TaskError | None = None
        self.last_preview: PreviewResult | None = None
        self.last_dir = ""
        self._preview_seq = 0
        self._syncing = False
        self.preview_timer = QTimer(self)
        self.preview_timer.setSingleShot(True)
        self.preview_timer.setInterval(PREVIEW_DELAY_MS)
        self.preview_timer.timeout.connect(self.start_preview)

        splitter = QSplitter(Qt.Orientation.Vertical, self)
        splitter.addWidget(self._build_palette())
        splitter.addWidget(self._build_chain())
        splitter.addWidget(self._build_step_editor())
        splitter.setStretchFactor(2, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(splitter, 1)
        layout.addWidget(self._build_run_box())

        self.model.steps_changed.connect(self._sync_list)
        self.model.step_changed.connect(self._on_step_changed)
        self.model.selection_changed.connect(self._on_selection_changed)
        self.model.changed.connect(self._on_chain_changed)
        self.model.changed.connect(self._update_inputs)
        self.layers.layers_changed.connect(self._update_inputs)
        self.state.slice_changed.connect(self._on_slice_changed)
        self.state.volume_changed.connect(self._on_volume_changed)
        self._sync_list()
        self._update_inputs()
        self._update_buttons()

    # -- construction ------------------------------------------------------------------
    def _build_palette(self) -> QWidget:
        box = QGroupBox("Steps", self)
        v = QVBoxLayout(box)
        self.palette = StepPalette(box)
        self.palette.itemDoubleClicked.connect(self._on_palette_activated)
        self.add_button = QPushButton("Add", box)
        self.add_button.setToolTip("Append the selected step to the chain (or double-click it)")
        self.add_button.clicked.connect(self.add_selected_step)
        v.addWidget(self.palette)
        v.addWidget(self.add_button)
        return box

    def _build_chain(self) -> QWidget:
        box = QGroupBox("Chain", self)
        v = QVBoxLayout(box)
        self.chain_list = _ChainList(box)
        self.chain_list.setObjectName("chain_list")
        self.chain_list.model().rowsMoved.connect(self._on_rows_moved)
        self.chain_list.itemChanged.connect(self._on_item_changed)
        self.chain_list.currentRowChanged.connect(self._on_current_row_changed)
        v.addWidget(self.chain_list)
        h = QHBoxLayout()
        self.remove_button = QPushButton("Remove", box)
        self.remove_button.clicked.connect(self.remove_selected_step)
        self.up_button = QPushButton("Up", box)
        self.up_button.clicked.connect(lambda: self._move_selected(-1))
        self.down_button = QPushButton("Down", box)
        self.down_button.clicked.connect(lambda: self._move_selected(+1))
        self.load_button = QPushButton("Load…", box)
        self.load_button.clicked.connect(self.choose_chain_to_load)
        self.save_button = QPushButton("Save…", box)
        self.save_button.clicked.connect(self.choose_chain_to_save)
        for b in (self.remove_button, self.up_button, self.down_button):
            h.addWidget(b)
        v.addLayout(h)
        h2 = QHBoxLayout()
        h2.addWidget(self.load_button)
        h2.addWidget(self.save_button)
        v.addLayout(h2)
        return box

    def _build_step_editor(self) -> QWidget:
        box = QGroupBox("Step", self)
        v = QVBoxLayout(box)
        self.help_view = QTextBrowser(box)
        self.help_view.setObjectName("step_help")
        self.help_view.setMaximumHeight(110)
        self.form = ParamForm(self.model, box)
        scroll = QScrollArea(box)
        scroll.setWidgetResizable(True)
        scroll.setWidget(self.form)
        self.inputs_box = QWidget(box)
        self.inputs_form = QFormLayout(self.inputs_box)
        self.inputs_form.setContentsMargins(0, 0, 0, 0)
        self.input_combos: dict[str, QComboBox] = {}
        v.addWidget(self.help_view)
        v.addWidget(scroll, 1)
        v.addWidget(self.inputs_box)
        return box

    # -- palette and chain list --------------------------------------------------------
    def _on_palette_activated(self, item: QTreeWidgetItem, column: int = 0) -> None:
        step_id = item.data(0, ID_ROLE)
        if step_id:
            self.add_step(step_id)

    def add_selected_step(self) -> None:
        item = self.palette.currentItem()
        if item is not None:
            self._on_palette_activated(item)

    def add_step(self, step_id: str) -> int:
        """Append step ``step_id`` to the chain and select it."""
        return self.model.add_step(step_id)

    def remove_selected_step(self) -> None:
        if self.model.selected >= 0:
            self.model.remove_step(self.model.selected)

    def _move_selected(self, delta: int) -> None:
        i = self.model.selected
        if i >= 0:
            self.model.move_step(i, i + delta)

    def _sync_list(self) -> None:
        self._syncing = True
        try:
            self.chain_list.clear()
            for step, uid in zip(self.model.steps, self.model.uids(), strict=True):
                item = QListWidgetItem(step.spec.title)
                item.setData(ID_ROLE, uid)
                item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable
                              | Qt.ItemFlag.ItemIsDragEnabled)
                item.setCheckState(Qt.CheckState.Checked if step.enabled
                                   else Qt.CheckState.Unchecked)
                item.setToolTip(step.step + (f" → {step.output}" if step.output else ""))
                self.chain_list.addItem(item)
            self.chain_list.setCurrentRow(self.model.selected)
        finally:
            self._syncing = False
        self._update_buttons()

    def _on_rows_moved(self, *args) -> None:
        # after the list moved its own row: apply the new order once the drop is done
        QTimer.singleShot(0, self._apply_list_order)

    def _apply_list_order(self) -> None:
        if not self._syncing:
            self.model.set_order(self.chain_list.uids())

    def _on_item_changed(self, item: QListWidgetItem) -> None:
        if self._syncing:
            return
        row = self.chain_list.row(item)
        if 0 <= row < len(self.model):
            self.model.set_enabled(row, item.checkState() == Qt.CheckState.Checked)

    def _on_current_row_changed(self, row: int) -> None:
        if not self._syncing:
            self.model.select(row)

    def _on_step_changed(self, index: int) -> None:
        item = self.chain_list.item(index)
        step = self.model.steps[index]
        if item is not None:
            self._syncing = True
            item.setCheckState(Qt.CheckState.Checked if step.enabled
                               else Qt.CheckState.Unchecked)
            self._syncing = False

    def _on_selection_changed(self, index: int) -> None:
        if self.chain_list.currentRow() != index:
            self._syncing = True
            self.chain_list.setCurrentRow(index)
            self._syncing = False
        step = self.model.selected_step
        if step is None:
            self.help_view.setPlainText("")
        else:
            spec = step.spec
            # numpydoc rendered: sections, parameter lists, ``literals`` as code
            self.help_view.setHtml(docstring_html(
                spec.doc, title=f"{spec.title} ({spec.id}, v{spec.version})"))
        self._update_buttons()

    def _update_buttons(self) -> None:
        has = self.model.selected >= 0
        self.remove_button.setEnabled(has)
        self.up_button.setEnabled(has and self.model.selected > 0)
        self.down_button.setEnabled(has and self.model.selected < len(self.model) - 1)
        running = self.run_task is not None
        self.run_button.setEnabled(not running)
        self.cancel_button.setEnabled(running)

    # -- extra chain inputs ------------------------------------------------------------
    def _update_inputs(self) -> None:
        names = list(self.model.inputs)[1:]
        wanted = {n: self.model.inputs[n] for n in names}
        while self.inputs_form.rowCount():
            self.inputs_form.removeRow(0)
        previous = {n: c.currentText() for n, c in self.input_combos.items()}
        self.input_combos = {}
        for name, kind in wanted.items():
            combo = QComboBox(self.inputs_box)
            combo.setObjectName(f"input_{name}")
            kinds = ("labels",) if kind == "labelmap" else ("series", "volume", "labels")
            for layer in self.layers.of_kind(*kinds):
                combo.addItem(layer.name, layer.uid)
            if previous.get(name):
                combo.setCurrentText(previous[name])
            combo.currentIndexChanged.connect(lambda *a: self._on_chain_changed())
            self.input_combos[name] = combo
            self.inputs_form.addRow(f"Input “{name}” ({kind})", combo)
        self.inputs_box.setVisible(bool(wanted))

    def chain_inputs(self) -> dict[str, Any]:
        """The chain's inputs: the series as the first, the chosen layers as the others.

        Raises
        ------
        ChainError
            When no series is open or an extra input has no layer to take.
        """
        series = self.layers.series
        if series is None:
            raise ChainError("open a series first: the chain runs on the series shown")
        names = list(self.model.inputs)
        inputs: dict[str, Any] = {names[0]: series.value}
        for name in names[1:]:
            combo = self.input_combos.get(name)
            uid = combo.currentData() if combo is not None else None
            layer = next((x for x in self.layers.layers if x.uid == uid), None)
            if layer is None:
                raise ChainError(f"chain input {name!r} ({self.model.inputs[name]}): no layer "
                                 "of that kind to take; run a chain that makes one first")
            inputs[name] = layer.value
        return inputs

    # -- load and save -----------------------------------------------------------------
    def choose_chain_to_load(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Load a processing chain", self.last_dir,
                                              "Chains (*.json);;All files (*)")
        if path:
            self.load_chain(path)

    def load_chain(self, path: str | os.PathLike) -> bool:
        """Replace the chain by the one in ``path``; False (with a message) on error."""
        try:
            self.model.load(path)
        except (ChainError, OSError, UnicodeDecodeError) as exc:
            self._report(TaskError("Loading the chain", exc, ""))
            return False
        self.last_dir = str(Path(path).parent)
        self.status.setText(f"Loaded {Path(path).name}: {len(self.model)} step(s)")
        return True

    def choose_chain_to_save(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save the processing chain",
                                              self.last_dir or "chain.json",
                                              "Chains (*.json)")
        if path:
            if not path.lower().endswith(".json"):
                path += ".json"
            self.save_chain(path)

    def save_chain(self, path: str | os.PathLike) -> Path | None:
        """Save the chain as JSON (atomically); None (with a message) on error."""
        try:
            saved = self.model.save(path)
        except (ChainError, OSError) as exc:
            self._report(TaskError("Saving the chain", exc, ""))
            return None
        self.status.setText(f"Saved {saved}")
        return saved

    # -- series and picking ------------------------------------------------------------
    def add_picked_point(self, index_xyz) -> bool:
        """A view was clicked at voxel ``(x, y, z)``: add its LPS position (mm) to the
        points parameter being picked; False when none is."""
        series = self.layers.series
        if series is None or not self.form.picking():
            return False
        lps = series.value.index_to_lps(tuple(float(c) for c in index_xyz))
        return self.form.add_point(lps)

    # -- errors ------------------------------------------------------------------------
    def _report(self, error: TaskError) -> None:
        self.last_error = error
        log.warning("%s failed: %s", error.title, error.message)
        self.status.setText(f"{error.title} failed: {error.message}")
        if self.error_handler is not None:
            self.error_handler(error)

    #: The "run locally instead?" question after an unreachable endpoint (None before).
    fallback_box = None

    #: Called with each TaskError (the main window shows a message box); None: status only.
    error_handler: Callable[[TaskError], None] | None = None

    def shown_layer_names(self) -> list[str]:
        return [layer.name for layer in self.layers.layers if self.layers.is_shown(layer)]

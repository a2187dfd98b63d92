"""The processing-chain panel: build a chain by clicking, preview it live, run it.

Top to bottom: the step palette (the registry's steps by category; double-click or "Add"
appends), the chain (drag to reorder, check box to enable, Remove), the selected step's help
and parameter form (:mod:`medview.gui.param_form`), the chain's extra inputs (e.g. the
scribbles of the classifier chain: chosen among the layers), Load/Save, "Run on" (the
executors of :mod:`medview.pipeline.executors`: "Local", plus any remote endpoint
registered there), Run/Cancel with per-step progress, and Live preview with "Show original"
to compare.

The full run is a task of the window's :class:`~medview.gui.tasks.TaskRunner`; its values
become layers (:mod:`medview.app.layers`) only when it finished, so a cancelled or failed run
leaves the previous results as they were. The live preview runs the chain on the current
slice (:mod:`medview.app.chain_preview`) 250 ms after the last change, in the background;
only the latest request is shown.
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
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSplitter,
    QTextBrowser,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from medview.app.chain_model import ChainModel, result_layer_names
from medview.app.chain_preview import PreviewResult, run_preview
from medview.app.layers import LayerList
from medview.app.messages import TaskError
from medview.app.models import SlicePreview
from medview.app.state import ViewerState
from medview.app.windowing import auto_window, default_window
from medview.core.labelmap import LabelMap
from medview.core.volume import Volume
from medview.gui.dochtml import docstring_html, docstring_summary
from medview.gui.param_form import ParamForm
from medview.gui.run_on import RunOnCombo
from medview.gui.tasks import Task, TaskRunner
from medview.pipeline import executors as executor_registry
from medview.pipeline.chain import ChainError
from medview.pipeline.executors import ExecutorChoice
from medview.pipeline.registry import CATEGORIES, all_steps, broken_plugins

__all__ = ["PREVIEW_DELAY_MS", "ChainPanel"]

log = logging.getLogger(__name__)

#: Debounce of the live preview: it runs this long after the last change.
PREVIEW_DELAY_MS = 250
ID_ROLE = Qt.ItemDataRole.UserRole
#: Steps whose result keeps the series' values (its window suits the preview).
_SAME_UNITS = ("Preprocess",)


class _ChainList(QListWidget):
    """The chain's steps; internal drag and drop reorders them."""

    def __init__(self, parent: QWidget):
        super().__init__(parent)
        self.setDragDropMode(QAbstractItemView.DragDropMode.InternalMove)
        self.setDefaultDropAction(Qt.DropAction.MoveAction)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)

    def uids(self) -> list[int]:
        return [self.item(i).data(ID_ROLE) for i in range(self.count())]


class ChainPanel(QWidget):
    """Build, preview and run a processing chain on the series of ``state``.

    Parameters
    ----------
    state : ViewerState
    layers : LayerList
        Where a finished run's results go (and where extra chain inputs are chosen).
    tasks : TaskRunner
        Runs the full run and the previews.
    run_on : ExecutorChoice, optional
        Where the full run happens, shared with the window's other docks (default: a choice
        of this panel's own, starting at Local).

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

    def __init__(self, state: ViewerState, layers: LayerList, tasks: TaskRunner,
                 parent: QWidget | None = None, *, run_on: ExecutorChoice | None = None):
        super().__init__(parent)
        self.state = state
        self.run_on = run_on if run_on is not None else ExecutorChoice()
        if run_on is None:  # our own: it stops following the registry with us
            self.destroyed.connect(lambda *a, c=self.run_on: c.close())
        self.layers = layers
        self.tasks = tasks
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
        self.palette = QTreeWidget(box)
        self.palette.setObjectName("step_palette")
        self.palette.setHeaderHidden(True)
        categories: dict[str, QTreeWidgetItem] = {}
        for c in CATEGORIES:
            categories[c] = QTreeWidgetItem(self.palette, [c])
        for spec in all_steps():
            item = QTreeWidgetItem(categories[spec.category], [spec.title])
            item.setData(0, ID_ROLE, spec.id)
            item.setToolTip(0, f"{spec.id} (v{spec.version})\n\n{docstring_summary(spec.doc)}")
        broken = broken_plugins()
        if broken:  # a plugin that failed to load: listed, greyed, with the reason
            categories["Unavailable"] = QTreeWidgetItem(self.palette, ["Unavailable"])
            for plugin in broken:
                item = QTreeWidgetItem(categories["Unavailable"],
                                       [f"{plugin.name} (plugin failed to load)"])
                item.setDisabled(True)
                item.setToolTip(0, f"{plugin.value}\n\n{plugin.error}")
        for item in categories.values():
            item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsSelectable)
            if item.childCount() == 0:
                item.setHidden(True)
        self.palette.expandAll()
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

    def _build_run_box(self) -> QWidget:
        box = QWidget(self)
        v = QVBoxLayout(box)
        v.setContentsMargins(0, 0, 0, 0)
        h = QHBoxLayout()
        h.addWidget(QLabel("Run on", box))
        self.executor_combo = RunOnCombo(self.run_on, box)
        self.executor_combo.setToolTip("Where the full run happens (the preview is always "
                                       "local)")
        h.addWidget(self.executor_combo, 1)
        self.run_button = QPushButton("Run", box)
        self.run_button.setObjectName("run_chain")
        self.run_button.setToolTip("Run the chain on the whole series in the background")
        self.run_button.clicked.connect(self.run)
        self.cancel_button = QPushButton("Cancel", box)
        self.cancel_button.clicked.connect(self.cancel_run)
        h.addWidget(self.run_button)
        h.addWidget(self.cancel_button)
        v.addLayout(h)
        self.progress_bar = QProgressBar(box)
        self.progress_bar.setRange(0, 1000)
        self.progress_bar.setVisible(False)
        v.addWidget(self.progress_bar)
        h2 = QHBoxLayout()
        self.preview_check = QCheckBox("Live preview", box)
        self.preview_check.setObjectName("live_preview")
        self.preview_check.setToolTip("Re-run the chain on the current slice after each change")
        self.preview_check.toggled.connect(self.set_preview_enabled)
        self.original_check = QCheckBox("Show original", box)
        self.original_check.setToolTip("Hide the preview to compare with the original slice")
        self.original_check.toggled.connect(lambda on: self.state.set_preview_visible(not on))
        h2.addWidget(self.preview_check)
        h2.addWidget(self.original_check)
        h2.addStretch(1)
        v.addLayout(h2)
        self.status = QLabel("", box)
        self.status.setObjectName("chain_status")
        self.status.setWordWrap(True)
        v.addWidget(self.status)
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

    # -- full run ----------------------------------------------------------------------
    def run(self) -> Task | None:
        """Run the chain on the whole series in the background (None, with a message, when
        the chain or its inputs are invalid or a run is going on)."""
        if self.run_task is not None:
            self.status.setText("A run is going on; wait or cancel it.")
            return None
        try:
            chain = self.model.to_chain()
            inputs = self.chain_inputs()
            executor = self.run_on.executor()
        except (ChainError, KeyError) as exc:
            self._report(TaskError("Running the chain", exc, ""))
            return None
        exclude = set(chain.inputs)
        keeps = _window_rules(chain)

        def work(progress):
            result = executor.run(chain, inputs, progress=progress)
            values = result.outputs(exclude=exclude)
            progress.check()
            windows = {name: _layer_window(name, v, keeps) for name, v in values.items()}
            return values, windows, result.seconds, result.main_output, chain

        title = f"Running {chain.name or 'the chain'} ({executor.name})"
        task = self.tasks.start(title, work, on_finished=self._on_run_finished,
                                on_failed=self._on_run_failed,
                                on_cancelled=self._on_run_cancelled,
                                on_progress=self._on_run_progress)
        self.run_task = task
        self.progress_bar.setValue(0)
        self.progress_bar.setVisible(True)
        self.status.setText(title + "…")
        self._update_buttons()
        self.run_started.emit(task)
        return task

    def cancel_run(self) -> None:
        if self.run_task is not None:
            self.run_task.cancel()

    def _run_ended(self) -> None:
        self.run_task = None
        self.progress_bar.setVisible(False)
        self._update_buttons()

    def _on_run_progress(self, fraction: float, message: str) -> None:
        self.progress_bar.setValue(int(round(fraction * 1000)))
        if message:
            self.progress_bar.setFormat(f"{message} – %p%")
            self.status.setText(message)

    def _on_run_finished(self, payload) -> None:
        self._run_ended()
        values, windows, seconds, main, chain = payload
        # layers carry the chain's output names; unnamed steps their title, not "step3"
        names = result_layer_names(chain, values)
        new = self.layers.add_results({names[k]: v for k, v in values.items()},
                                      windows={names[k]: w for k, w in windows.items()})
        # the chain's last output is what the reader ran it for: shown and selected
        wanted = names.get(main, "")
        self.main_layer = next((layer for layer in reversed(new)
                                if layer.name == wanted or layer.name.startswith(wanted + " (")),
                               new[-1] if new else None)
        if self.main_layer is not None and self.main_layer.kind != "table" \
                and self.main_layer.on_grid:
            self.layers.show(self.main_layer)
        timing = ", ".join(f"{k} {v:.1f} s" for k, v in seconds.items())
        self.status.setText(f"Done: {len(new)} layer(s). {timing}")
        self.run_finished.emit(new)

    def _on_run_failed(self, error: TaskError) -> None:
        self._run_ended()
        from medview.remote.errors import RemoteUnavailable

        if isinstance(error.exception, RemoteUnavailable):
            self._offer_local_run(error)
        else:
            self._report(error)
        self.run_failed.emit(error)

    def _offer_local_run(self, error: TaskError) -> None:
        """The endpoint could not be reached (after the client's retries): say so and offer
        to run the chain here instead."""
        from PySide6.QtWidgets import QMessageBox

        self.last_error = error
        where = self.run_on.name
        self.status.setText(f"{where} is unreachable: {error.message}")
        box = QMessageBox(QMessageBox.Icon.Warning, "Endpoint unreachable",
                          f"{where} could not be reached:\n{error.message}\n\n"
                          "Run the chain on this workstation instead?",
                          QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, self)
        box.setWindowModality(Qt.WindowModality.WindowModal)

        def answered(button) -> None:
            if box.standardButton(button) == QMessageBox.StandardButton.Yes:
                self.run_on.choose(executor_registry.LOCAL.name)
                self.run()

        box.buttonClicked.connect(answered)
        box.open()  # not exec(): no nested event loop
        self.fallback_box = box

    def _on_run_cancelled(self) -> None:
        self._run_ended()
        self.status.setText("Run cancelled; the earlier results are unchanged.")
        self.run_cancelled.emit()

    # -- live preview ------------------------------------------------------------------
    def set_preview_enabled(self, on: bool) -> None:
        if self.preview_check.isChecked() != bool(on):
            self.preview_check.setChecked(bool(on))
            return
        if on:
            self.start_preview()
        else:
            self.preview_timer.stop()
            self._preview_seq += 1  # whatever is running is no longer wanted
            if self.preview_task is not None:
                self.preview_task.cancel()
            self.state.set_preview(None)

    @property
    def preview_enabled(self) -> bool:
        return self.preview_check.isChecked()

    def _on_chain_changed(self) -> None:
        if self.preview_enabled:
            self.preview_timer.start()

    def _on_slice_changed(self, z: int) -> None:
        if self.preview_enabled:
            self.preview_timer.start()

    def start_preview(self) -> Task | None:
        """Preview the chain on the current slice now (the timer calls this)."""
        self.preview_timer.stop()
        self._preview_seq += 1
        seq = self._preview_seq
        if self.preview_task is not None:
            self.preview_task.cancel()  # latest request wins
        if self.state.volume is None or self.layers.series is None or not len(self.model):
            self.state.set_preview(None)
            return None
        try:
            chain = self.model.to_chain()
            inputs = self.chain_inputs()
        except ChainError as exc:
            self.state.set_preview(None)
            self.status.setText(f"Preview: {exc}")
            return None
        z = self.state.cursor[2]
        keeps_units = _keeps_units(chain)

        def work(progress):
            result = run_preview(chain, inputs, z, progress=progress)
            levels = None
            if result.kind == "image" and not keeps_units:
                c, w = auto_window(result.image)
                levels = (c - w / 2.0, c + w / 2.0)
            return result, levels

        task = self.tasks.start("Preview", work,
                                on_finished=lambda r: self._on_preview_finished(seq, *r),
                                on_failed=lambda e: self._on_preview_failed(seq, e))
        self.preview_task = task
        return task

    def _on_preview_finished(self, seq: int, result: PreviewResult, levels) -> None:
        if seq != self._preview_seq or not self.preview_enabled:
            return  # a later request superseded this one
        self.preview_task = None
        self.last_preview = result
        if result.kind == "none" or self.state.volume is None:
            self.state.set_preview(None)
        else:
            if result.kind == "image" and levels is None:
                levels = self.state.window_levels
            self.state.set_preview(SlicePreview(result.z, result.kind, result.image,
                                                result.segments, levels))
        note = "" if result.exact else " (approximate: a step needs the whole volume)"
        self.status.setText(f"Preview of slice {result.z + 1}: {result.name or 'no image'}, "
                            f"{result.seconds * 1000:.0f} ms{note}")
        self.preview_ready.emit(result)

    def _on_preview_failed(self, seq: int, error: TaskError) -> None:
        if seq != self._preview_seq:
            return
        self.preview_task = None
        self.state.set_preview(None)
        self.status.setText(f"Preview failed: {error.message}")
        self.preview_failed.emit(error)

    # -- series and picking ------------------------------------------------------------
    def _on_volume_changed(self, volume) -> None:
        if self.preview_enabled:
            self.preview_timer.start()

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


def _keeps_units(chain) -> bool:
    enabled = [cs for cs in chain.steps if cs.enabled]
    return bool(enabled) and enabled[-1].spec.category in _SAME_UNITS


def _window_rules(chain) -> dict[str, bool]:
    """Output name → whether it keeps the series' values (then its default window, e.g. the
    CT header's, suits it; other results get the 1–99 percentile window)."""
    return {w.name: w.step.spec.category in _SAME_UNITS for w in chain.wiring()}


def _layer_window(name: str, value, keeps: dict[str, bool]):
    if isinstance(value, LabelMap) or not isinstance(value, Volume) or value.is_rgb:
        return None
    if keeps.get(name.split(".", 1)[0], False):
        return default_window(value)
    return auto_window(value.array)

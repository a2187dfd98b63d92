"""The Segmentation dock: label editing and the scribble classifier.

Paint labels on any view (brush, eraser, fill, brush size, label picker), name and colour
the segments, undo and redo. Scribbles are a second label map drawn over the segmentation:
paint a few strokes of each class, Train & Segment (in the background, with progress and
cancel), review the result, correct the scribbles, train again; save the model and apply a
saved one to another series. Training and applying run as the registered steps
``segment.classifier_train_predict`` and ``segment.classifier_apply`` on the executor the
window's "Run on" choice names (Local, or a remote endpoint: de-identified upload, audit
line, progress and cancel as for a chain), through the Session
(:mod:`medview.gui.segment_classifier`, a mixin of the dock along that seam).
"""

from __future__ import annotations

import logging

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QAction, QColor, QIcon, QKeySequence, QPixmap
from PySide6.QtWidgets import (
    QButtonGroup,
    QColorDialog,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QRadioButton,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from medview.app.session import Session
from medview.app.state import ViewerState
from medview.gui.run_on import RunOnCombo
from medview.gui.segment_classifier import ClassifierActions
from medview.gui.tasks import Task

__all__ = ["SegmentPanel"]

log = logging.getLogger(__name__)

#: The classifiers that answer within seconds on a whole series (see core.classifier).
CLASSIFIERS = (("random_forest", "Random forest"), ("mlp", "Neural network (MLP)"))


def _swatch(colour: tuple[int, int, int]) -> QIcon:
    pixmap = QPixmap(14, 14)
    pixmap.fill(QColor(*colour))
    return QIcon(pixmap)


class SegmentPanel(ClassifierActions, QWidget):
    """Label editing and the scribble classifier for ``state``; training and applying a
    model are the ``session``'s (:meth:`~medview.app.session.Session.train_classifier`,
    :meth:`~medview.app.session.Session.apply_model`), on its "Run on" executor.

    Signals
    -------
    trained(object)
        A classifier was trained (or loaded) and its segmentation is shown (the model).
    failed(object)
        Training or segmenting failed (a :class:`~medview.app.messages.TaskError`).
    task_started(object)
        A background :class:`~medview.gui.tasks.Task` started (for the progress area).
    cancelled()
        Training was cancelled; the previous segmentation is kept.

    Parameters
    ----------
    state : ViewerState
        What is shown, and the one owner of label editing.
    session : Session
        Runs the classifier; its ``run_on`` is where (shared with the window's other docks).
    """

    trained = Signal(object)
    failed = Signal(object)
    task_started = Signal(object)
    cancelled = Signal()

    def __init__(self, state: ViewerState, session: Session, parent: QWidget | None = None):
        super().__init__(parent)
        self.state = state
        self.session = session
        self.run_on = session.run_on
        self.model = None
        self._task: Task | None = None
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)

        # what to paint
        target_box = QGroupBox("Paint on", self)
        row = QHBoxLayout(target_box)
        self.target_labels = QRadioButton("Label map", self)
        self.target_scribbles = QRadioButton("Scribbles", self)
        self.target_labels.setChecked(True)
        self.target_labels.toggled.connect(
            lambda on: self.state.set_edit_target("labels" if on else "scribbles"))
        row.addWidget(self.target_labels)
        row.addWidget(self.target_scribbles)
        self.new_button = QPushButton("New", self)
        self.new_button.setToolTip("An empty label map (or scribble map) on this series")
        self.new_button.clicked.connect(self._new_map)
        row.addWidget(self.new_button)
        layout.addWidget(target_box)

        # tools
        tools = QHBoxLayout()
        self.tool_buttons: dict[str, QToolButton] = {}
        group = QButtonGroup(self)
        for tool, text, tip in (("brush", "Brush", "Paint the selected label (left drag)"),
                                ("eraser", "Eraser", "Erase to background (left drag)"),
                                ("fill", "Fill", "Fill the clicked region on this slice"),
                                ("window", "W/L", "Back to window/level")):
            button = QToolButton(self)
            button.setText(text)
            button.setToolTip(tip)
            button.setCheckable(True)
            button.clicked.connect(lambda checked=False, t=tool: self.state.set_tool(t))
            group.addButton(button)
            tools.addWidget(button)
            self.tool_buttons[tool] = button
        layout.addLayout(tools)
        form = QFormLayout()
        self.brush_size = QDoubleSpinBox(self)
        self.brush_size.setObjectName("brush_size")
        self.brush_size.setRange(0.1, 100.0)
        self.brush_size.setSingleStep(0.5)
        self.brush_size.setSuffix(" mm")
        self.brush_size.setValue(self.state.brush_mm)
        self.brush_size.setToolTip("Brush radius in the patient")
        self.brush_size.valueChanged.connect(self.state.set_brush_mm)
        form.addRow("Brush radius", self.brush_size)
        layout.addLayout(form)

        # segments
        self.segments = QListWidget(self)
        self.segments.setObjectName("segments")
        self.segments.setToolTip("Click: paint this label. Double-click: rename.")
        self.segments.currentItemChanged.connect(self._on_segment_selected)
        self.segments.itemChanged.connect(self._on_segment_renamed)
        layout.addWidget(self.segments, 1)
        seg_row = QHBoxLayout()
        self.add_segment_button = QPushButton("Add", self)
        self.add_segment_button.clicked.connect(self.add_segment)
        self.colour_button = QPushButton("Colour…", self)
        self.colour_button.clicked.connect(self._choose_colour)
        seg_row.addWidget(self.add_segment_button)
        seg_row.addWidget(self.colour_button)
        layout.addLayout(seg_row)

        undo_row = QHBoxLayout()
        self.undo_action = QAction("Undo", self)
        self.undo_action.setShortcut(QKeySequence.StandardKey.Undo)
        self.undo_action.triggered.connect(self.state.undo)
        self.redo_action = QAction("Redo", self)
        self.redo_action.setShortcuts([QKeySequence.StandardKey.Redo, QKeySequence("Ctrl+Y")])
        self.redo_action.triggered.connect(self.state.redo)
        for action in (self.undo_action, self.redo_action):
            button = QToolButton(self)
            button.setDefaultAction(action)
            undo_row.addWidget(button)
        layout.addLayout(undo_row)

        # classifier
        box = QGroupBox("Scribble classifier", self)
        col = QVBoxLayout(box)
        self.classifier_kind = QComboBox(self)
        for key, text in CLASSIFIERS:
            self.classifier_kind.addItem(text, key)
        col.addWidget(self.classifier_kind)
        run_row = QHBoxLayout()
        run_row.addWidget(QLabel("Run on", self))
        self.executor_combo = RunOnCombo(self.run_on, self)
        run_row.addWidget(self.executor_combo, 1)
        col.addLayout(run_row)
        self.train_button = QPushButton("Train && Segment", self)
        self.train_button.setToolTip("Learn from the scribbles (at least two labels) and "
                                     "label the whole series")
        self.train_button.clicked.connect(self.train)
        col.addWidget(self.train_button)
        model_row = QHBoxLayout()
        self.save_model_button = QPushButton("Save Model…", self)
        self.save_model_button.clicked.connect(self._choose_model_to_save)
        self.load_model_button = QPushButton("Load && Apply…", self)
        self.load_model_button.clicked.connect(self._choose_model_to_load)
        model_row.addWidget(self.save_model_button)
        model_row.addWidget(self.load_model_button)
        col.addLayout(model_row)
        self.status = QLabel("", self)
        self.status.setWordWrap(True)
        col.addWidget(self.status)
        layout.addWidget(box)

        state.edit_changed.connect(self._refresh)
        state.tools.events.all.connect(self._refresh)
        state.layers.events.labels.connect(self._refresh_segments)
        state.label_layers.events.all.connect(self._refresh_segments)
        state.labels_changed.connect(self._refresh_segments)
        state.tools.events.tool.connect(self._on_tool_changed)
        state.volume_changed.connect(self._on_volume_changed)
        self._on_tool_changed(state.tool)
        self._refresh()

    # -- state → panel -----------------------------------------------------------------
    def _on_tool_changed(self, tool: str) -> None:
        button = self.tool_buttons.get(tool)
        if button is not None:
            button.setChecked(True)
        else:  # a measuring tool: none of ours is active
            group = next(iter(self.tool_buttons.values())).group()
            group.setExclusive(False)
            for b in self.tool_buttons.values():
                b.setChecked(False)
            group.setExclusive(True)

    def _on_volume_changed(self, volume) -> None:
        if self._task is not None:
            self._task.cancel()
        self._refresh()

    def _refresh(self, *args) -> None:
        has_volume = self.state.volume is not None
        for widget in (self.new_button, self.train_button, self.load_model_button,
                       self.add_segment_button, self.colour_button):
            widget.setEnabled(has_volume and self._task is None)
        self.save_model_button.setEnabled(self.model is not None)
        target = self.state.edit_target
        with_map = self.state.target_map() is not None
        self.undo_action.setEnabled(with_map and self.state.editor().can_undo)
        self.redo_action.setEnabled(with_map and self.state.editor().can_redo)
        (self.target_labels if target == "labels" else self.target_scribbles).setChecked(True)
        if self.brush_size.value() != self.state.brush_mm:
            self.brush_size.setValue(self.state.brush_mm)
        self._refresh_segments()

    def _refresh_segments(self) -> None:
        lm = self.state.target_map()
        self.segments.blockSignals(True)
        self.segments.clear()
        current = None
        if lm is not None:
            for s in lm.segments:
                item = QListWidgetItem(_swatch(s.color), s.name)
                item.setData(Qt.ItemDataRole.UserRole, s.number)
                item.setFlags(item.flags() | Qt.ItemFlag.ItemIsEditable)
                item.setToolTip(f"label {s.number}")
                self.segments.addItem(item)
                if s.number == self.state.paint_label:
                    current = item
        if current is not None:
            self.segments.setCurrentItem(current)
        self.segments.blockSignals(False)

    # -- panel → state -----------------------------------------------------------------
    def _new_map(self) -> None:
        self.state.new_label_map()
        self.state.set_paint_label(1)
        if self.state.tool not in ("brush", "eraser", "fill"):
            self.state.set_tool("brush")

    def _on_segment_selected(self, item, previous=None) -> None:
        if item is not None:
            self.state.set_paint_label(int(item.data(Qt.ItemDataRole.UserRole)))

    def _on_segment_renamed(self, item) -> None:
        name = item.text().strip()
        if name:
            self.state.update_segment(int(item.data(Qt.ItemDataRole.UserRole)), name=name)

    def add_segment(self) -> int:
        """Add the next free label to the edit target and paint with it."""
        lm = self.state.target_map()
        if lm is None:
            lm = self.state.new_label_map()
        number = max([s.number for s in lm.segments] + [0]) + 1
        self.state.update_segment(number)
        self.state.set_paint_label(number)
        return number

    def _choose_colour(self) -> None:
        lm = self.state.target_map()
        if lm is None:
            return
        number = self.state.paint_label
        current = next((s.color for s in lm.segments if s.number == number), (255, 0, 0))
        colour = QColorDialog.getColor(QColor(*current), self, "Segment colour")
        if colour.isValid():
            self.state.update_segment(number, color=(colour.red(), colour.green(),
                                                     colour.blue()))

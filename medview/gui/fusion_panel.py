"""The Fusion dock: a second series (PET over CT, MR over CT) in colour over the open one.

The second series is loaded and resampled onto the open series' grid by patient position
(the scanners' shared frame of reference), or registered rigidly first (mutual information,
for series without a shared frame of reference or when the patient moved), in the
background. It then scrolls with the base series in every view, with a colour map and an
opacity slider. Resampling and registration run as the registered steps ``fuse.resample``
and ``fuse.register_rigid`` on the executor of the window's "Run on" choice (Local, or a
remote endpoint: de-identified upload, audit line, progress and cancel as for a chain),
through :meth:`Session.fuse <medview.app.session.Session.fuse>`.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from medview.app.messages import TaskError
from medview.app.models import COLORMAPS
from medview.app.session import Session
from medview.app.state import ViewerState
from medview.gui.run_on import RunOnCombo
from medview.gui.tasks import Task

__all__ = ["FusionPanel"]


class FusionPanel(QWidget):
    """Choose, fuse and adjust a second series.

    Parameters
    ----------
    state : ViewerState
    session : Session
        Lists the catalog's series and fuses (a series in its volume cache is not read
        again); its ``run_on`` is where (shared with the window's other docks).

    Signals
    -------
    fused(object)
        The fused series is shown (the resampled Volume).
    failed(object)
        Loading, registering or resampling failed (a TaskError).
    task_started(object)
        A background Task started.
    """

    fused = Signal(object)
    failed = Signal(object)
    task_started = Signal(object)

    def __init__(self, state: ViewerState, session: Session, parent: QWidget | None = None):
        super().__init__(parent)
        self.state = state
        self.session = session
        self.run_on = session.run_on
        self._task: Task | None = None
        self.transform = None  # the registration's table, when registered
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        row = QHBoxLayout()
        self.series = QComboBox(self)
        self.series.setObjectName("fusion_series")
        self.series.setToolTip("The series to show in colour over the open one")
        row.addWidget(self.series, 1)
        self.refresh_button = QPushButton("↻", self)
        self.refresh_button.setToolTip("Re-read the catalog's series")
        self.refresh_button.clicked.connect(self.refresh_series)
        row.addWidget(self.refresh_button)
        layout.addLayout(row)
        self.register = QCheckBox("Register rigidly first (mutual information)", self)
        layout.addWidget(self.register)
        run_row = QHBoxLayout()
        run_row.addWidget(QLabel("Run on", self))
        self.executor_combo = RunOnCombo(self.run_on, self)
        run_row.addWidget(self.executor_combo, 1)
        layout.addLayout(run_row)
        buttons = QHBoxLayout()
        self.fuse_button = QPushButton("Fuse", self)
        self.fuse_button.clicked.connect(self.fuse_selected)
        self.remove_button = QPushButton("Remove", self)
        self.remove_button.clicked.connect(lambda: self.state.set_fusion(None))
        buttons.addWidget(self.fuse_button)
        buttons.addWidget(self.remove_button)
        layout.addLayout(buttons)
        form = QFormLayout()
        self.colormap = QComboBox(self)
        for name in COLORMAPS:
            self.colormap.addItem(name.capitalize(), name)
        self.colormap.setCurrentIndex(COLORMAPS.index(state.fusion_colormap))
        self.colormap.currentIndexChanged.connect(
            lambda i: self.state.set_fusion_colormap(self.colormap.itemData(i)))
        form.addRow("Colour map", self.colormap)
        self.opacity = QSlider(Qt.Orientation.Horizontal, self)
        self.opacity.setObjectName("fusion_opacity")
        self.opacity.setRange(0, 100)
        self.opacity.setValue(int(round(state.fusion_opacity * 100)))
        self.opacity.valueChanged.connect(lambda v: self.state.set_fusion_opacity(v / 100.0))
        form.addRow("Opacity", self.opacity)
        layout.addLayout(form)
        self.status = QLabel("", self)
        self.status.setWordWrap(True)
        layout.addWidget(self.status)
        layout.addStretch(1)
        state.volume_changed.connect(self._on_volume_changed)
        state.fusion_model.events.all.connect(self._refresh)
        self._refresh()

    # -- series list -------------------------------------------------------------------
    def refresh_series(self) -> None:
        self.series.clear()
        if self.session.catalog is None:
            return
        current = (self.state.volume.metadata.get("SeriesInstanceUID")
                   if self.state.volume is not None else None)
        for patient in self.session.patients():
            for study in patient.studies:
                for s in study.series:
                    if s.series_uid == current:
                        continue
                    text = (f"{patient.name or patient.patient_id} · {s.modality} "
                            f"#{s.number if s.number is not None else ''} {s.description}"
                            f" ({s.image_count})")
                    self.series.addItem(text, s.series_uid)
        self._refresh()

    def _on_volume_changed(self, volume) -> None:
        if self._task is not None:
            self._task.cancel()
        self.refresh_series()

    def _refresh(self, *args) -> None:
        busy = self._task is not None
        has = self.state.volume is not None
        self.fuse_button.setEnabled(has and not busy and self.series.count() > 0)
        self.remove_button.setEnabled(self.state.fusion is not None)

    # -- fusing ------------------------------------------------------------------------
    def fuse_selected(self) -> Task | None:
        uid = self.series.currentData()
        return None if uid is None else self.fuse(uid, register=self.register.isChecked())

    def fuse(self, series_uid: str, *, register: bool = False) -> Task | None:
        """Load ``series_uid``, bring it onto the open series' grid and show it."""
        base = self.state.volume
        if base is None or self.session.catalog is None:
            return None
        try:
            task = self.session.fuse(base, series_uid, register=register)
        except KeyError as exc:  # the chosen endpoint was removed meanwhile
            self.status.setText(f"Failed: {exc}")
            return None
        task.signals.finished.connect(lambda result: self._on_finished(task, result))
        task.signals.failed.connect(lambda error: self._on_failed(task, error))
        task.signals.cancelled.connect(lambda: self._on_ended(task, "Fusion cancelled."))
        self._task = task
        self.status.setText("Loading and resampling…")
        self._refresh()
        self.task_started.emit(task)
        return task

    def _on_finished(self, task: Task, result) -> None:
        if task is not self._task:
            return
        self._task = None
        if result.base is not self.state.volume:
            self._refresh()
            return
        fused, transform = result.volume, result.transform
        self.transform = transform
        self.state.set_fusion(fused, window=result.window)
        meta = fused.metadata
        self.status.setText(
            f"{meta.get('Modality', '')} {meta.get('SeriesDescription', '')} over the series"
            + (" (registered)" if transform is not None else " (by patient position)"))
        self._refresh()
        self.fused.emit(fused)

    def _on_failed(self, task: Task, error: TaskError) -> None:
        self._on_ended(task, f"Failed: {error.message}")
        self.failed.emit(error)

    def _on_ended(self, task: Task, text: str) -> None:
        if task is self._task:
            self._task = None
        self.status.setText(text)
        self._refresh()

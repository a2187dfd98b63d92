"""The Segmentation dock's scribble classifier: Train & Segment, apply a saved model, save
the model (a mixin of :class:`~medview.gui.segment_panel.SegmentPanel`, split out of it
along that seam: label editing there, the classifier here).

Training and applying are :meth:`Session.train_classifier
<medview.app.session.Session.train_classifier>` and :meth:`Session.apply_model
<medview.app.session.Session.apply_model>`, on the session's "Run on" executor; the dock
shows the result when it is for the series still open.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QFileDialog, QMessageBox

from medview.app.messages import TaskError, gui_text
from medview.gui.tasks import Task

__all__ = ["ClassifierActions"]


class ClassifierActions:
    """The classifier of a SegmentPanel (see there)."""

    def train(self) -> Task | None:
        """Train on the scribbles and segment the series, in the background."""
        volume, scribbles = self.state.volume, self.state.scribbles
        if volume is None:
            return None
        if scribbles is None or len({int(v) for v in _present(scribbles)}) < 2:
            self.status.setText("Paint scribbles of at least two labels first "
                                "(Paint on: Scribbles).")
            return None
        kind = self.classifier_kind.currentData()
        return self._start(lambda: self.session.train_classifier(volume, scribbles,
                                                                 classifier=kind))

    def apply_model(self, path) -> Task | None:
        """Load a saved model and segment the series with it, in the background.

        A model saved by an older medview holds a Python pickle, which can run code: it is
        converted to the safe format only when the user confirms it comes from a trusted
        source (:meth:`confirm_legacy`), otherwise nothing of it is read.
        """
        volume = self.state.volume
        if volume is None:
            return None
        from medview.core.segmentation.classifier import convert_legacy_model, is_legacy_model

        name = Path(path).name
        if is_legacy_model(path):
            if not self.confirm_legacy(Path(path)):
                self.status.setText(f"Not loaded: {name} is an old model file that could run "
                                    "code; train the model again or convert it if you trust "
                                    "it.")
                return None
            try:
                convert_legacy_model(path, trust=True)
            except (OSError, ValueError) as exc:  # error boundary: a file the user picked
                self.status.setText(f"Converting {name} failed: {exc}")
                return None

        return self._start(lambda: self.session.apply_model(volume, path))

    def confirm_legacy(self, path: Path) -> bool:
        """Ask whether an old (pickle) model may be converted; True when the user says Yes."""
        box = QMessageBox(QMessageBox.Icon.Warning, "Old classifier model",
                          f"{path.name} was saved by an older medview as a Python pickle. "
                          "Loading a pickle can run any code it contains, so only convert it "
                          "if you made it yourself or trust its source.\n\nConvert it to "
                          "the safe format now? (The old file is kept as "
                          f"{path.name}.pickle-v1.)",
                          QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
                          self)
        box.setDefaultButton(QMessageBox.StandardButton.No)
        return box.exec() == QMessageBox.StandardButton.Yes

    def _start(self, start) -> Task | None:
        """Start the session's job (``start()``, which takes the request now); a "Run on"
        endpoint that is gone is said in the status line."""
        volume = self.state.volume
        try:
            task = start()
        except KeyError as exc:  # the chosen endpoint was removed meanwhile
            self.status.setText(f"Failed: {exc}")
            return None
        task.signals.finished.connect(lambda result: self._on_finished(task, volume, result))
        task.signals.failed.connect(lambda error: self._on_failed(task, error))
        task.signals.cancelled.connect(lambda: self._on_cancelled(task))
        self._task = task
        self.status.setText(f"{task.title}…")
        self._refresh()
        self.task_started.emit(task)
        return task

    def _on_finished(self, task: Task, volume, result) -> None:
        if task is not self._task:
            return
        self._task = None
        if volume is not self.state.volume:
            self._refresh()
            return  # another series was opened meanwhile
        model = self.model = result.model
        self.state.set_labels(result.labels)
        self.status.setText(
            f"{model.kind.replace('_', ' ')}: {model.training_samples} scribbled voxels, "
            f"training accuracy {model.training_accuracy:.1%}, {result.seconds:.1f} s")
        self._refresh()
        self.trained.emit(model)

    def _on_failed(self, task: Task, error: TaskError) -> None:
        if task is self._task:
            self._task = None
        self.status.setText(f"Failed: {error.message}")
        self._refresh()
        self.failed.emit(error)

    def _on_cancelled(self, task: Task) -> None:
        if task is self._task:
            self._task = None
            self.status.setText("Cancelled; the previous segmentation is kept.")
            self._refresh()
            self.cancelled.emit()

    def save_model(self, path) -> Path:
        if self.model is None:
            raise ValueError("no trained model to save")
        self.model.save(path)  # and its SHA-256 sidecar, which load() checks
        self.status.setText(f"Model saved to {path}")
        return Path(path)

    def _choose_model_to_save(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save the classifier", "classifier.mvclf",
                                              "medview classifiers (*.mvclf);;All files (*)")
        if path:
            try:
                self.save_model(path)
            except Exception as exc:  # error boundary
                self.status.setText(f"Saving failed: {gui_text(str(exc))}")

    def _choose_model_to_load(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Apply a saved classifier", "",
                                              "medview classifiers (*.mvclf);;All files (*)")
        if path:
            self.apply_model(path)


def _present(lm):
    """The label values painted in ``lm`` (0, unpainted, left out)."""
    import numpy as np

    values = np.unique(lm.array)
    return values[values > 0]

"""The "Run on" selector: a combo box bound to the window's one
:class:`~medview.pipeline.executors.ExecutorChoice`.

The chain panel, the Segmentation dock and the Fusion dock each show one; they all show the
same choice, and picking an executor in any of them picks it for all.
"""

from __future__ import annotations

from PySide6.QtWidgets import QComboBox, QWidget

from medview.pipeline import executors as registry
from medview.pipeline.executors import ExecutorChoice

__all__ = ["RunOnCombo"]


class RunOnCombo(QComboBox):
    """Lists the registered executors and shows (and sets) ``choice``."""

    def __init__(self, choice: ExecutorChoice, parent: QWidget | None = None):
        super().__init__(parent)
        self.choice = choice
        self.setObjectName("run_on")
        self.setToolTip("Where the processing runs: this workstation, or a remote endpoint "
                        "(the images are de-identified first)")
        self._fill()
        self.currentTextChanged.connect(self._on_text_changed)
        disconnects = (registry.on_executors_changed(self._fill),
                       choice.on_changed(self._show))
        # plain functions: the combo's own methods are gone when destroyed is emitted
        self.destroyed.connect(lambda *a, d=disconnects: [f() for f in d])

    def _fill(self) -> None:
        # refilled without signals: clearing must not choose the first item for everyone
        self.blockSignals(True)
        try:
            self.clear()
            for ex in registry.executors():
                self.addItem(ex.name)
            self.setCurrentText(self.choice.name)
        finally:
            self.blockSignals(False)

    def _show(self, name: str) -> None:
        if self.currentText() != name:
            self.blockSignals(True)
            self.setCurrentText(name)
            self.blockSignals(False)

    def _on_text_changed(self, name: str) -> None:
        if name and name != self.choice.name:
            self.choice.choose(name)

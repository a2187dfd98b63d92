"""The parameter form of one chain step, generated from its ParamSpecs.

Each parameter gets the editor of its kind (:mod:`medview.gui.param_editors`). Optional
parameters (``None`` allowed, e.g. "in_low: default the volume's minimum") get a check box
that switches the value on. Every edit goes through :meth:`ChainModel.set_param`; a value it
rejects turns the field red and shows the reason under the form, the model keeps its value.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QWidget,
)

from medview.app.chain_model import ChainModel
from medview.gui.param_editors import ParamEditor, editor_for
from medview.pipeline.params import ParamSpec

__all__ = ["ParamForm"]

_INVALID = "background: #5a1e1e;"


class ParamForm(QWidget):
    """The form of the model's selected step.

    Signals
    -------
    pick_requested(str)
        The "Pick" button of points parameter ``name`` was toggled on ("" when off).
    """

    pick_requested = Signal(str)

    def __init__(self, model: ChainModel, parent: QWidget | None = None):
        super().__init__(parent)
        self.model = model
        self.layout_ = QFormLayout(self)
        self.layout_.setContentsMargins(0, 0, 0, 0)
        self.error_label = QLabel("", self)
        self.error_label.setObjectName("param_error")
        self.error_label.setWordWrap(True)
        self.error_label.setStyleSheet("QLabel { color: #ff6b6b; }")
        #: name → the field's main widget (spin box, combo box, check box, line edit)
        self.fields: dict[str, QWidget] = {}
        #: name → the "set" check box of an optional parameter
        self.optional_checks: dict[str, QCheckBox] = {}
        self.pick_buttons: dict[str, QPushButton] = {}
        #: name → the parameter's editor (its ``field`` is ``fields[name]``)
        self.editors: dict[str, ParamEditor] = {}
        self._index = -1
        self._updating = False
        model.selection_changed.connect(self._rebuild)
        model.steps_changed.connect(self._rebuild)
        model.step_changed.connect(self._on_step_changed)
        self._rebuild()

    @property
    def index(self) -> int:
        """The step the form edits (-1: none)."""
        return self._index

    # -- build -------------------------------------------------------------------------
    def _rebuild(self, *args) -> None:
        self.pick_requested.emit("")
        while self.layout_.rowCount():
            self.layout_.removeRow(0)
        self.error_label = QLabel("", self)
        self.error_label.setObjectName("param_error")
        self.error_label.setWordWrap(True)
        self.error_label.setStyleSheet("QLabel { color: #ff6b6b; }")
        self.fields, self.optional_checks, self.pick_buttons = {}, {}, {}
        self.editors = {}
        self._index = self.model.selected
        entry = self.model.selected_step
        if entry is None:
            self.layout_.addRow(QLabel("Select a step of the chain to edit its parameters.",
                                       self))
            return
        spec = entry.spec
        if not spec.params:
            self.layout_.addRow(QLabel("This step has no parameters.", self))
        for p in spec.params:
            row = self._make_row(p)
            label = QLabel(p.name.replace("_", " "), self)
            label.setToolTip(_tooltip(p))
            self.layout_.addRow(label, row)
        self.layout_.addRow(self.error_label)
        self._load_values()

    def _make_row(self, p: ParamSpec) -> QWidget:
        row = QWidget(self)
        h = QHBoxLayout(row)
        h.setContentsMargins(0, 0, 0, 0)
        editor = editor_for(p.type)(p, self, row)
        if p.optional and editor.can_unset:
            check = QCheckBox(row)
            check.setToolTip(f"Set {p.name} (unchecked: automatic)")
            check.toggled.connect(lambda on, n=p.name: self._on_optional_toggled(n, on))
            self.optional_checks[p.name] = check
            h.addWidget(check)
        w = editor.field
        w.setObjectName(f"param_{p.name}")
        w.setToolTip(_tooltip(p))
        self.fields[p.name] = w
        self.editors[p.name] = editor
        h.addWidget(w, 1)
        for extra in editor.extras:
            h.addWidget(extra)
        return row

    # -- what the editors call (ParamHost) ----------------------------------------------
    def commit(self, name: str, value: Any) -> bool:
        """Send ``value`` of parameter ``name`` to the model; False (and the reason shown)
        when it refuses."""
        return self._set(name, value)

    def refuse(self, name: str, message: str) -> None:
        """Text typed into ``name`` that its kind cannot read."""
        self.error_label.setText(f"{name}: {message}")
        self.fields[name].setStyleSheet(_INVALID)

    def add_pick_button(self, name: str, button: QPushButton) -> None:
        button.toggled.connect(lambda on, n=name: self._on_pick_toggled(n, on))
        self.pick_buttons[name] = button

    # -- model → form ------------------------------------------------------------------
    def _load_values(self) -> None:
        entry = self.model.selected_step
        if entry is None:
            return
        self._updating = True
        try:
            for p in entry.spec.params:
                self._show_value(p, entry.params.get(p.name))
        finally:
            self._updating = False

    def _show_value(self, p: ParamSpec, value: Any) -> None:
        w = self.fields[p.name]
        check = self.optional_checks.get(p.name)
        if check is not None:
            check.setChecked(value is not None)
            w.setEnabled(value is not None)
        self.editors[p.name].show(value)
        w.setStyleSheet("")

    def _on_step_changed(self, index: int) -> None:
        if index == self._index and not self._updating:
            self._load_values()

    # -- form → model ------------------------------------------------------------------
    def _set(self, name: str, value: Any) -> bool:
        if self._updating or self._index < 0:
            return False
        w = self.fields.get(name)
        self._updating = True
        try:
            self.model.set_param(self._index, name, value)
        except ValueError as exc:
            self.error_label.setText(str(exc))
            if w is not None:
                w.setStyleSheet(_INVALID)
            return False
        finally:
            self._updating = False
        self.error_label.setText("")
        if w is not None:
            w.setStyleSheet("")
            # show the value as the model keeps it (e.g. picked points rounded for reading)
            self._updating = True
            try:
                self.editors[name].show(self.model.selected_step.params[name])
            finally:
                self._updating = False
        return True

    def _on_optional_toggled(self, name: str, on: bool) -> None:
        if self._updating:
            return
        self.fields[name].setEnabled(on)
        if not on:
            self._set(name, None)
        else:
            self.editors[name].commit_current()

    def _on_pick_toggled(self, name: str, on: bool) -> None:
        if on:
            for other, button in self.pick_buttons.items():
                if other != name:
                    button.setChecked(False)
        self.pick_requested.emit(name if on else "")

    def picking(self) -> str:
        """The points parameter being picked ("" when none)."""
        for name, button in self.pick_buttons.items():
            if button.isChecked():
                return name
        return ""

    def add_point(self, lps) -> bool:
        """Append ``lps`` (mm) to the points parameter being picked; False if none is."""
        name = self.picking()
        if not name:
            return False
        points = list(self.model.selected_step.params.get(name) or [])
        return self._set(name, [*points, [float(c) for c in lps]])


def _tooltip(p: ParamSpec) -> str:
    parts = [p.help] if p.help else []
    if p.type.hint():
        parts.append(p.type.hint())
    if p.optional:
        parts.append("optional: unchecked means automatic")
    return "\n".join(parts)

"""The parameter form of one chain step, generated from its ParamSpecs.

float → QDoubleSpinBox (range, step, unit suffix), int → QSpinBox, bool → QCheckBox,
choice → QComboBox, str → QLineEdit, lists of numbers and matrices → validated text
(``1, 5, 25`` and ``1 2 1; 2 4 2; 1 2 1``), points → the list of picked points (LPS mm) with
"Pick" (each left click in a view adds the clicked voxel's position) and "Clear". Optional
parameters (``None`` allowed, e.g. "in_low: default the volume's minimum") get a check box
that switches the value on. Every edit goes through :meth:`ChainModel.set_param`; a value it
rejects turns the field red and shows the reason under the form, the model keeps its value.
"""

from __future__ import annotations

import math
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QWidget,
)

from medview.gui.chain_model import ChainModel
from medview.pipeline.registry import ParamSpec

__all__ = ["ParamForm", "format_matrix", "format_numbers", "parse_matrix", "parse_numbers"]

_BIG = 1e9
_INVALID = "background: #5a1e1e;"


def format_numbers(values) -> str:
    return ", ".join(f"{v:g}" for v in values or [])


def parse_numbers(text: str) -> list[float]:
    parts = [t for t in text.replace(";", ",").replace(" ", ",").split(",") if t.strip()]
    try:
        return [float(t) for t in parts]
    except ValueError:
        raise ValueError(f"expected numbers separated by commas, got {text!r}") from None


def format_matrix(rows) -> str:
    return "; ".join(" ".join(f"{v:g}" for v in row) for row in rows or [])


def parse_matrix(text: str) -> list[list[float]] | None:
    if not text.strip():
        return None
    try:
        return [[float(t) for t in row.replace(",", " ").split()]
                for row in text.split(";") if row.strip()]
    except ValueError:
        raise ValueError(f"expected rows of numbers separated by ';', got {text!r}") from None


def format_points(points) -> str:
    return "; ".join("(" + ", ".join(f"{c:.1f}" for c in p) + ")" for p in points or [])


def _decimals(step: float | None) -> int:
    if not step or step >= 1:
        return 2 if not step else 1
    return min(6, max(2, int(math.ceil(-math.log10(step))) + 1))


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
        self._index = self.model.selected
        entry = self.model.selected_entry
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
        if p.optional and p.kind in ("float", "int", "str"):
            check = QCheckBox(row)
            check.setToolTip(f"Set {p.name} (unchecked: automatic)")
            check.toggled.connect(lambda on, n=p.name: self._on_optional_toggled(n, on))
            self.optional_checks[p.name] = check
            h.addWidget(check)
        w = self._make_field(p, row)
        w.setObjectName(f"param_{p.name}")
        w.setToolTip(_tooltip(p))
        self.fields[p.name] = w
        h.addWidget(w, 1)
        if p.kind == "points":
            pick = QPushButton("Pick", row)
            pick.setCheckable(True)
            pick.setObjectName(f"pick_{p.name}")
            pick.setToolTip("Then left-click in a view: each click adds the voxel under the "
                            "mouse (its LPS position in mm)")
            pick.toggled.connect(lambda on, n=p.name: self._on_pick_toggled(n, on))
            clear = QPushButton("Clear", row)
            clear.clicked.connect(lambda checked=False, n=p.name: self._set(n, []))
            self.pick_buttons[p.name] = pick
            h.addWidget(pick)
            h.addWidget(clear)
        return row

    def _make_field(self, p: ParamSpec, parent: QWidget) -> QWidget:
        name = p.name
        if p.kind == "float":
            w = QDoubleSpinBox(parent)
            w.setDecimals(_decimals(p.step))
            w.setRange(-_BIG if p.min is None else p.min, _BIG if p.max is None else p.max)
            w.setSingleStep(p.step or 0.1)
            if p.unit:
                w.setSuffix(f" {p.unit}")
            w.setKeyboardTracking(False)
            w.valueChanged.connect(lambda v, n=name: self._set(n, float(v)))
            return w
        if p.kind == "int":
            w = QSpinBox(parent)
            lo = -2**31 + 1 if p.min is None else int(p.min)
            hi = 2**31 - 1 if p.max is None else int(p.max)
            w.setRange(lo, hi)
            w.setSingleStep(int(p.step or 1))
            if p.unit:
                w.setSuffix(f" {p.unit}")
            w.setKeyboardTracking(False)
            w.valueChanged.connect(lambda v, n=name: self._set(n, int(v)))
            return w
        if p.kind == "bool":
            w = QCheckBox(parent)
            w.toggled.connect(lambda on, n=name: self._set(n, bool(on)))
            return w
        if p.kind == "choice":
            w = QComboBox(parent)
            w.addItems(list(p.choices))
            w.currentTextChanged.connect(lambda t, n=name: self._set(n, t))
            return w
        w = QLineEdit(parent)
        if p.kind == "points":
            w.setReadOnly(True)
            w.setPlaceholderText("no points: press Pick, then click in a view")
        else:
            w.setPlaceholderText({"numbers": "e.g. 1, 5, 25", "matrix": "e.g. 1 2 1; 2 4 2; 1 2 1",
                                  "str": ""}.get(p.kind, ""))
            w.editingFinished.connect(lambda n=name: self._on_text(n))
        return w

    # -- model → form ------------------------------------------------------------------
    def _load_values(self) -> None:
        entry = self.model.selected_entry
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
        if p.kind in ("float", "int"):
            if value is not None:
                w.setValue(value)
        elif p.kind == "bool":
            w.setChecked(bool(value))
        elif p.kind == "choice":
            w.setCurrentText(str(value))
        elif p.kind == "points":
            w.setText(format_points(value))
        elif p.kind == "numbers":
            w.setText(format_numbers(value))
        elif p.kind == "matrix":
            w.setText(format_matrix(value))
        else:
            w.setText("" if value is None else str(value))
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
            if self.model.selected_entry.spec.param(name).kind == "points":
                w.setText(format_points(self.model.selected_entry.params[name]))
        return True

    def _on_text(self, name: str) -> None:
        p = self.model.selected_entry.spec.param(name)
        text = self.fields[name].text()
        try:
            if p.kind == "numbers":
                value: Any = parse_numbers(text)
            elif p.kind == "matrix":
                value = parse_matrix(text)
            else:
                value = None if (p.optional and not text) else text
        except ValueError as exc:
            self.error_label.setText(f"{name}: {exc}")
            self.fields[name].setStyleSheet(_INVALID)
            return
        self._set(name, value)

    def _on_optional_toggled(self, name: str, on: bool) -> None:
        if self._updating:
            return
        w = self.fields[name]
        w.setEnabled(on)
        if not on:
            self._set(name, None)
        elif isinstance(w, QDoubleSpinBox | QSpinBox):
            self._set(name, w.value())
        else:
            self._on_text(name)

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
        points = list(self.model.selected_entry.params.get(name) or [])
        return self._set(name, [*points, [float(c) for c in lps]])


def _tooltip(p: ParamSpec) -> str:
    parts = [p.help] if p.help else []
    if p.min is not None or p.max is not None:
        lo = "−∞" if p.min is None else f"{p.min:g}"
        hi = "∞" if p.max is None else f"{p.max:g}"
        parts.append(f"range {lo} … {hi}{(' ' + p.unit) if p.unit else ''}")
    if p.kind == "points":
        parts.append("patient positions (LPS, mm)")
    if p.optional:
        parts.append("optional: unchecked means automatic")
    return "\n".join(parts)

"""One Qt editor per parameter kind, found by the kind's class (:func:`editor_for`).

float → QDoubleSpinBox (range, step, unit suffix), int → QSpinBox, bool → QCheckBox,
choice → QComboBox, text, lists of numbers and kernels → validated text (``1, 5, 25`` and
``1 2 1; 2 4 2; 1 2 1``, read by the kind's own parser), a file → text with a "…" chooser,
points → the list of picked points (LPS mm) with "Pick" (each left click in a view adds the
clicked voxel's position) and "Clear".

An editor builds its widgets for one :class:`~medview.pipeline.params.ParamSpec` and talks to
its :class:`ParamHost` (the parameter form): ``host.commit(name, value)`` sends a value to the
model (False when the model refuses it), ``host.refuse(name, message)`` reports text that does
not parse. A new kind gets a new editor class in :data:`EDITORS`; nothing here asks a kind's
name.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Protocol

from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QWidget,
)

from medview.pipeline.kinds import (
    Bool,
    Choice,
    File,
    Float,
    Int,
    Kernel,
    Kind,
    Numbers,
    Points,
    Text,
)
from medview.pipeline.params import ParamSpec

__all__ = ["EDITORS", "ParamEditor", "ParamHost", "editor_for"]

_BIG = 1e9


class ParamHost(Protocol):
    """What an editor needs from the form it sits in."""

    def commit(self, name: str, value: Any) -> bool: ...

    def refuse(self, name: str, message: str) -> None: ...

    def add_pick_button(self, name: str, button: QPushButton) -> None: ...


def _decimals(step: float | None) -> int:
    if not step or step >= 1:
        return 2 if not step else 1
    return min(6, max(2, int(math.ceil(-math.log10(step))) + 1))


class ParamEditor:
    """The editor of one parameter: ``field`` is its main widget, ``extras`` follow it.

    ``can_unset``: an optional parameter gets a check box that switches the value on (off:
    None, "automatic").
    """

    can_unset = False

    def __init__(self, p: ParamSpec, host: ParamHost, parent: QWidget):
        self.p = p
        self.host = host
        self.extras: list[QWidget] = []
        self.field = self.build(parent)

    def build(self, parent: QWidget) -> QWidget:
        raise NotImplementedError

    def show(self, value: Any) -> None:
        """Show ``value`` (the model's) without committing it."""
        raise NotImplementedError

    def commit_current(self) -> None:
        """Send what the widget shows to the model (an optional value switched on)."""
        raise NotImplementedError


class FloatEditor(ParamEditor):
    can_unset = True

    def build(self, parent: QWidget) -> QWidget:
        k: Float = self.p.type
        w = QDoubleSpinBox(parent)
        w.setDecimals(_decimals(k.step))
        w.setRange(-_BIG if k.min is None else k.min, _BIG if k.max is None else k.max)
        w.setSingleStep(k.step or 0.1)
        if k.unit:
            w.setSuffix(f" {k.unit}")
        w.setKeyboardTracking(False)
        w.valueChanged.connect(lambda v: self.host.commit(self.p.name, float(v)))
        return w

    def show(self, value: Any) -> None:
        if value is not None:
            self.field.setValue(value)

    def commit_current(self) -> None:
        self.host.commit(self.p.name, float(self.field.value()))


class IntEditor(FloatEditor):
    def build(self, parent: QWidget) -> QWidget:
        k: Int = self.p.type
        w = QSpinBox(parent)
        w.setRange(-2**31 + 1 if k.min is None else int(k.min),
                   2**31 - 1 if k.max is None else int(k.max))
        w.setSingleStep(int(k.step or 1))
        if k.unit:
            w.setSuffix(f" {k.unit}")
        w.setKeyboardTracking(False)
        w.valueChanged.connect(lambda v: self.host.commit(self.p.name, int(v)))
        return w

    def commit_current(self) -> None:
        self.host.commit(self.p.name, int(self.field.value()))


class BoolEditor(ParamEditor):
    def build(self, parent: QWidget) -> QWidget:
        w = QCheckBox(parent)
        w.toggled.connect(lambda on: self.host.commit(self.p.name, bool(on)))
        return w

    def show(self, value: Any) -> None:
        self.field.setChecked(bool(value))

    def commit_current(self) -> None:
        self.host.commit(self.p.name, self.field.isChecked())


class ChoiceEditor(ParamEditor):
    def build(self, parent: QWidget) -> QWidget:
        w = QComboBox(parent)
        w.addItems(list(self.p.type.choices))
        w.currentTextChanged.connect(lambda t: self.host.commit(self.p.name, t))
        return w

    def show(self, value: Any) -> None:
        self.field.setCurrentText(str(value))

    def commit_current(self) -> None:
        self.host.commit(self.p.name, self.field.currentText())


class TextEditor(ParamEditor):
    """Text read by the kind's parser when editing finishes (Enter or leaving the field)."""

    can_unset = True
    placeholder = ""

    def build(self, parent: QWidget) -> QWidget:
        w = QLineEdit(parent)
        w.setPlaceholderText(self.placeholder)
        w.editingFinished.connect(self.commit_current)
        return w

    def show(self, value: Any) -> None:
        self.field.setText(self.p.type.format(value))

    def commit_current(self) -> None:
        text = self.field.text()
        if self.p.optional and not text.strip():
            self.host.commit(self.p.name, None)
            return
        try:
            value = self.p.type.parse(text)
        except ValueError as exc:
            self.host.refuse(self.p.name, str(exc))
            return
        self.host.commit(self.p.name, value)


class NumbersEditor(TextEditor):
    can_unset = False
    placeholder = "e.g. 1, 5, 25"


class KernelEditor(TextEditor):
    can_unset = False
    placeholder = "e.g. 1 2 1; 2 4 2; 1 2 1"


class FileEditor(TextEditor):
    """A path, typed or chosen with "…" (the kind's suffixes filter the chooser)."""

    placeholder = "path of the file"

    #: ``choose(parent, title, start, filters) -> path or ""`` (a dialog; tests replace it)
    choose: Callable[[QWidget, str, str, str], str] = staticmethod(
        lambda parent, title, start, filters: QFileDialog.getOpenFileName(
            parent, title, start, filters)[0])

    def build(self, parent: QWidget) -> QWidget:
        w = super().build(parent)
        browse = QPushButton("…", parent)
        browse.setObjectName(f"browse_{self.p.name}")
        browse.setToolTip("Choose the file")
        browse.clicked.connect(self._browse)
        self.extras.append(browse)
        return w

    def _browse(self) -> None:
        suffixes = self.p.type.suffixes
        filters = (f"{self.p.name} ({' '.join('*' + s for s in suffixes)});;" if suffixes
                   else "") + "All files (*)"
        path = self.choose(self.field, f"Choose {self.p.name.replace('_', ' ')}",
                           self.field.text(), filters)
        if path:
            self.field.setText(path)
            self.commit_current()


class PointsEditor(ParamEditor):
    """The picked points (read-only text), "Pick" to add by clicking, "Clear"."""

    def build(self, parent: QWidget) -> QWidget:
        w = QLineEdit(parent)
        w.setReadOnly(True)
        w.setPlaceholderText("no points: press Pick, then click in a view")
        pick = QPushButton("Pick", parent)
        pick.setCheckable(True)
        pick.setObjectName(f"pick_{self.p.name}")
        pick.setToolTip("Then left-click in a view: each click adds the voxel under the "
                        "mouse (its LPS position in mm)")
        clear = QPushButton("Clear", parent)
        clear.clicked.connect(lambda checked=False: self.host.commit(self.p.name, []))
        self.extras += [pick, clear]
        self.host.add_pick_button(self.p.name, pick)
        return w

    def show(self, value: Any) -> None:
        self.field.setText(self.p.type.display(value))

    def commit_current(self) -> None:  # the points are the model's: nothing typed
        pass


#: kind class → its editor; subclasses of a kind use the nearest one (:func:`editor_for`)
EDITORS: dict[type[Kind], type[ParamEditor]] = {
    Float: FloatEditor,
    Int: IntEditor,
    Bool: BoolEditor,
    Choice: ChoiceEditor,
    Text: TextEditor,
    File: FileEditor,
    Numbers: NumbersEditor,
    Kernel: KernelEditor,
    Points: PointsEditor,
}


def editor_for(kind: Kind) -> type[ParamEditor]:
    """The editor class of ``kind``: its own class's, else the nearest base class's.

    Raises
    ------
    TypeError
        For a kind no editor is registered for (a plugin's new kind without an editor).
    """
    for cls in type(kind).__mro__:
        if cls in EDITORS:
            return EDITORS[cls]
    raise TypeError(f"no editor for parameter kind {type(kind).__name__}; add one to "
                    "medview.gui.param_editors.EDITORS")

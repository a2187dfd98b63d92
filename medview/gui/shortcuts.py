"""Configurable keyboard shortcuts: the conflict rule in plain Python, and the dialog."""

from __future__ import annotations

from collections.abc import Mapping

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QKeySequenceEdit,
    QLabel,
    QMessageBox,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

__all__ = ["VIEWER_KEYS", "ShortcutsDialog", "action_label", "find_conflicts"]

#: keys the slice views handle themselves (DESIGN.md's conventions): an action given one of
#: these would take it from every view, so the dialog refuses them
VIEWER_KEYS: dict[str, str] = {
    **{k: "previous slice" for k in ("Up", "PgUp", "Shift+Up", "Shift+PgUp")},
    **{k: "next slice" for k in ("Down", "PgDown", "Shift+Down", "Shift+PgDown")},
    "Home": "first slice", "End": "last slice",
    "Del": "delete the measurement", "Backspace": "delete the measurement",
}


def find_conflicts(shortcuts: Mapping[str, str]) -> dict[str, list[str]]:
    """Key sequences given to more than one action: ``{sequence: [action ids]}``.

    ``shortcuts`` maps an action id to its sequence in portable text ("Ctrl+E"); empty
    sequences (no shortcut) never conflict.
    """
    by_sequence: dict[str, list[str]] = {}
    for action_id, sequence in shortcuts.items():
        if sequence:
            by_sequence.setdefault(sequence, []).append(action_id)
    return {seq: ids for seq, ids in by_sequence.items() if len(ids) > 1}


def action_label(action: QAction) -> str:
    """An action's menu text without the mnemonic '&' and the trailing '…'."""
    return action.text().replace("&", "").rstrip("…").strip()


def _portable(sequence: QKeySequence) -> str:
    return sequence.toString(QKeySequence.SequenceFormat.PortableText)


class ShortcutsDialog(QDialog):
    """One row per action with a :class:`QKeySequenceEdit`; OK applies, conflicts refused.

    Parameters
    ----------
    actions : mapping of id → QAction
        The configurable actions.
    defaults : mapping of id → str
        Their default sequences (portable text), for "Reset to Defaults".
    reserved : mapping of sequence → what it does
        Keys that widgets handle themselves (:data:`VIEWER_KEYS` by default); refused.
    """

    def __init__(self, actions: Mapping[str, QAction], defaults: Mapping[str, str],
                 parent: QWidget | None = None, *,
                 reserved: Mapping[str, str] | None = None):
        super().__init__(parent)
        self.reserved = dict(VIEWER_KEYS if reserved is None else reserved)
        self.setObjectName("shortcuts_dialog")
        self.setWindowTitle("Keyboard Shortcuts")
        self.resize(560, 600)
        self.actions = dict(actions)
        self.defaults = dict(defaults)
        self.message_box: QMessageBox | None = None
        self.table = QTableWidget(len(self.actions), 2, self)
        self.table.setHorizontalHeaderLabels(["Action", "Shortcut"])
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.table.horizontalHeader().setSectionResizeMode(
            1, QHeaderView.ResizeMode.ResizeToContents)
        self.editors: dict[str, QKeySequenceEdit] = {}
        for row, (action_id, action) in enumerate(self.actions.items()):
            name = QTableWidgetItem(action_label(action))
            name.setFlags(name.flags() & ~Qt.ItemFlag.ItemIsEditable)
            name.setToolTip(action_id)
            self.table.setItem(row, 0, name)
            editor = QKeySequenceEdit(action.shortcut(), self)
            editor.setObjectName(f"shortcut_{action_id}")
            editor.setMaximumSequenceLength(1)
            editor.setClearButtonEnabled(True)
            self.table.setCellWidget(row, 1, editor)
            self.editors[action_id] = editor
        reset = QPushButton("Reset to Defaults", self)
        reset.clicked.connect(self.reset_to_defaults)
        self.reset_button = reset
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, self)
        buttons.addButton(reset, QDialogButtonBox.ButtonRole.ResetRole)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        self.buttons = buttons
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("Click a shortcut and press the new keys; "
                                "the clear button removes it.", self))
        layout.addWidget(self.table, 1)
        layout.addWidget(buttons)

    def chosen(self) -> dict[str, str]:
        """The sequences in the editors, by action id (portable text, "" for none)."""
        return {i: _portable(e.keySequence()) for i, e in self.editors.items()}

    def reset_to_defaults(self) -> None:
        for action_id, editor in self.editors.items():
            editor.setKeySequence(QKeySequence(self.defaults.get(action_id, "")))

    def conflict_message(self) -> str:
        """Why the chosen shortcuts cannot be applied, or "" when they can."""
        chosen = self.chosen()
        conflicts = find_conflicts(chosen)
        lines = []
        for sequence, ids in conflicts.items():
            names = ", ".join(f"“{action_label(self.actions[i])}”" for i in ids)
            lines.append(f"{sequence} is given to {names}")
        for action_id, sequence in chosen.items():
            if sequence in self.reserved:
                lines.append(f"{sequence} is the views' key for {self.reserved[sequence]}; "
                             f"“{action_label(self.actions[action_id])}” cannot have it")
        if not lines:
            return ""
        return ("A key can trigger only one action:\n" + "\n".join(lines)
                + "\nChange one of them, then press OK again.")

    def accept(self) -> None:
        message = self.conflict_message()
        if message:
            if self.message_box is not None:
                self.message_box.close()
            box = QMessageBox(QMessageBox.Icon.Warning, "Shortcut conflict", message,
                              QMessageBox.StandardButton.Ok, self)
            box.setWindowModality(Qt.WindowModality.WindowModal)
            box.open()
            self.message_box = box
            return
        for action_id, sequence in self.chosen().items():
            self.actions[action_id].setShortcut(QKeySequence(sequence))
        super().accept()

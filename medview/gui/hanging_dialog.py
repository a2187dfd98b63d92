"""Layout Rules…: a small table to edit the hanging protocols (:mod:`medview.app.hanging`).

One row per rule, tried from the top: name, modality, body part and description patterns,
layout, the slots (comma-separated: ``current``, ``prior``, ``prior:PATTERN``,
``same:PATTERN``) and the window. Save checks every row (a wrong one is named, nothing is
written) and writes the file atomically.
"""

from __future__ import annotations

from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from medview.app.hanging import (
    BUILTIN_RULES,
    LAYOUT_SHAPES,
    WINDOWS,
    LayoutRule,
    load_rules,
    save_rules,
)

__all__ = ["COLUMNS", "HangingDialog"]

COLUMNS = ("Name", "Modality", "Body part", "Description", "Layout", "Slots", "Window")


class HangingDialog(QDialog):
    """Edit, reorder and save the layout rules."""

    def __init__(self, parent: QWidget | None = None, *, path=None):
        super().__init__(parent)
        self.setObjectName("hanging_dialog")
        self.setWindowTitle("Layout Rules")
        self._path = path
        self.table = QTableWidget(0, len(COLUMNS), self)
        self.table.setObjectName("rules_table")
        self.table.setHorizontalHeaderLabels(list(COLUMNS))
        self.message = QLabel(self)
        self.message.setObjectName("rules_message")
        self.message.setWordWrap(True)
        self.message.setStyleSheet("QLabel { color: #d66; }")
        buttons = QHBoxLayout()
        for text, slot in (("Add", self.add_row), ("Remove", self.remove_row),
                           ("Up", lambda: self.move_row(-1)), ("Down", lambda: self.move_row(1)),
                           ("Built-in Set", lambda: self.set_rules(BUILTIN_RULES))):
            button = QPushButton(text, self)
            button.clicked.connect(slot)
            buttons.addWidget(button)
        box = QDialogButtonBox(QDialogButtonBox.StandardButton.Save
                               | QDialogButtonBox.StandardButton.Cancel, self)
        box.accepted.connect(self.save)
        box.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.table)
        layout.addLayout(buttons)
        layout.addWidget(self.message)
        layout.addWidget(box)
        try:
            self.set_rules(load_rules(path))
        except ValueError as exc:  # a broken file: say so, offer the built-in set to save
            self.message.setText(f"{exc}\nShowing the built-in set.")
            self.set_rules(BUILTIN_RULES)
        self.resize(900, 360)

    # -- rows --------------------------------------------------------------------------
    def set_rules(self, rules) -> None:
        self.table.setRowCount(0)
        for rule in rules:
            self.add_row(rule)

    def add_row(self, rule: LayoutRule | None = None) -> None:
        rule = rule if isinstance(rule, LayoutRule) else LayoutRule("New rule")
        row = self.table.rowCount()
        self.table.insertRow(row)
        for col, text in enumerate((rule.name, rule.modality, rule.body_part,
                                    rule.description)):
            self.table.setItem(row, col, QTableWidgetItem(text))
        layout = QComboBox(self.table)
        layout.addItems(list(LAYOUT_SHAPES))
        layout.setCurrentText(rule.layout)
        self.table.setCellWidget(row, 4, layout)
        self.table.setItem(row, 5, QTableWidgetItem(", ".join(rule.slots)))
        window = QComboBox(self.table)
        window.addItems([w or "(series)" for w in WINDOWS])
        window.setCurrentText(rule.window.lower() or "(series)")
        self.table.setCellWidget(row, 6, window)

    def remove_row(self) -> None:
        row = self.table.currentRow()
        if row >= 0:
            self.table.removeRow(row)

    def move_row(self, step: int) -> None:
        try:
            rules = self.rules()
        except ValueError as exc:  # a wrong row cannot be carried: say which
            self.message.setText(str(exc))
            return
        row = self.table.currentRow()
        other = row + step
        if row < 0 or not 0 <= other < len(rules):
            return
        rules[row], rules[other] = rules[other], rules[row]
        self.set_rules(rules)
        self.table.setCurrentCell(other, 0)

    def _row_fields(self, row: int) -> dict:
        def text(col: int) -> str:
            item = self.table.item(row, col)
            return item.text().strip() if item is not None else ""

        window = self.table.cellWidget(row, 6).currentText()
        return {"name": text(0), "modality": text(1), "body_part": text(2),
                "description": text(3), "layout": self.table.cellWidget(row, 4).currentText(),
                "slots": tuple(s.strip() for s in text(5).split(",") if s.strip()),
                "window": "" if window == "(series)" else window}

    def rules(self) -> list[LayoutRule]:
        """The rules as edited.

        Raises
        ------
        ValueError
            Naming the row (from 1) and what is wrong with it.
        """
        out = []
        for row in range(self.table.rowCount()):
            try:
                out.append(LayoutRule(**self._row_fields(row)))
            except ValueError as exc:
                raise ValueError(f"row {row + 1}: {exc}") from exc
        return out

    def save(self) -> bool:
        """Write the rules (nothing when a row is wrong: the message names it)."""
        try:
            rules = self.rules()
        except ValueError as exc:
            self.message.setText(str(exc))
            return False
        try:
            save_rules(rules, self._path)
        except OSError as exc:
            self.message.setText(f"The rules could not be saved: {exc}")
            return False
        self.accept()
        return True

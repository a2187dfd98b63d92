"""The step palette of the chain panel: the registry's steps by category, each with its id
and version and the summary of its doc as tooltip; a plugin that failed to load is listed
greyed under "Unavailable", with the reason.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QTreeWidget, QTreeWidgetItem, QWidget

from medview.gui.dochtml import docstring_summary
from medview.pipeline.registry import CATEGORIES, all_steps, broken_plugins

__all__ = ["ID_ROLE", "StepPalette"]

#: The item data role holding a step's id ("" for a category or a broken plugin).
ID_ROLE = Qt.ItemDataRole.UserRole


class StepPalette(QTreeWidget):
    """The registered steps, grouped by category (categories without steps hidden)."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("step_palette")
        self.setHeaderHidden(True)
        categories: dict[str, QTreeWidgetItem] = {}
        for c in CATEGORIES:
            categories[c] = QTreeWidgetItem(self, [c])
        for spec in all_steps():
            item = QTreeWidgetItem(categories[spec.category], [spec.title])
            item.setData(0, ID_ROLE, spec.id)
            item.setToolTip(0, f"{spec.id} (v{spec.version})\n\n{docstring_summary(spec.doc)}")
        broken = broken_plugins()
        if broken:  # a plugin that failed to load: listed, greyed, with the reason
            categories["Unavailable"] = QTreeWidgetItem(self, ["Unavailable"])
            for plugin in broken:
                item = QTreeWidgetItem(categories["Unavailable"],
                                       [f"{plugin.name} (plugin failed to load)"])
                item.setDisabled(True)
                item.setToolTip(0, f"{plugin.value}\n\n{plugin.error}")
        for item in categories.values():
            item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsSelectable)
            if item.childCount() == 0:
                item.setHidden(True)
        self.expandAll()

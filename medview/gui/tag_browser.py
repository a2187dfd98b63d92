"""The DICOM tag browser: every element of one instance of a series, searchable.

:func:`read_tag_tree` is plain Python (pydicom, no Qt): a file → a tree of :class:`TagNode`,
with sequences as children, bounded in size and never raising for a broken file (the error
is returned instead). :class:`TagBrowserDialog` shows it with a search box and an instance
spin box and slider.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QSlider,
    QSpinBox,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

__all__ = ["TagBrowserDialog", "TagNode", "TagTree", "read_tag_tree"]

#: at most this many rows per file: a broken or enormous header stays browsable
MAX_ELEMENTS = 20_000
#: values are cut to this many characters in the tree (the tooltip has a longer cut)
MAX_VALUE_CHARS = 160
_MAX_TOOLTIP_CHARS = 2_000


@dataclass
class TagNode:
    """One row: an element (tag, keyword, VR, value) or a sequence item (tag "Item 1")."""

    tag: str
    keyword: str
    vr: str
    value: str
    children: list[TagNode] = field(default_factory=list)

    def search_text(self) -> str:
        compact = self.tag.strip("()").replace(",", "")
        return " ".join((self.tag, compact, self.keyword, self.vr, self.value)).lower()


@dataclass
class TagTree:
    """What :func:`read_tag_tree` found: the rows, and an error if reading stopped early."""

    path: str
    nodes: list[TagNode]
    error: str = ""
    truncated: bool = False


def _format_value(elem) -> str:
    value = elem.value
    if value is None or value == "":
        return ""
    if isinstance(value, bytes | bytearray):
        return f"<{len(value)} bytes>"
    if elem.VR in ("OB", "OW", "OF", "OD", "OL", "OV", "UN"):
        try:
            return f"<{len(value)} bytes>"
        except TypeError:
            return f"<{elem.VR} value>"
    if isinstance(value, list | tuple) or type(value).__name__ == "MultiValue":
        return "\\".join(str(v) for v in value)
    return str(value)


def _tag_text(tag) -> str:
    return f"({tag.group:04X},{tag.element:04X})"


class _Reader:
    def __init__(self, max_elements: int):
        self.left = max_elements
        self.truncated = False

    def elements(self, dataset) -> list[TagNode]:
        nodes: list[TagNode] = []
        for elem in dataset:
            if self.left <= 0:
                self.truncated = True
                break
            self.left -= 1
            nodes.append(self.element(elem))
        return nodes

    def element(self, elem) -> TagNode:
        tag = _tag_text(elem.tag)
        keyword = elem.keyword or (elem.name if elem.tag.is_private else "")
        if elem.tag.is_private and elem.name and elem.name != "Private tag data":
            keyword = elem.name
        try:
            vr = str(elem.VR)
            if vr == "SQ":
                items = list(elem.value)
                node = TagNode(tag, keyword, vr, f"{len(items)} item(s)")
                for i, item in enumerate(items, start=1):
                    child = TagNode(f"Item {i}", "", "", "")
                    child.children = self.elements(item)
                    node.children.append(child)
                return node
            return TagNode(tag, keyword, vr, _format_value(elem))
        except Exception as exc:  # a bad value: shown on its row, the rest still listed
            return TagNode(tag, keyword, "", f"<unreadable: {exc}>")


def read_tag_tree(path: str | os.PathLike, *, max_elements: int = MAX_ELEMENTS) -> TagTree:
    """The elements of the DICOM file at ``path`` (file meta first), without pixel data.

    Never raises for a bad file: ``error`` then says what went wrong (with the elements read
    before it, if any). At most ``max_elements`` rows (``truncated`` says so).
    """
    import pydicom
    from pydicom.errors import InvalidDicomError

    path = os.fspath(path)
    reader = _Reader(max_elements)
    nodes: list[TagNode] = []
    error = ""
    # pydicom warns about what it had to guess (unknown VRs, odd lengths): for a user
    # looking at a broken file these are the findings, so they are shown, not printed
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            dataset = pydicom.dcmread(path, stop_before_pixels=True)
        except InvalidDicomError as exc:
            return TagTree(path, [], f"{path}: not a DICOM file ({exc})")
        except FileNotFoundError:
            return TagTree(path, [], f"{path}: the file does not exist any more")
        except Exception as exc:  # pydicom raises many kinds for truncated or corrupt files
            return TagTree(path, [], f"{path}: could not be read: {type(exc).__name__}: {exc}")
        try:
            meta = getattr(dataset, "file_meta", None)
            if meta is not None:
                nodes.extend(reader.elements(meta))
            nodes.extend(reader.elements(dataset))
        except Exception as exc:  # e.g. a truncated deferred element: keep what was read
            error = f"{path}: reading stopped: {type(exc).__name__}: {exc}"
    found = list(dict.fromkeys(str(w.message) for w in caught))
    if found:
        shown = "; ".join(found[:5]) + (f" (and {len(found) - 5} more)" if len(found) > 5 else "")
        error = (error + "\n" if error else "") + f"{path}: problems found: {shown}"
    return TagTree(path, nodes, error, reader.truncated)


# ------------------------------------------------------------------------------ Qt dialog

_NODE_ROLE = Qt.ItemDataRole.UserRole


class TagBrowserDialog(QDialog):
    """The elements of one instance of a series, with a search box and an instance picker.

    Parameters
    ----------
    paths : sequence of path
        The instances' files, in the order the picker steps through them.
    title : str
        What the window title names (the series).
    """

    def __init__(self, paths: Sequence[str | os.PathLike], title: str = "",
                 parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("tag_browser")
        self.setWindowTitle(f"DICOM tags — {title}" if title else "DICOM tags")
        self.resize(900, 700)
        self.paths = [os.fspath(p) for p in paths]
        self.tag_tree: TagTree | None = None

        self.search = QLineEdit(self)
        self.search.setPlaceholderText("Filter on tag, keyword or value")
        self.search.setClearButtonEnabled(True)
        self.search.textChanged.connect(self._apply_filter)
        self.instance_spin = QSpinBox(self)
        self.instance_spin.setRange(1, max(1, len(self.paths)))
        self.instance_spin.setPrefix("Instance ")
        self.instance_spin.setSuffix(f" of {len(self.paths)}")
        self.instance_slider = QSlider(Qt.Orientation.Horizontal, self)
        self.instance_slider.setRange(1, max(1, len(self.paths)))
        self.instance_spin.valueChanged.connect(self.instance_slider.setValue)
        self.instance_slider.valueChanged.connect(self.instance_spin.setValue)
        self.instance_spin.valueChanged.connect(lambda v: self.show_instance(v - 1))
        self.file_label = QLabel(self)
        self.file_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.error_label = QLabel(self)
        self.error_label.setObjectName("tag_error")
        self.error_label.setWordWrap(True)
        self.error_label.setStyleSheet("color: #ff7070")
        self.error_label.setVisible(False)

        self.tree = QTreeWidget(self)
        self.tree.setColumnCount(4)
        self.tree.setHeaderLabels(["Tag", "Keyword", "VR", "Value"])
        self.tree.setUniformRowHeights(True)
        self.tree.setAlternatingRowColors(True)
        header = self.tree.header()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Interactive)
        header.resizeSection(1, 220)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)

        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self.reject)
        top = QHBoxLayout()
        top.addWidget(self.search, 2)
        top.addWidget(self.instance_spin)
        top.addWidget(self.instance_slider, 1)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.file_label)
        layout.addWidget(self.error_label)
        layout.addWidget(self.tree, 1)
        layout.addWidget(buttons)
        self.instance_slider.setVisible(len(self.paths) > 1)
        self.show_instance(0)

    def show_instance(self, index: int) -> None:
        """Read and show instance ``index`` (0-based) of the series."""
        self.tree.clear()
        if not self.paths:
            self._set_error("The series has no instance in the catalog.")
            return
        index = min(max(int(index), 0), len(self.paths) - 1)
        if self.instance_spin.value() != index + 1:
            self.instance_spin.setValue(index + 1)  # comes back here through valueChanged
            return
        path = self.paths[index]
        self.file_label.setText(path)
        self.tag_tree = read_tag_tree(path)
        message = self.tag_tree.error
        if self.tag_tree.truncated:
            message = (message + "\n" if message else "") + (
                f"Only the first {MAX_ELEMENTS} elements are shown.")
        self._set_error(message)
        self.tree.setUpdatesEnabled(False)
        for node in self.tag_tree.nodes:
            self._add(self.tree.invisibleRootItem(), node)
        self.tree.setUpdatesEnabled(True)
        self._apply_filter(self.search.text())

    def _set_error(self, message: str) -> None:
        self.error_label.setText(message)
        self.error_label.setVisible(bool(message))

    def _add(self, parent: QTreeWidgetItem, node: TagNode) -> None:
        value = node.value
        shown = value if len(value) <= MAX_VALUE_CHARS else value[:MAX_VALUE_CHARS - 1] + "…"
        item = QTreeWidgetItem(parent, [node.tag, node.keyword, node.vr, shown])
        item.setData(0, _NODE_ROLE, node.search_text())
        if len(value) > MAX_VALUE_CHARS:
            item.setToolTip(3, value[:_MAX_TOOLTIP_CHARS])
        for child in node.children:
            self._add(item, child)

    def _apply_filter(self, text: str) -> None:
        words = str(text or "").strip().lower().split()

        def visit(item: QTreeWidgetItem, inherited: bool) -> bool:
            own = all(w in (item.data(0, _NODE_ROLE) or "") for w in words)
            # a matching sequence shows all it holds; a matching child shows its parents
            any_child = False
            for i in range(item.childCount()):
                any_child = visit(item.child(i), inherited or own) or any_child
            shown = inherited or own or any_child
            item.setHidden(not shown)
            if words and any_child:
                item.setExpanded(True)
            return own or any_child

        root = self.tree.invisibleRootItem()
        for i in range(root.childCount()):
            visit(root.child(i), False)

    # -- queries for tests and scripts ---------------------------------------------------
    def visible_rows(self) -> list[tuple[str, str, str]]:
        """``(tag, keyword, value)`` of every row the filter shows, depth first."""
        rows: list[tuple[str, str, str]] = []

        def walk(item: QTreeWidgetItem) -> None:
            for i in range(item.childCount()):
                child = item.child(i)
                if not child.isHidden():
                    rows.append((child.text(0), child.text(1), child.text(3)))
                    walk(child)

        walk(self.tree.invisibleRootItem())
        return rows

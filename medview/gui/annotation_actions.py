"""The window's annotations and key images: the drawing tools beside the measuring ones,
File ▸ Save Annotations (Ctrl+S), the key-image actions (K marks or unmarks the slice,
"." and "," jump to the next and previous key image), and reading what the catalog holds
when a series is opened (medview's last save, and SR/KOS documents other tools made).

The session saves and reads (:mod:`medview.app.annotation_actions`); this binds the window to
it. Documents saved with the study are offered by File ▸ Export and go out with the series
(send, share).
"""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QMenu, QToolBar

from medview.app.exporting import Exportable
from medview.app.messages import TaskError
from medview.app.tasks import format_traceback

__all__ = ["AnnotationActions"]

log = logging.getLogger(__name__)

STATUS_MESSAGE_MS = 8000

#: the drawing tools added to the tool bar: (tool, text, key, tip)
TOOLS = (("angle", "Angle", "G", "Left drag draws the first arm, a click the second (G)"),
         ("polygon", "Freehand ROI", "L", "Left drag traces a closed outline (L)"),
         ("arrow", "Arrow", "Shift+A", "Left drag from the tail to the head (Shift+A)"),
         ("text", "Text", "T", "Click places a text (T)"))


class AnnotationActions:
    """Built once by the window, before its shortcuts are restored.

    Attributes
    ----------
    save_action, key_action, next_key_action, previous_key_action : QAction
    stored : StoredWork or None
        What the catalog held for the series last opened.
    """

    def __init__(self, window):
        self.window = window
        self.state = window.state
        self.stored = None
        self._add_tools()
        self._add_menu()
        window.series_opened.connect(self._on_series_opened)
        self.state.key_images_changed.connect(self._on_key_images_changed)
        window._export_providers.append(self.exportables)

    # -- construction ------------------------------------------------------------------
    def _add_tools(self) -> None:
        w = self.window
        group = w.tool_actions["distance"].actionGroup()
        bar = w.findChild(QToolBar, "tools_toolbar")
        before = w.tool_actions["brush"]
        for tool, text, key, tip in TOOLS:
            action = QAction(text, w, checkable=True)
            action.setObjectName(f"tool_{tool}")
            action.setShortcut(QKeySequence(key))
            action.setToolTip(tip)
            action.triggered.connect(lambda checked=False, t=tool: self.state.set_tool(t))
            group.addAction(action)
            if bar is not None:
                bar.insertAction(before, action)
            w.tool_actions[tool] = action

    def _add_menu(self) -> None:
        w = self.window
        # Ctrl+S saves the reader's work with the study; the view's PNG moves to Save As
        w.save_png_action.setShortcut(QKeySequence("Ctrl+Shift+S"))
        self.save_action = QAction("Save &Annotations", w)
        self.save_action.setObjectName("action_save_annotations")
        self.save_action.setShortcut(QKeySequence.StandardKey.Save)
        self.save_action.setToolTip("Save the annotations (DICOM SR) and key images (DICOM "
                                    "KOS) with the study (Ctrl+S)")
        self.save_action.triggered.connect(lambda: self.save(wait=False))
        w._menu("File").insertAction(w.save_png_action, self.save_action)
        menu = QMenu("&Annotations", w)
        w.menuBar().insertMenu(w._menu("View").menuAction(), menu)
        self.menu = menu
        menu.addAction(self.save_action)
        menu.addSeparator()
        self.key_action = self._action("&Mark Key Image", "K", "action_key_image",
                                       "Mark or unmark this slice as a key image (K)",
                                       self.toggle_key_image)
        self.next_key_action = self._action("&Next Key Image", ".", "action_next_key_image",
                                            "Go to the next key image (.)",
                                            lambda: self.step_key_image(+1))
        self.previous_key_action = self._action(
            "&Previous Key Image", ",", "action_previous_key_image",
            "Go to the previous key image (,)", lambda: self.step_key_image(-1))
        menu.addSeparator()
        menu.addAction(w.clear_measurements_action)

    def _action(self, text: str, key: str, name: str, tip: str, slot) -> QAction:
        action = QAction(text, self.window)
        action.setObjectName(name)
        action.setShortcut(QKeySequence(key))
        action.setToolTip(tip)
        action.triggered.connect(slot)
        self.menu.addAction(action)
        return action

    # -- the open series ---------------------------------------------------------------
    def _series(self):
        """The series as loaded (also while a derived volume is shown)."""
        layers = getattr(self.window, "layers", None)
        series = layers.series.value if layers is not None and layers.series else None
        return series if series is not None else self.state.volume

    def _on_series_opened(self, volume) -> None:
        session = self.window.session
        if session.catalog is None or not volume.metadata.get("SeriesInstanceUID"):
            return
        try:
            stored = session.load_annotations(volume)
        except Exception as exc:  # error boundary: the series stays shown without them
            self.window._show_error(TaskError("Reading the annotations", exc,
                                              format_traceback(exc)))
            return
        self.stored = stored
        for why in stored.skipped:
            log.warning("annotation not shown: %s", why)
        if self.state.volume is not volume:
            return  # superseded (another series is shown now)
        work = self.window.unsaved.work
        if stored.annotations:
            drawn = self.state.annotations()  # drawn while the series was loading
            known = {a.uid for a in stored.annotations}
            kept = self.state.set_annotations(
                [*stored.annotations, *(a for a in drawn if a.uid not in known)])
            if not drawn:
                work.mark_saved("measurements")
            if kept:
                self.window.statusBar().showMessage(
                    f"{kept} annotation(s) lie in no view's slice: kept, not shown",
                    STATUS_MESSAGE_MS)
        if stored.key_slices and not self.state.key_slices:
            self.state.set_key_slices(stored.key_slices)
            work.mark_saved("key_images")

    def can_save(self) -> bool:
        """Whether the open series is a DICOM series of the catalog (annotations are saved
        with it)."""
        series = self._series()
        catalog = self.window.session.catalog
        if series is None or catalog is None or not series.metadata.get("source_files"):
            return False
        uid = str(series.metadata.get("SeriesInstanceUID") or "")
        return bool(uid) and bool(catalog.instances(uid))

    def save(self, *, wait: bool = True) -> bool:
        """Save the annotations and key images with the study; False (with a message) when
        they could not be (or cannot be started, with ``wait`` False). ``wait`` False (Ctrl+S)
        saves in the background; the unsaved-work guard waits for it."""
        w = self.window
        series = self._series()
        if series is None:
            w._show_message("Nothing to save", "Open a series first.")
            return False
        if not self.can_save():
            w._show_message("Cannot save with the study",
                            "This series is not a DICOM series of the catalog: export the "
                            "measurements as CSV or JSON with File ▸ Export instead.")
            return False
        work = w.unsaved.work
        generations = {k: work.generation(k) for k in ("measurements", "key_images")}
        annotations = self.state.annotations()
        keys = self.state.key_slices
        def saved(result) -> None:
            # no report: there was nothing drawn and nothing saved to clear
            work.mark_saved("measurements", generations["measurements"])
            if result.key_images is not None:
                work.mark_saved("key_images", generations["key_images"])
            w.statusBar().showMessage(
                f"Saved {len(annotations)} annotation(s) and {len(keys)} key image(s) with "
                "the study", STATUS_MESSAGE_MS)
            w.refresh_browser()

        try:
            if not wait:
                job = w.session.start_saving_annotations(series, annotations, key_slices=keys)
                job.events.finished.connect(saved)
                job.events.failed.connect(w._show_error)  # nothing is lost: save again
                return True
            result = w.session.save_annotations(series, annotations, key_slices=keys)
        except Exception as exc:  # error boundary: nothing is lost, the reader can retry
            w._show_error(TaskError("Saving the annotations", exc, format_traceback(exc)))
            return False
        saved(result)
        return True

    # -- key images --------------------------------------------------------------------
    def toggle_key_image(self) -> None:
        if self.state.volume is None:
            return
        try:
            marked = self.state.toggle_key_image()
        except ValueError as exc:  # a made-up slice: say why nothing was marked
            self.window.statusBar().showMessage(str(exc), STATUS_MESSAGE_MS)
            return
        z = self.state.slice_index + 1
        self.window.statusBar().showMessage(
            f"Slice {z} {'marked as a key image' if marked else 'is no longer a key image'}",
            STATUS_MESSAGE_MS)

    def step_key_image(self, step: int) -> None:
        if self.state.volume is None:
            return
        if self.state.step_key_image(step) is None:
            self.window.statusBar().showMessage("No key image on this series (K marks one).",
                                                STATUS_MESSAGE_MS)

    def _on_key_images_changed(self) -> None:
        for view in self.window.views.values():
            view._update_overlays()

    # -- export ------------------------------------------------------------------------
    def exportables(self) -> list[Exportable]:
        """The documents saved with the open series (File ▸ Export copies them)."""
        series = self._series()
        if series is None:
            return []
        uid = str(series.metadata.get("SeriesInstanceUID") or "")
        catalog = self.window.session.catalog
        if catalog is None or not uid:
            return []
        items = []
        for doc in catalog.documents(uid):
            path = Path(doc.path)
            if path.is_file():
                what = "Key images (DICOM KOS)" if doc.modality == "KO" \
                    else "Annotations (DICOM SR)"
                items.append(Exportable(f"{what}: {path.name}", "document", path))
        return items

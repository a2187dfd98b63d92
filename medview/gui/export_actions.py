"""File ▸ Export (Ctrl+E) in the main window: what can be exported now, the dialog, and the
export itself (:meth:`Session.export <medview.app.session.Session.export>`; the view's PNG is
saved here, as it is on screen). A mixin of :class:`~medview.gui.main_window.MainWindow`.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtGui import QAction, QKeySequence

from medview.app.messages import TaskError
from medview.app.tasks import format_traceback as _format_tb
from medview.gui.tasks import Task

__all__ = ["ExportActionsMixin"]

STATUS_MESSAGE_MS = 8000


class ExportActionsMixin:
    """Mixed into MainWindow (before QMainWindow)."""

    # -- export ------------------------------------------------------------------------
    def _build_export_action(self) -> None:
        self.export_open_action = QAction("&Export…", self)
        self.export_open_action.setObjectName("action_export")
        self.export_open_action.setShortcut(QKeySequence("Ctrl+E"))
        self.export_open_action.setToolTip("Export the label map (DICOM SEG, NIfTI), the "
                                           "series, the fused image, measurements or the view")
        self.export_open_action.triggered.connect(self.show_export_dialog)
        file_menu = self.menuBar().actions()[0].menu()
        file_menu.insertAction(self.save_png_action, self.export_open_action)
        self._export_providers: list = []  # callables adding Exportables (e.g. chain results)

    def exportables(self) -> list:
        """What can be exported now, for the Export dialog."""
        from medview.app.exportables import list_exportables

        return list_exportables(self.state, self.layers, self._export_providers,
                                self._blend_fusion)

    def _blend_fusion(self):
        """The fused image as an RGB volume: grey base window, the second series in its colour
        map and opacity (what the views show); the registered step ``fuse.blend``, run here
        (the fused series is already on this workstation)."""
        from medview.pipeline.executors import LOCAL

        state = self.state
        return self.session.blend(state.volume, state.fusion,
                                  window_center=state.window_center,
                                  window_width=state.window_width,
                                  colormap=state.fusion_colormap,
                                  moving_range=state.fusion_window,
                                  opacity=state.fusion_opacity, executor=LOCAL)

    def show_export_dialog(self) -> None:
        from medview.gui.exports import ExportDialog

        items = self.exportables()
        if not items:
            self._show_message("Nothing to export", "Open a series first.")
            return
        dialog = ExportDialog(items, self.export, self.settings_value("export/last_folder", ""),
                              self)
        self.add_send_button(dialog)
        dialog.open()
        self.export_dialog = dialog

    def export(self, item, fmt: str, path, overwrite: bool = False) -> Task | None:
        """Export ``item`` (an Exportable) as ``fmt`` to ``path`` in the background; the
        view (PNG) is saved at once, on the GUI thread, as it is on screen."""
        from medview.app.exporting import export_item

        self.set_settings_value("export/last_folder", str(Path(path).parent))
        if item.kind == "view":
            try:
                written = export_item(item, fmt, path, overwrite=overwrite,
                                      save_view=self.view_grid.save_png)
            except Exception as exc:  # error boundary
                self._show_error(TaskError("Exporting the view", exc, _format_tb(exc)))
                return None
            self._on_dialog_exported(written)
            return None
        kind = _WORK_OF_EXPORT.get(item.name)
        generation = self.unsaved.work.generation(kind) if kind else 0
        try:
            task = self.session.export(item, fmt, path, overwrite=overwrite)
        except Exception as exc:  # error boundary: blending the fused image failed
            self._on_dialog_export_failed(TaskError(f"Exporting {item.name.lower()}", exc,
                                                    _format_tb(exc)))
            return None
        if kind:  # this work is saved as it was when the export started (before `exported`)
            task.events.finished.connect(
                lambda written: self.unsaved.work.mark_saved(kind, generation), priority=10)
        return task

    def _on_dialog_exported(self, written) -> None:
        first = written[0] if written else ""
        more = f" and {len(written) - 1} more" if len(written) > 1 else ""
        self.statusBar().showMessage(f"Exported {first}{more}", STATUS_MESSAGE_MS)
        self.exported.emit(list(written))

    def _on_dialog_export_failed(self, error: TaskError) -> None:
        self._show_error(error)
        self.exported_failed.emit(error)


#: Export dialog item → the kind of work it saves (:mod:`medview.app.unsaved_work`)
_WORK_OF_EXPORT = {"Label map": "labels", "Scribbles": "scribbles",
                   "Measurements": "measurements", "Fused image": "fusion"}

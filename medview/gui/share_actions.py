"""The main window's File ▸ Share de-identified…: the open study or series, de-identified, to
a folder, a ZIP or a PACS node (:class:`~medview.gui.share_dialog.ShareDialog`)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtGui import QAction

__all__ = ["ShareActionsMixin"]


class ShareActionsMixin:
    """Mixed into :class:`~medview.gui.main_window.MainWindow` (after the PACS parts)."""

    def _build_share(self) -> None:
        self.share_action = QAction("Share &de-identified…", self)
        self.share_action.setObjectName("action_share")
        self.share_action.setToolTip("A copy of the open study or series without patient "
                                     "identity (DICOM PS3.15), to a folder, a ZIP or a PACS")
        self.share_action.triggered.connect(self.open_share_dialog)
        self._menu("File").insertAction(self.save_png_action, self.share_action)

    def share_sources(self) -> list[tuple[str, list[Path]]]:
        """What can be shared now: the open study (every series the catalog holds of it),
        the open series."""
        vol = self.state.volume
        series = self.layers.series.value if getattr(self, "layers", None) is not None \
            and self.layers.series is not None else vol
        if series is None:
            return []
        files = [Path(f) for f in (series.metadata.get("source_files") or [])]
        if files:  # with the annotations and key images saved on it (SR, KOS)
            files += self.session.series_documents(
                str(series.metadata.get("SeriesInstanceUID") or ""))
        sources = []
        study = series.metadata.get("StudyInstanceUID")
        if study:
            study_files = self.session.study_paths(study)
            if len(study_files) > len(files):
                sources.append(("The open study", study_files))
        if files:
            sources.append(("The open series", files))
        return sources

    def open_share_dialog(self):
        from medview.gui.share_dialog import ShareDialog

        sources = self.share_sources()
        if not sources:
            self._show_message("Nothing to share", "Open a series first.")
            return None
        dialog = ShareDialog(self.session, sources, self)
        dialog.open()
        self.share_dialog = dialog
        return dialog

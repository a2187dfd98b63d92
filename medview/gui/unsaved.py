"""No lost work: Save / Discard / Cancel before the window drops the reader's work, and
an autosave of label maps and scribbles for the start after a crash.

:class:`UnsavedGuard` owns the window's :class:`~medview.app.unsaved_work.UnsavedWork` and
:class:`~medview.app.recovery.RecoveryStore`. :meth:`UnsavedGuard.confirm` is called before a
user action that would drop the work (opening another series, closing the window, quitting):

- Save writes annotations and key images with the study (DICOM SR and KOS in the catalog,
  :mod:`medview.gui.annotation_actions`), and each other unsaved kind where the reader
  chooses (the same exports as File ▸ Export: label maps as NIfTI/NRRD/DICOM SEG,
  measurements of a series not in the catalog as CSV/JSON, the fused image as a DICOM
  Secondary Capture), then the action goes on; a failed or cancelled save stops it;
- Discard goes on and forgets the work (and its autosave);
- Cancel stops the action.

The question and the file chooser are attributes (``ask``, ``choose_path``) so that a script
can answer them; by default they are a modal QMessageBox and QFileDialog.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtWidgets import QFileDialog, QMessageBox, QWidget

from medview.app.messages import TaskError
from medview.app.recovery import RecoveryEntry, RecoveryError, RecoveryStore
from medview.app.unsaved_work import TITLES, UnsavedWork
from medview.core.labelmap import LabelMap

__all__ = ["AUTOSAVE_ENV", "UnsavedGuard", "ask_recovery", "ask_save_discard_cancel"]

log = logging.getLogger(__name__)

#: seconds between autosaves (default 60)
AUTOSAVE_ENV = "MEDVIEW_AUTOSAVE_S"
DEFAULT_AUTOSAVE_S = 60.0

#: kind → (Export dialog item name, file filters, first suffix)
_SAVE_AS = {
    "labels": ("Label map", "NIfTI label map (*.nii.gz);;NRRD label map (*.nrrd);;"
               "DICOM SEG (*.dcm)", ".nii.gz"),
    "scribbles": ("Scribbles", "NIfTI label map (*.nii.gz);;NRRD label map (*.nrrd);;"
                  "DICOM SEG (*.dcm)", ".nii.gz"),
    "measurements": ("Measurements", "CSV (*.csv);;JSON (*.json)", ".csv"),
    "fusion": ("Fused image", "DICOM Secondary Capture (*.dcm)", ".dcm"),
}


def _format_for(kind: str, path: str) -> str:
    name = path.lower()
    if kind in ("labels", "scribbles"):
        return "seg" if name.endswith(".dcm") else "nrrd" if name.endswith(".nrrd") else "nifti"
    if kind == "measurements":
        return "json" if name.endswith(".json") else "csv"
    return "capture"


def ask_save_discard_cancel(parent: QWidget, what: str, action: str) -> str:
    """Ask with a modal message box; returns ``"save"``, ``"discard"`` or ``"cancel"``."""
    box = QMessageBox(QMessageBox.Icon.Warning, "Unsaved work",
                      f"{what[:1].upper()}{what[1:]} {'are' if ' and ' in what else 'is'} not "
                      f"saved.\n\nSave before {action}?",
                      QMessageBox.StandardButton.Save | QMessageBox.StandardButton.Discard
                      | QMessageBox.StandardButton.Cancel, parent)
    box.setObjectName("unsaved_box")
    box.setDefaultButton(QMessageBox.StandardButton.Save)
    box.setEscapeButton(QMessageBox.StandardButton.Cancel)
    answer = box.exec()
    return {QMessageBox.StandardButton.Save: "save",
            QMessageBox.StandardButton.Discard: "discard"}.get(
        QMessageBox.StandardButton(answer), "cancel")


def ask_recovery(parent: QWidget, entries: list[RecoveryEntry]) -> str:
    """Offer autosaved work; returns ``"restore"``, ``"discard"`` or ``"later"``."""
    listing = "\n".join(f"• {e.describe()}" for e in entries)
    box = QMessageBox(QMessageBox.Icon.Question, "Restore unsaved work?",
                      "medview did not close normally last time. This work was autosaved:\n\n"
                      f"{listing}\n\nRestore it (the series is opened), discard it, or decide "
                      "at the next start?", QMessageBox.StandardButton.NoButton, parent)
    box.setObjectName("recovery_box")
    restore = box.addButton("Restore", QMessageBox.ButtonRole.AcceptRole)
    discard = box.addButton("Discard", QMessageBox.ButtonRole.DestructiveRole)
    later = box.addButton("Later", QMessageBox.ButtonRole.RejectRole)
    box.setDefaultButton(restore)
    box.setEscapeButton(later)
    box.exec()
    clicked = box.clickedButton()
    return "restore" if clicked is restore else "discard" if clicked is discard else "later"


def _choose_path(parent: QWidget, kind: str, suggested: str, filters: str) -> str | None:
    path, _ = QFileDialog.getSaveFileName(parent, f"Save the {TITLES[kind]}", suggested,
                                          filters)
    return path or None


def autosave_interval_ms() -> int:
    raw = os.environ.get(AUTOSAVE_ENV, "").strip()
    try:
        seconds = float(raw) if raw else DEFAULT_AUTOSAVE_S
    except ValueError:
        log.warning("%s=%r is not a number of seconds; autosaving every %g s", AUTOSAVE_ENV,
                    raw, DEFAULT_AUTOSAVE_S)
        seconds = DEFAULT_AUTOSAVE_S
    return max(int(seconds * 1000), 10)


class UnsavedGuard(QObject):
    """The window's unsaved work: the question before it is dropped, the autosave, the offer
    to restore after a crash.

    Parameters
    ----------
    window : MainWindow
    store : RecoveryStore, optional
        Default the recovery folder (:func:`~medview.app.recovery.recovery_dir`).

    Signals
    -------
    autosaved(list)
        Recovery files were written (their paths).
    restored(str)
        Autosaved work was put back on the series with this UID.
    """

    autosaved = Signal(list)
    restored = Signal(str)

    def __init__(self, window, store: RecoveryStore | None = None):
        super().__init__(window)
        self.window = window
        self.work = UnsavedWork(window.state)
        self.store = store or RecoveryStore()
        #: ``ask(what, action) -> "save" | "discard" | "cancel"``
        self.ask = lambda what, action: ask_save_discard_cancel(window, what, action)
        #: ``choose_path(kind, suggested, filters) -> path or None``
        self.choose_path = lambda kind, suggested, filters: _choose_path(
            window, kind, suggested, filters)
        #: ``ask_restore(entries) -> "restore" | "discard" | "later"``
        self.ask_restore = lambda entries: ask_recovery(window, entries)
        self._written: set[Path] = set()  # recovery files of this session
        self._ended = threading.Event()  # set by a clean exit (read by autosave workers)
        self._autosaved_gen: dict[tuple[str, str], int] = {}
        self.timer = QTimer(self)
        self.timer.setInterval(autosave_interval_ms())
        self.timer.timeout.connect(self.autosave)
        self.timer.start()
        window.state.volume_changed.connect(self._on_volume_changed)

    # -- the question ------------------------------------------------------------------
    def confirm(self, action: str) -> bool:
        """True when ``action`` (e.g. "opening another series") may go on: nothing is
        unsaved, or the reader saved or discarded it."""
        if not self.work:
            return True
        answer = self.ask(self.work.describe(), action)
        if answer == "discard":
            self.discard()
            return True
        if answer == "save":
            return self.save_all()
        return False

    def discard(self) -> None:
        self.work.discard()
        self.forget_autosaves()

    def save_all(self) -> bool:
        """Save every unsaved kind where the reader chooses; False when one was not saved
        (cancelled or failed: the failure is shown)."""
        from medview.gui.exports import export_item

        kinds = self.work.kinds
        actions = getattr(self.window, "annotation_actions", None)
        if actions is not None and actions.can_save() and (
                "measurements" in kinds or "key_images" in kinds):
            # annotations and key images are saved with the study (DICOM SR and KOS)
            if not actions.save():
                return False
            kinds = [k for k in kinds if k not in ("measurements", "key_images")]
        items = {item.name: item for item in self.window.exportables()}
        folder = self.window.settings_value("export/last_folder", "") or str(Path.home())
        for kind in kinds:
            if kind == "key_images":
                continue  # only the study keeps them (a series not from the catalog: lost)
            name, filters, suffix = _SAVE_AS[kind]
            item = items.get(name)
            if item is None:
                continue
            stem = name.lower().replace(" ", "_")
            path = self.choose_path(kind, str(Path(folder) / (stem + suffix)), filters)
            if not path:
                return False
            if not any(path.lower().endswith(s) for s in (".nii.gz", ".nii", ".nrrd", ".dcm",
                                                          ".csv", ".json")):
                path += suffix
            generation = self.work.generation(kind)
            try:
                # on the GUI thread: the reader waits for this answer before going on
                written = export_item(item, _format_for(kind, path), path, overwrite=True)
            except Exception as exc:  # error boundary: the action stops, nothing is lost
                self.window._show_error(TaskError(f"Saving the {TITLES[kind]}", exc,
                                                  _format_tb(exc)))
                return False
            self.work.mark_saved(kind, generation)
            self.window.set_settings_value("export/last_folder", str(Path(path).parent))
            self.window.exported.emit(list(written))
        self.forget_autosaves()
        return True

    # -- autosave ----------------------------------------------------------------------
    def _series(self):
        layers = getattr(self.window, "layers", None)
        series = layers.series.value if layers is not None and layers.series else None
        return series if series is not None else self.window.state.volume

    def autosave(self) -> list[Path]:
        """Write the label map and scribbles that changed since the last autosave (only
        unsaved ones) to the recovery folder, in the background (compressing a CT-sized
        label map takes ~0.2–0.3 s); returns the files being written. ``autosaved(paths)``
        follows when they are on disk."""
        state = self.window.state
        series = self._series()
        uid = str(series.metadata.get("SeriesInstanceUID") or "") if series is not None else ""
        if not uid or state.is_loading or self._ended.is_set():
            return []
        meta = series.metadata
        description = " · ".join(str(v) for v in (meta.get("PatientName"),
                                                  meta.get("SeriesDescription")) if v)
        jobs = []
        for kind in ("labels", "scribbles"):
            lm = state.labels if kind == "labels" else state.scribbles
            gen = self.work.generation(kind)
            if (lm is None or not self.work.is_unsaved(kind)
                    or self._autosaved_gen.get((uid, kind)) == gen):
                continue
            # a copy taken now, on the GUI thread: the brush may paint on while it is written
            snapshot = LabelMap(np.array(lm.array), lm.spacing, lm.origin, lm.direction, {},
                                (), lm.segments)
            self._autosaved_gen[(uid, kind)] = gen
            # known before it exists: a clean exit removes it even if it lands after that
            path = self.store.path_for(uid, kind)
            self._written.add(path)
            jobs.append((kind, snapshot, path))
        if not jobs:
            return []
        store, ended = self.store, self._ended

        def work(progress) -> list[Path]:
            written = []
            for kind, snapshot, path in jobs:
                try:
                    store.save(uid, kind, snapshot, description=description)
                except OSError as exc:  # a full disk must not stop the reader: log it
                    log.warning("autosave of the %s failed: %s", TITLES[kind], exc)
                    continue
                if ended.is_set():  # the session ended while this was written
                    path.unlink(missing_ok=True)
                    continue
                written.append(path)
            return written

        self.window.tasks.start("Autosaving unsaved work", work,
                                on_finished=lambda paths: paths and self.autosaved.emit(paths))
        return [path for _kind, _snapshot, path in jobs]

    def forget_autosaves(self) -> None:
        """Delete this session's recovery files (the work was saved or discarded)."""
        self.store.remove(self._written)
        self._written.clear()
        self._autosaved_gen.clear()

    def _on_volume_changed(self, _volume) -> None:
        self._autosaved_gen.clear()

    def end_session(self) -> None:
        """A clean exit: stop autosaving and delete this session's recovery files."""
        self.timer.stop()
        self._ended.set()
        self.forget_autosaves()

    # -- after a crash -----------------------------------------------------------------
    def offer_recovery(self) -> str | None:
        """If the recovery folder holds autosaves (of an earlier session), offer them:
        restore the newest series' (opening it), discard all, or keep them for later.
        Returns the answer, or None when there was nothing to offer."""
        entries = [e for e in self.store.entries() if e.path not in self._written]
        if not entries:
            return None
        answer = self.ask_restore(entries)
        if answer == "discard":
            self.store.remove(e.path for e in entries)
        elif answer == "restore":
            uid = entries[0].series_uid
            self.restore([e for e in entries if e.series_uid == uid])
        return answer

    def restore(self, entries: list[RecoveryEntry]) -> None:
        """Put ``entries`` (of one series) back: at once if that series is open, else after
        it was opened from the catalog."""
        uid = entries[0].series_uid
        series = self._series()
        if series is not None and series.metadata.get("SeriesInstanceUID") == uid \
                and not self.window.state.is_loading:
            self._apply(entries, series)
            return
        window = self.window

        def opened(volume) -> None:
            if volume.metadata.get("SeriesInstanceUID") != uid:
                return
            window.series_opened.disconnect(opened)
            self._apply(entries, volume)

        catalog = window.catalog
        if catalog is None or not catalog.instances(uid):
            window._show_message(
                "Cannot restore", "The series this work was drawn on is not in the catalog "
                f"(SeriesInstanceUID {uid}). Import its folder, then restart medview to "
                "restore it; the autosave is kept.")
            return
        window.series_opened.connect(opened)
        window.open_series(uid)

    def _apply(self, entries: list[RecoveryEntry], volume) -> None:
        state = self.window.state
        for entry in entries:
            try:
                lm = self.store.load(entry, volume)
                (state.set_labels if entry.kind == "labels" else state.set_scribbles)(lm)
            except (RecoveryError, ValueError, TypeError) as exc:  # error boundary
                self.window._show_error(TaskError("Restoring autosaved work", exc, ""))
                return
            # it is this session's now: unsaved (set_* marked it), removed on save/discard
            self._written.add(entry.path)
        self.window.statusBar().showMessage(
            f"Restored {len(entries)} autosaved label map(s); save them with File ▸ Export.",
            8000)
        self.restored.emit(entries[0].series_uid)


def _format_tb(exc: BaseException) -> str:
    import traceback

    return "".join(traceback.format_exception(exc))

"""Opening a DICOM SEG from the browser: the window's part.

The SEG is shown as the label map of the series it references (opened first unless shown);
finding its file and source series and reading it are the Session's
(:meth:`~medview.app.session.Session.seg_reference`, :meth:`~medview.app.session.Session.read_seg`);
here are only the questions to the reader, the messages and the overlay.
"""

from __future__ import annotations

from medview.app.messages import TaskError

__all__ = ["open_seg_series"]


def open_seg_series(window, series_uid: str) -> bool:
    """Open SEG series ``series_uid`` of the window's catalog as a label map over the series
    it references (opened first unless shown). False (with a message) when that cannot be
    done; True when the SEG is shown or on its way (``window.seg_opened`` follows)."""
    try:
        ref = window.session.seg_reference(series_uid)
    except (OSError, ValueError, RuntimeError) as exc:  # error boundary: a message, not grey
        window._show_error(TaskError("Opening the segmentation", exc, ""))
        return False
    if not ref.source_in_catalog:
        window._show_message(
            "Source series missing",
            f"The segmentation “{ref.description}” was drawn on series "
            f"{ref.referenced_uid}, which is not in the catalog. Import the folder of that "
            "series, then open the segmentation again.")
        return False
    shown = window.state.volume
    if (shown is not None and not window.state.is_loading
            and shown.metadata.get("SeriesInstanceUID") == ref.referenced_uid):
        if window.unsaved.work.is_unsaved("labels") and not window.unsaved.confirm(
                "replacing the label map"):
            return False
        _start_reading(window, ref, shown)
        return True
    if not window.unsaved.confirm("opening another series"):
        return False

    def opened(volume) -> None:
        if volume.metadata.get("SeriesInstanceUID") != ref.referenced_uid:
            return
        window.series_opened.disconnect(opened)
        _start_reading(window, ref, volume)

    window.series_opened.connect(opened)
    window.open_series(ref.referenced_uid)
    return True


def _start_reading(window, ref, volume) -> None:
    def finished(result) -> None:
        labels, note = result
        if window.state.volume is not volume and (
                window.state.volume is None or window.state.volume.metadata.get(
                    "SeriesInstanceUID") != volume.metadata.get("SeriesInstanceUID")):
            return  # the reader moved on to another series meanwhile
        window.state.set_labels(labels)
        window.unsaved.work.mark_saved("labels")  # as it is in the SEG file
        names = ", ".join(s.name for s in labels.segments)
        window.statusBar().showMessage(
            f"Segmentation {ref.description}: {len(labels.segments)} segment(s) ({names}){note}",
            8000)
        window.seg_opened.emit(labels)

    task = window.session.read_seg(ref, volume)
    task.signals.finished.connect(finished)
    task.signals.failed.connect(window._show_error)
    # the progress area follows it through the session's job_started

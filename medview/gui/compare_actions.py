"""The window's way into comparing: "Compare with…" on a series of the browser.

With a series open in the main view, the chosen series goes beside it (the open one is the
reference); with none, the chosen series opens as its layout rule says (its priors beside
it). One comparison window per main window, reused.
"""

from __future__ import annotations

from medview.gui.compare_window import CompareWindow

__all__ = ["compare_window_of", "compare_with"]


def compare_window_of(window) -> CompareWindow:
    """The comparison window of main ``window`` (made on first use)."""
    existing = getattr(window, "compare_window", None)
    if existing is None:
        existing = window.compare_window = CompareWindow(window.session, window)
    return existing


def compare_with(window, series_uid: str) -> CompareWindow:
    """"Compare with…": ``series_uid`` beside the series open in ``window`` (or hung by its
    layout rule when none is open, or it is the one open)."""
    compare = compare_window_of(window)
    volume = window.state.volume
    open_uid = "" if volume is None else str(volume.metadata.get("SeriesInstanceUID") or "")
    if open_uid and open_uid != series_uid:
        compare.compare([open_uid, series_uid])
    else:
        compare._guard("Hanging a comparison", compare.hang, series_uid)
    compare.show()
    compare.raise_()
    return compare

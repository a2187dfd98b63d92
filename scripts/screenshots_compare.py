"""The Compare window's screenshot for scripts/screenshots.py: the decubitus MR (the same
head supine and decubitus, two frames of reference) side by side in a 1×2 comparison,
linked by the rigid registration, each pane on its own view: the supine series on its
acquired sagittal plane, the decubitus one as its 2×2 MPR (reformatted coronal and axial)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path


def _wait_until(s, done: Callable[[], bool], what: str, timeout_s: float = 120.0) -> None:
    end = time.monotonic() + timeout_s
    while not done():
        if time.monotonic() > end:
            raise TimeoutError(f"compare screenshot: {what} did not happen in {timeout_s} s")
        s.settle(50)


def shot_compare(s, data: Path) -> Path:
    """``s`` is a ``Shots`` of scripts/screenshots.py, ``data`` the shared test data."""
    w = s.window(data / "dcm_qa_decubitus" / "In")
    by_path = {str(w.catalog.instances(u)[0].path): u for u in w.browser.series_uids()}
    hfs = next(u for p, u in by_path.items() if "/HFS/" in p)
    hfdl = next(u for p, u in by_path.items() if "/HFDL/" in p)
    s.wait(w.series_opened, lambda: w.open_series(hfs), failures=(w.series_failed,))
    w.compare_with(hfdl)
    compare = w.compare_window
    compare.resize(1280, 800)  # WINDOW_SIZE of scripts/screenshots.py
    panes = compare.comparison.panes
    _wait_until(s, lambda: panes[1].volume is not None, "opening the decubitus series")
    compare.view.panes[1].set_view("mpr")
    compare.register(1)
    _wait_until(s, lambda: panes[1].link.mode == "registration", "the registration")
    panes[0].state.set_cursor(128, 118, 17)
    return s.save("compare", compare)

"""A real screenshot of the whole window under Xvfb (the xcb platform, as on a desktop)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from PySide6.QtGui import QImage

SCRIPT = Path(__file__).with_name("window_screenshot.py")


def _pixels(image: QImage) -> np.ndarray:
    image = image.convertToFormat(QImage.Format.Format_RGB32)
    width, height = image.width(), image.height()
    buffer = np.frombuffer(image.constBits(), np.uint8, count=image.sizeInBytes())
    rows = buffer.reshape(height, image.bytesPerLine())[:, : width * 4]
    return rows.reshape(height, width, 4)[..., :3].copy()  # B, G, R


def test_window_screenshot_under_xvfb_is_not_blank(app, tmp_path, xvfb_run):
    out = tmp_path / "window.png"
    env = {k: v for k, v in os.environ.items() if k != "QT_QPA_PLATFORM"}
    env["MEDVIEW_DB"] = str(tmp_path / "catalog.sqlite")
    cmd = [xvfb_run, "-a", "-s", "-screen 0 1280x1024x24", "env", "QT_QPA_PLATFORM=xcb",
           sys.executable, str(SCRIPT), str(out), env["MEDVIEW_DB"]]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, f"exit {proc.returncode}:\n{proc.stderr[-3000:]}"
    assert out.is_file()

    image = QImage(str(out))
    assert not image.isNull()
    assert (image.width(), image.height()) == (1280, 860)
    pixels = _pixels(image)
    # the viewer is the right part of the window (the browser is docked left): take its
    # middle, where the image is, and require a real picture there, not a flat fill
    h, w, _ = pixels.shape
    viewer = pixels[h // 4: 3 * h // 4, w // 2: w - w // 8]
    grey = viewer.mean(axis=2)
    colours = {tuple(p) for p in viewer.reshape(-1, 3)[::7]}
    assert len(colours) > 100, f"only {len(colours)} distinct colours in the viewer area"
    assert grey.std() > 20, "the viewer area is almost uniform"
    # a radiology viewer: anatomy on a black background, in a dark window
    whole_viewer = pixels[30: h - 40, w // 3 + 20:].mean(axis=2)
    assert (whole_viewer < 30).mean() > 0.15, "no dark background around the image"
    assert (whole_viewer > 120).mean() > 0.15, "no bright anatomy"
    browser = pixels[150: h - 100, 20: w // 4].mean(axis=2)
    assert np.median(browser) < 80, "the series browser is not dark"

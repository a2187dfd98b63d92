"""The Qt parts of the installer checks, from the source tree: ``medview selftest``'s GUI
check, and ``MEDVIEW_GUI_SCREENSHOT`` (the picture the packaged app takes of itself under
Xvfb, with the start-up time in its log)."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import numpy as np
import pytest
from PySide6.QtGui import QImage
from realparts import REPO


def _env(tmp_path, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "QT_QPA_PLATFORM"}
    env["PYTHONPATH"] = str(REPO)
    env["MEDVIEW_DB"] = str(tmp_path / "catalog.sqlite")
    env["MEDVIEW_SETTINGS"] = str(tmp_path / "settings.ini")
    env["MEDVIEW_CACHE_DIR"] = str(tmp_path / "cache")
    env.update(extra)
    return env


@pytest.mark.slow
def test_selftest_gui_check_draws_the_main_window(tmp_path):
    # QT_QPA_PLATFORM unset and no screen: the self-test must choose offscreen itself
    env = _env(tmp_path)
    env.pop("DISPLAY", None)
    proc = subprocess.run([sys.executable, "-m", "medview", "selftest"], capture_output=True,
                          text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (line,) = [ln for ln in proc.stdout.splitlines() if "GUI (Qt offscreen)" in ln]
    assert line.startswith("OK")
    assert "platform offscreen" in line and "xcb" in line and "main window drawn" in line


@pytest.mark.slow
def test_screenshot_env_saves_the_screen_once_the_demo_is_shown(tmp_path, xvfb_run):
    out = tmp_path / "shot.png"
    env = _env(tmp_path, MEDVIEW_GUI_SCREENSHOT=str(out), MEDVIEW_GUI_EXIT_AFTER_MS="120000")
    cmd = [xvfb_run, "-a", "-s", "-screen 0 1280x1024x24", "env", "QT_QPA_PLATFORM=xcb",
           sys.executable, "-m", "medview", "--demo"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    shown = re.search(r"window shown ([0-9.]+) s after process start", proc.stderr)
    series = re.search(r"series shown ([0-9.]+) s after process start", proc.stderr)
    assert shown and series, proc.stderr[-2000:]
    assert 0 < float(shown.group(1)) <= float(series.group(1))
    image = QImage(str(out))
    # the X screen, not just the window: the size of Xvfb's screen
    assert (image.width(), image.height()) == (1280, 1024)
    image = image.convertToFormat(QImage.Format.Format_RGB32)
    pixels = np.frombuffer(image.constBits(), np.uint8, count=image.sizeInBytes())
    grey = pixels.reshape(1024, image.bytesPerLine())[:, : 1280 * 4].reshape(1024, 1280, 4)[
        ..., :3].mean(axis=2)
    viewer = grey[250:750, 640:1100]
    assert viewer.std() > 20, "the viewer area is almost uniform"
    assert len(np.unique(viewer.astype(np.uint8))) > 50

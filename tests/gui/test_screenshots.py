"""scripts/screenshots.py: every workflow's screenshot is written, is a real picture (not a
blank or uniform one) and has the window's (or its dialog's) size.

MEDVIEW_SCREENSHOTS_OUT=FOLDER keeps them (e.g. as CI artifacts); else they go to tmp.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import numpy as np
from PySide6.QtGui import QImage
from realparts import REPO


def _script():
    spec = importlib.util.spec_from_file_location("medview_screenshots",
                                                  REPO / "scripts" / "screenshots.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _pixels(path: Path) -> np.ndarray:
    img = QImage(str(path)).convertToFormat(QImage.Format.Format_RGB888)
    arr = np.frombuffer(img.constBits(), np.uint8).reshape(img.height(), img.bytesPerLine())
    return arr[:, : img.width() * 3].reshape(img.height(), img.width(), 3)


def test_every_workflow_has_a_real_screenshot(app, tmp_path, data_dir):
    shots = _script()
    out = Path(os.environ.get("MEDVIEW_SCREENSHOTS_OUT") or tmp_path / "shots")
    written = shots.run(out)
    expected = set(shots.WINDOW_SHOTS) | {
        "export-label-map", "export-series", "export-fused", "export-measurements",
        "export-view", "unsaved-question", "help-keys"}
    assert set(written) == expected
    for name, path in written.items():
        assert path.is_file() and path.stat().st_size > 3000, name
        img = QImage(str(path))
        pixels = _pixels(path)
        if name in shots.WINDOW_SHOTS:
            assert (img.width(), img.height()) == shots.WINDOW_SIZE, name
        else:
            assert img.width() >= 300 and img.height() >= 90, (name, img.size())
        # not uniform: many distinct colours and real contrast
        assert pixels.std() > 10, name
        assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 20, name
    # the views show the images: the middle of the demo's view is not black
    demo = _pixels(written["demo"])
    h, w = demo.shape[:2]
    assert demo[h // 3: 2 * h // 3, w // 2: 3 * w // 4].mean() > 40

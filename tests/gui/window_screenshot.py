"""Open the workstation on the demo study and save ``window.grab()`` as a PNG.

Usage: ``python window_screenshot.py OUT.png CATALOG.sqlite [FOLDER [PRESET_KEY]]`` (run
under Xvfb with QT_QPA_PLATFORM=xcb by test_screenshot.py); FOLDER defaults to the demo.
MEDVIEW_SHOT_LAYOUT=2x2 shows the three planes. Exit 0 when the picture was saved, 1 when
the series failed to open, 2 on timeout.
"""

from __future__ import annotations

import os
import sys

from PySide6.QtCore import QTimer

from medview.gui.app import create_app
from medview.gui.main_window import MainWindow
from medview.resources import demo_study

TIMEOUT_MS = 60_000


def main(out: str, catalog: str, folder: str | None = None, preset: int | None = None) -> int:
    app = create_app()
    window = MainWindow(catalog_path=catalog)
    window.resize(1280, 860)
    window.show()
    outcome = {"code": 2}

    def save(volume) -> None:
        # move to a slice away from the middle, as a reader would, then let it paint
        window.state.set_slice(volume.shape[0] // 2 - 3)
        if preset is not None:
            window.apply_preset(preset)
        if os.environ.get("MEDVIEW_SHOT_LAYOUT") == "2x2":
            window.view_grid.set_layout("2x2")
        QTimer.singleShot(500, grab)

    def grab() -> None:
        ok = window.grab().save(out, "PNG")
        outcome["code"] = 0 if ok else 1
        app.quit()

    def failed(error) -> None:
        print(f"opening the demo failed: {error.message}\n{error.traceback}", file=sys.stderr)
        outcome["code"] = 1
        app.quit()

    window.series_opened.connect(save)
    window.series_failed.connect(failed)
    window.import_failed.connect(failed)
    window.import_folder(folder or demo_study(), open_first=True)
    QTimer.singleShot(TIMEOUT_MS, app.quit)
    app.exec()
    window.close()
    return outcome["code"]


if __name__ == "__main__":
    args = sys.argv[1:]
    sys.exit(main(args[0], args[1], args[2] if len(args) > 2 else None,
                  int(args[3]) if len(args) > 3 else None))

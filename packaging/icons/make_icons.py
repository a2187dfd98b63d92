"""Render packaging/icons/medview.svg to the PNG, ICO and ICNS files the installers use.

Run from the repository root with a Python that has PySide6 and Pillow (the dev .venv):
``python packaging/icons/make_icons.py``. The outputs are committed; run again after
editing the SVG.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SIZES = (16, 32, 48, 64, 128, 256, 512, 1024)


def main() -> int:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PIL import Image
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QGuiApplication, QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    app = QGuiApplication.instance() or QGuiApplication(sys.argv[:1])  # noqa: F841
    renderer = QSvgRenderer(str(HERE / "medview.svg"))
    if not renderer.isValid():
        raise SystemExit("medview.svg is not a valid SVG")
    pictures = {}
    for size in SIZES:
        image = QImage(size, size, QImage.Format.Format_ARGB32)
        image.fill(Qt.GlobalColor.transparent)
        painter = QPainter(image)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        renderer.render(painter)
        painter.end()
        path = HERE / f"medview-{size}.png"
        image.save(str(path), "PNG")
        pictures[size] = Image.open(path)
    keep = {48, 128, 256}  # the hicolor sizes the .deb installs
    pictures[256].save(HERE / "medview.ico", sizes=[(s, s) for s in (16, 32, 48, 64, 128, 256)])
    pictures[1024].save(HERE / "medview.icns")
    for size in SIZES:
        if size not in keep:
            (HERE / f"medview-{size}.png").unlink()
    print("wrote", ", ".join(sorted(p.name for p in HERE.glob("medview*") if p.suffix != ".svg")))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`import medview` stays light: no Qt, no SimpleITK, no pydicom until they are used."""

from __future__ import annotations

import subprocess
import sys


def test_import_medview_loads_no_heavy_library():
    code = (
        "import sys, medview, medview.core.volume, medview.dicom;"
        "heavy = {'PySide6', 'pyqtgraph', 'SimpleITK', 'pydicom', 'cv2', 'sklearn', 'skimage'};"
        "print(sorted(heavy & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[]"


def test_cli_help_does_not_import_qt():
    code = (
        "import sys; from medview.cli import build_parser; build_parser();"
        "print('PySide6' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "False"

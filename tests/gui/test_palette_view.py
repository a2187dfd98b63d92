"""A PALETTE COLOR image (pydicom's OT-PAL-8-face.dcm) is shown in its palette's colours.

Before the fix it did not load at all ("out: expected shape …"). The viewer is grabbed and the
screen pixel over image pixels of a few distinct palette colours must be those colours.
"""

from __future__ import annotations

import numpy as np
import pydicom
from pydicom.pixels import apply_color_lut
from PySide6.QtGui import QImage
from realparts import require
from viewer_helpers import make_viewer

import medview


def _rgb(image: QImage) -> np.ndarray:
    image = image.convertToFormat(QImage.Format.Format_RGB888)
    w, h = image.width(), image.height()
    buf = np.frombuffer(image.constBits(), np.uint8, count=image.sizeInBytes())
    return buf.reshape(h, image.bytesPerLine())[:, : w * 3].reshape(h, w, 3).copy()


def test_palette_image_shows_its_colours(app, qtbot):
    from pydicom.data import get_testdata_file

    path = get_testdata_file("OT-PAL-8-face.dcm", download=False)
    require(path is not None, "pydicom-data (OT-PAL-8-face.dcm)")
    vol = medview.load(path)
    ds = pydicom.dcmread(path, force=True)
    ds.file_meta.TransferSyntaxUID = pydicom.uid.ImplicitVRLittleEndian
    expected = (apply_color_lut(ds.pixel_array, ds) >> 8).astype(np.uint8)  # 16-bit entries
    viewer = make_viewer(qtbot, vol, size=(800, 640))
    screen = _rgb(viewer.viewport().grab().toImage())
    ratio = viewer.viewport().devicePixelRatioF()
    # at each sampled image pixel, the screen shows a colour within the range of its 3×3
    # neighbourhood (scaling may blend neighbours, nothing else may change the colours)
    rows, cols = expected.shape[:2]
    ok = total = 0
    coloured = 0
    for y in range(20, rows - 20, 37):
        for x in range(20, cols - 20, 41):
            near = expected[y - 1:y + 2, x - 1:x + 2].reshape(-1, 3).astype(int)
            pos = viewer.viewport_pos_of_pixel(x, y)
            got = screen[int(pos.y() * ratio), int(pos.x() * ratio)].astype(int)
            total += 1
            ok += bool(((got >= near.min(0) - 2) & (got <= near.max(0) + 2)).all())
            coloured += int(got.max() - got.min() > 20)
    assert total >= 100
    assert ok >= 0.95 * total, (ok, total)
    assert coloured >= 0.2 * total  # the palette's colours, not a grey rendering

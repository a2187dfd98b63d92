"""The failed-files panel shows a file name that is not UTF-8 with U+FFFD, not without bytes.

Payload: the demo study's first slice cut inside its header, saved under a name holding the
bytes 0xFF 0xFE, imported into a real catalog; the panel lists the catalog's errors.
"""

from __future__ import annotations

import os

from medview.dicom.catalog.db import Catalog
from medview.gui.failed_files import FailedFilesPanel


def test_non_utf8_name_is_shown_with_replacement_characters(qtbot, demo_dir, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    good = sorted(demo_dir.glob("*.dcm"))[0]
    name = os.fsencode(folder) + b"/broken\xff\xfe.dcm"
    with open(name, "wb") as f:
        f.write(good.read_bytes()[:600])  # cut inside the header: the file fails
    with Catalog(tmp_path / "c.sqlite") as cat:
        cat.index([folder])
        errors = cat.errors()
    assert [os.fsencode(p) for p, _ in errors] == [name]
    panel = FailedFilesPanel()
    qtbot.addWidget(panel)
    panel.set_errors(errors)
    item = panel.tree.topLevelItem(0)
    assert item.text(0) == "broken\ufffd\ufffd.dcm"  # Qt alone would show "broken.dcm"
    assert item.text(2) == str(folder)
    assert panel.errors() == errors  # the exact path (its bytes) stays behind the list

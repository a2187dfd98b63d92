"""The PACS dock's screenshot for scripts/screenshots.py: a real Orthanc (the tests' helper,
tests/pacs/orthanc_proc.py) holding the KiTS CT and the decubitus MR, queried from the dock
beside an open CT, its Patient → Study → Series tree showing counts and what is local."""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def shot_pacs(s) -> Path:
    """``s`` is a ``Shots`` of scripts/screenshots.py; Orthanc runs only for this shot."""
    import tempfile

    for folder in (REPO / "tests", REPO / "tests" / "pacs"):
        if str(folder) not in sys.path:
            sys.path.insert(0, str(folder))
    from orthanc_proc import MOVE_PORT, orthanc_with_test_series
    from PySide6.QtCore import Qt
    from realparts import DATA

    from medview.gui.pacs_tree import KEY_ROLE
    from medview.pacs.nodes import DimseNode, add_node

    with tempfile.TemporaryDirectory(prefix="medview-shot-orthanc-") as tmp, \
            orthanc_with_test_series(Path(tmp)) as orthanc:
        w = s.window(DATA / "kits_dupe_positions")
        w.apply_preset(6)  # abdomen
        add_node(DimseNode("orthanc", orthanc.aet, "127.0.0.1", orthanc.dicom_port,
                           "MEDVIEW", MOVE_PORT, timeout_s=10))
        panel = w.pacs_panel
        panel.refresh_nodes()
        w.pacs_dock.raise_()
        w.resizeDocks([w.pacs_dock], [470], Qt.Orientation.Horizontal)  # room for the tree
        s.wait(panel.searched, panel.search)
        mr = next(i for i in panel.tree.items()
                  if i.data(0, KEY_ROLE)[0] == "series" and i.text(2) == "MR")
        panel.tree.setCurrentItem(mr)
        return s.save("pacs", w)


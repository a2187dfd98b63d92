"""A DICOM SEG from the browser opens as the label map of the series it references (names and
colours from the SEG); Open Label Map reads the .segments.json that Export writes."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtGui import QImage
from realparts import DATA, require

from medview.app import library
from medview.core.labelmap import LabelMap, Segment
from medview.gui.main_window import MainWindow

#: pyqtgraph 0.14 draws a label ImageItem whose rect was set before it held an image ~231×
#: too big (issue 12, "The picture is tested"): the label colour is then nowhere on screen.
#: The fix lives in slice_viewer.py (branch ``pixels``); remove this marker when it is in.
SEGS = DATA / "dcmqi_seg" / "data" / "segmentations"
CT = SEGS / "ct-3slice"


@pytest.fixture
def window(app, qtbot, tmp_path):
    require(CT.is_dir(), f"dcmqi's liver CT and SEGs at {SEGS}")
    w = MainWindow(catalog_path=tmp_path / "catalog.sqlite")
    qtbot.addWidget(w)
    w.resize(1000, 760)
    w.show()
    qtbot.waitExposed(w)
    return w


def _import(window, qtbot, *paths):
    with qtbot.waitSignal(window.import_finished, timeout=60_000):
        window.import_folder([str(p) for p in paths])


def _series(window, modality, description=None):
    return next(s.series_uid for p in library.list_patients(window.catalog)
                for st in p.studies for s in st.series
                if s.modality == modality and (description is None
                                               or s.description == description))


def _pixels(widget) -> np.ndarray:
    img = widget.grab().toImage().convertToFormat(QImage.Format.Format_RGB888)
    arr = np.frombuffer(img.constBits(), np.uint8).reshape(img.height(), img.bytesPerLine())
    return arr[:, : img.width() * 3].reshape(img.height(), img.width(), 3).astype(int)


def _segment_colour_shown(window, colour) -> int:
    """Pixels of the active view that the label overlay tints towards ``colour``: the view
    grabbed with the overlay and without (opacity 0) differ there, in the colour's direction."""
    window.view_grid.repaint()
    shown = _pixels(window.viewer)
    opacity = window.state.label_opacity
    window.state.set_label_opacity(0.0)
    window.view_grid.repaint()
    plain = _pixels(window.viewer)
    window.state.set_label_opacity(opacity)
    diff = shown - plain
    changed = np.abs(diff).sum(axis=2) > 30
    target = np.asarray(colour, float) - plain  # where blending towards the colour goes
    along = (diff * target).sum(axis=2) > 0
    return int((changed & along).sum())


def test_a_seg_opens_as_the_label_map_of_its_ct_with_its_names_and_colours(window, qtbot):
    _import(window, qtbot, CT, SEGS / "liver.dcm")
    seg_uid, ct_uid = _series(window, "SEG"), _series(window, "CT")
    with qtbot.waitSignal(window.seg_opened, timeout=60_000) as blocker:
        assert window.open_series_asking(seg_uid) is None  # the browser's double-click
    labels = blocker.args[0]
    assert window.state.volume.metadata["SeriesInstanceUID"] == ct_uid  # the CT, not grey SEG
    assert window.state.labels is labels
    (segment,) = labels.segments
    assert segment.name.lower() == "liver"
    assert segment.color != (0, 0, 0)
    # the same voxels dcmqi's own conversion of the SEG holds
    import medview.formats.volume_io as vio

    ref = vio.read_volume(SEGS / "liver_seg.nrrd")
    assert int((labels.array > 0).sum()) == int((ref.array > 0).sum()) > 0
    assert not window.unsaved.work  # read from a file: nothing to save


def test_an_opened_seg_is_on_screen_in_its_colour(window, qtbot):
    _import(window, qtbot, CT, SEGS / "liver.dcm")
    with qtbot.waitSignal(window.seg_opened, timeout=60_000) as blocker:
        window.open_series_asking(_series(window, "SEG"))
    labels = blocker.args[0]
    z = int(np.argmax((labels.array > 0).sum(axis=(1, 2))))
    window.state.set_slice(z)
    assert _segment_colour_shown(window, labels.segments[0].color) > 200


def test_an_overlapping_seg_opens_on_the_ct_already_shown(window, qtbot):
    _import(window, qtbot, CT, SEGS / "partial_overlaps.dcm")
    ct_uid = _series(window, "CT")
    with qtbot.waitSignal(window.series_opened, timeout=60_000):
        window.open_series(ct_uid)
    volume = window.state.volume
    with qtbot.waitSignal(window.seg_opened, timeout=60_000) as blocker:
        window.open_series_asking(_series(window, "SEG"))
    labels = blocker.args[0]
    assert window.state.volume is volume  # kept, not reloaded
    assert len(labels.segments) == 5
    assert len({s.color for s in labels.segments}) == 5
    present = set(np.unique(labels.array)) - {0}
    assert present and present <= {s.number for s in labels.segments}
    assert "overlap" in window.statusBar().currentMessage()


def test_a_seg_whose_series_is_missing_says_so(window, qtbot):
    _import(window, qtbot, SEGS / "liver.dcm")  # without its CT
    window.open_series_asking(_series(window, "SEG"))
    assert window.state.volume is None  # no grey SEG either
    text = window.error_box.text()
    assert "not in the catalog" in text and "Import the folder" in text
    assert "1.2.392.200103.20080913.113635.1.2009.6.22.21.43.10.23430.1" in text


def test_open_label_map_reads_the_segments_json_that_export_writes(window, qtbot, tmp_path):
    _import(window, qtbot, CT)
    with qtbot.waitSignal(window.series_opened, timeout=60_000):
        window.open_series(_series(window, "CT"))
    vol = window.state.volume
    arr = np.zeros(vol.shape, np.uint8)
    arr[1, 200:300, 150:250] = 7
    colour = (20, 220, 60)
    window.state.set_labels(LabelMap.like(vol, arr, (Segment(7, "Tumour", colour),)))
    item = next(i for i in window.exportables() if i.name == "Label map")
    with qtbot.waitSignal(window.exported, timeout=60_000) as blocker:
        window.export(item, "nifti", tmp_path / "tumour.nii.gz")
    assert (tmp_path / "tumour.segments.json") in blocker.args[0]
    window.state.set_labels(None)
    assert window.open_label_map(tmp_path / "tumour.nii.gz")
    (segment,) = window.state.labels.segments
    assert (segment.number, segment.name, segment.color) == (7, "Tumour", colour)
    # a damaged segments file is a message naming it, not default segments in silence
    (tmp_path / "tumour.segments.json").write_text("{not json")
    assert not window.open_label_map(tmp_path / "tumour.nii.gz")
    assert "tumour.segments.json" in window.error_box.text()


def test_an_opened_label_map_is_on_screen_in_its_segments_colour(window, qtbot, tmp_path):
    _import(window, qtbot, CT)
    with qtbot.waitSignal(window.series_opened, timeout=60_000):
        window.open_series(_series(window, "CT"))
    vol = window.state.volume
    arr = np.zeros(vol.shape, np.uint8)
    arr[1, 200:300, 150:250] = 7
    colour = (20, 220, 60)
    window.state.set_labels(LabelMap.like(vol, arr, (Segment(7, "Tumour", colour),)))
    window.state.set_slice(1)
    assert _segment_colour_shown(window, colour) > 200

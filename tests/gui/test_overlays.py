"""The text around the image (corner overlays, status-bar readout), without Qt."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from medview.app.state import ViewerState
from medview.core.volume import Volume
from medview.gui.overlays import (
    corner_texts,
    format_date,
    format_number,
    format_person_name,
    format_sample,
)


@pytest.fixture
def mr_state(demo_volume) -> ViewerState:
    state = ViewerState()
    state.set_volume(demo_volume)
    return state


def test_formatting_helpers():
    assert format_person_name("DOE^JOHN^Q") == "DOE, JOHN Q"
    assert format_person_name("HFS") == "HFS"
    assert format_person_name("") == ""
    assert format_date("20220407") == "2022-04-07"
    assert format_date("") == ""
    assert format_number(-600.0) == "-600"
    assert format_number(0.125) == "0.125"


def test_corner_texts_of_the_demo(mr_state):
    mr_state.set_slice(4)
    texts = corner_texts(mr_state)
    assert texts["top_left"] == "HFS\nID crlab"
    assert texts["top_right"] == "2022-04-07\n#3 t1_fl2d_sag\nMR"
    assert texts["bottom_left"].startswith("Slice 5/35\nPos ")
    assert texts["bottom_left"].endswith(" mm")
    c, w = mr_state.window
    assert texts["bottom_right"] == (
        f"W {format_number(w)}  L {format_number(c)}\nZoom 1.00×")
    assert corner_texts(ViewerState()) == dict.fromkeys(texts, "")


def test_format_sample_of_ct(ct_volume):
    state = ViewerState()
    state.set_volume(ct_volume)
    value = int(ct_volume.array[state.slice_index, 256, 256])
    text = format_sample(state.sample(256, 256))
    assert f"value {value} HU" in text
    assert text.startswith(f"x 256  y 256  z {state.slice_index}")
    assert "LPS (" in text
    assert format_sample(None) == ""


def test_rgb_volume_is_shown_unwindowed():
    rgb = Volume(np.zeros((2, 4, 5, 3), np.uint8), metadata={"Modality": "OT"})
    state = ViewerState()
    state.set_volume(rgb)
    assert state.window == (127.5, 255.0)
    state.auto_window()  # no-op on colour
    assert state.window == (127.5, 255.0)
    assert state.sample(1, 1).value == (0, 0, 0)
    assert "W " not in corner_texts(state)["bottom_right"]


def test_overlays_import_no_qt():
    code = (
        "import sys\n"
        "import medview.gui.overlays\n"
        "bad = [m for m in sys.modules if m.startswith(('PySide6', 'pyqtgraph'))]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)

"""The viewer state while a volume loads: the loaded mask, data_changed, window refinement.
Plain Python, no Qt."""

from __future__ import annotations

import numpy as np
import pytest

from medview.app.state import ViewerState
from medview.core.volume import Volume
from medview.gui.overlays import corner_texts, loading_text


def mr(n=6):
    array = np.arange(n * 8 * 8, dtype=np.int16).reshape(n, 8, 8)
    return Volume(array, metadata={"Modality": "MR"})


def test_the_mask_counts_the_slices_that_arrived_and_events_follow():
    state, seen = ViewerState(), []
    state.data_changed.connect(lambda: seen.append(state.n_loaded))
    vol = mr()
    state.set_volume(vol, window=(10.0, 20.0))
    assert state.loaded_mask is None and state.n_loaded == 6 and not state.is_loading
    loaded = np.zeros(6, dtype=bool)
    loaded[3] = True
    state.set_loading(loaded)
    assert state.is_loading and state.n_loaded == 1 and seen == [1]
    assert state.is_slice_loaded(3) and not state.is_slice_loaded(0)
    assert loading_text(state) == "Loading 1/6"
    assert corner_texts(state)["bottom_left"].endswith("Loading 1/6")
    loaded[:3] = True  # the loader writes into the same array
    state.notify_data_changed()
    assert seen == [1, 4]
    state.stop_loading()  # cancelled: what arrived stays, the text says so
    assert not state.is_loading and state.n_loaded == 4 and seen == [1, 4, 4]
    assert loading_text(state) == "Incomplete 4/6"
    state.set_volume(mr())  # another volume: the mask belonged to the old one
    assert state.loaded_mask is None and state.n_loaded == 6 and loading_text(state) == ""
    with pytest.raises(ValueError, match="one flag per slice"):
        state.set_loading(np.zeros(5, dtype=bool))
    state.set_loading(np.ones(6, dtype=bool))
    state.set_loading(None)
    assert state.loaded_mask is None and seen[-1] == 6


@pytest.mark.parametrize("touched", [False, True])
def test_refined_windows_replace_the_first_ones_unless_the_user_changed_the_window(touched):
    state = ViewerState()
    state.set_volume(mr(), window=(10.0, 20.0))
    if touched:
        state.set_window(30.0, 5.0)
    state.refine_windows((100.0, 200.0), (90.0, 150.0))
    assert state.window == ((30.0, 5.0) if touched else (100.0, 200.0))
    state.reset()
    assert state.window == (100.0, 200.0)
    state.auto_window()
    assert state.window == (90.0, 150.0)

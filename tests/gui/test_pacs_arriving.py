"""A series shown while a real Orthanc sends it, and a PACS killed mid-retrieve (issue 14).

1. Opening during a retrieve: the transfer is held after five instances (the retrieve's own
   callback waits), and the window must already show the whole series' grid with those five
   slices in, each at its position — what the screen shows of the slice is the stored slice's
   pixels — and the rest flat; when everything is in, the volume equals a plain local load.
2. Orthanc SIGKILLed during a C-GET, a C-MOVE and a WADO-RS retrieve: the dock keeps what
   arrived in the catalog, says how many are missing, and Resume (Orthanc started again on the
   same storage) transfers only the rest.
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from realparts import DATA
from viewer_helpers import expected_layer, grab_rgb, under_text

import medview
import medview.pacs.retrieve as retrieve_module
from medview.gui.pacs_tree import KEY_ROLE
from medview.pacs.nodes import DimseNode, WebNode, add_node

# the Orthanc process helper of tests/pacs (the session's Orthanc fixture adds it too)
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "pacs"))

TIMEOUT_MS = 60_000
HFS = DATA / "dcm_qa_decubitus/In/HFS"


def _search(qtbot, panel, **fields):
    for key, value in fields.items():
        panel.fields[key].setText(value)
    with qtbot.waitSignal(panel.searched, timeout=TIMEOUT_MS) as blocker:
        panel.search_button.click()
    return blocker.args[0]


def _series_item(panel, modality: str):
    return next(i for i in panel.tree.items()
                if i.data(0, KEY_ROLE)[0] == "series" and i.text(2) == modality)


def _wrap_retrieve(monkeypatch, on_instance_after=None, on_listed_after=None):
    """Let the dock's retrieve run for real, with a hook after each arrival / the listing
    (in the network, writer or listing thread); counts the arrivals of each call."""
    real = retrieve_module.retrieve
    calls: list[list] = []

    def wrapped(*args, on_instance=None, on_listed=None, **kwargs):
        arrived: list = []
        calls.append(arrived)

        def instance(path, uids):
            on_instance(path, uids)
            arrived.append(path)
            if on_instance_after is not None:
                on_instance_after(len(arrived), path)

        def listed(table):
            on_listed(table)
            if on_listed_after is not None:
                on_listed_after(table)

        return real(*args, on_instance=instance, on_listed=listed, **kwargs)

    monkeypatch.setattr(retrieve_module, "retrieve", wrapped)
    return calls


def _shown_grey(viewer, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """What each widget pixel must show of ``image`` windowed as the view windows it, and
    which pixels can be judged (inside the slice, away from voxel edges and texts)."""
    lo, hi = viewer.state.window_levels
    grey = np.clip((image.astype(float) - lo) / (hi - lo), 0, 1) * 255
    layer = np.concatenate([np.repeat(np.rint(grey)[..., None], 3, -1),
                            np.ones((*grey.shape, 1))], axis=-1)
    rgba, sure = expected_layer(viewer, layer)
    return rgba[..., :3], sure & ~under_text(viewer)


def test_a_series_fills_in_as_it_arrives_each_slice_at_its_position(
        qtbot, window, pacs_orthanc, no_keyring, monkeypatch):
    from orthanc_proc import MOVE_PORT

    add_node(DimseNode("orthanc", pacs_orthanc.aet, "127.0.0.1", pacs_orthanc.dicom_port,
                       "MEDVIEW", MOVE_PORT, timeout_s=30))
    panel = window.pacs_panel
    panel.refresh_nodes()
    window.pacs_dock.raise_()
    gate = threading.Event()
    listed = threading.Event()

    def hold_after_five(n, path):
        if n == 5:
            assert listed.wait(30)
            assert gate.wait(60), "the test did not let the transfer go on"

    _wrap_retrieve(monkeypatch, hold_after_five, lambda table: listed.set())
    _search(qtbot, panel, patient_id="crlab")
    mr = _series_item(panel, "MR")
    series_uid = mr.data(0, KEY_ROLE)[2]
    panel.tree.setCurrentItem(mr)
    local = medview.load(HFS)
    state = window.state
    try:
        with qtbot.waitSignal(window.first_image_shown, timeout=TIMEOUT_MS):
            panel.retrieve_button.click()
        # the whole series' grid as soon as the PACS listed it (before, if the first files
        # beat the list, what was in the catalog): 35 slices where the local load has them
        qtbot.waitUntil(lambda: window.pacs_reader is not None
                        and state.volume is window.pacs_reader.series.volume,
                        timeout=TIMEOUT_MS)
        shown = state.volume
        assert shown.metadata["SeriesInstanceUID"] == series_uid
        assert shown.shape == local.shape and shown.same_grid(local)
        assert panel.retrieve_task is not None  # still arriving
        qtbot.waitUntil(lambda: state.n_loaded == 5, timeout=TIMEOUT_MS)
        loaded = np.flatnonzero(state.loaded_mask)
        assert state.is_loading and len(loaded) == 5
        for k in loaded:  # each arrived slice holds the stored slice of its position
            assert np.array_equal(state.volume.array[k], local.array[k]), k
        assert not state.volume.array[~state.loaded_mask].any()  # the rest: flat
        # the screen shows the stored slice at the shown position, in the acquired plane
        viewer = window.viewer
        assert viewer.plane == state.native_plane == "sagittal"
        k = state.plane_slice(state.native_plane)
        assert k in loaded
        qtbot.waitUntil(lambda: viewer.displayed_image() is not None
                        and np.array_equal(viewer.displayed_image(), local.array[k]),
                        timeout=TIMEOUT_MS)
        rgb = grab_rgb(viewer).astype(int)
        want, sure = _shown_grey(viewer, local.array[k])
        assert sure.sum() > 2000
        assert np.abs(rgb - want).max(axis=-1)[sure].max() <= 3
        assert rgb[sure].std() > 10  # an image, not a flat view
    finally:
        gate.set()
    with qtbot.waitSignal(panel.retrieve_finished, timeout=TIMEOUT_MS) as blocker:
        pass
    assert blocker.args[0].complete
    # all in: the catalog's load swapped in on the same grid, equal to a plain local load
    qtbot.waitUntil(lambda: window._load_task is None and not state.is_loading
                    and state.volume.metadata.get("source_files") is not None,
                    timeout=TIMEOUT_MS)
    final = state.volume
    assert final.same_grid(local) and np.array_equal(final.array, local.array)
    assert len(final.metadata["source_files"]) == 35
    k = state.plane_slice(state.native_plane)
    assert np.array_equal(window.viewer.displayed_image(), local.array[k])


@pytest.fixture(scope="module")
def big_series(tmp_path_factory):
    """A 128-slice 512² phantom CT (64 MiB): more than loopback's socket buffers hold, so a
    PACS killed mid-transfer cannot have sent it all."""
    from phantoms import write_ct_series

    folder = tmp_path_factory.mktemp("big") / "ct"
    return write_ct_series(folder, shape=(128, 512, 512), patient_id="BIG")


@pytest.mark.parametrize("method", ["get", "move", "wado"])
def test_a_pacs_killed_mid_retrieve_keeps_what_came_and_resume_brings_only_the_rest(
        qtbot, window, no_keyring, monkeypatch, tmp_path, big_series, method):
    from orthanc_proc import MOVE_PORT, PASSWORD, USER, Orthanc

    server = Orthanc(tmp_path / "orthanc", {"MEDVIEW": ("127.0.0.1", MOVE_PORT)}).start()
    try:
        server.upload(big_series)
        if method == "wado":
            add_node(WebNode("dying", server.dicomweb, "basic", USER, timeout_s=10), PASSWORD)
        else:
            add_node(DimseNode("dying", server.aet, "127.0.0.1", server.dicom_port, "MEDVIEW",
                               MOVE_PORT, retrieve=method, timeout_s=10))
        panel = window.pacs_panel
        panel.refresh_nodes()
        listed = threading.Event()
        killed = []

        def kill_after_ten(n, path):
            # the tenth instance of the first retrieve waits for the instance list (so what
            # is missing is known), then the PACS dies: SIGKILL, mid-transfer
            if n == 10 and not killed:
                killed.append(path)
                assert listed.wait(30)
                server.kill()

        calls = _wrap_retrieve(monkeypatch, kill_after_ten, lambda table: listed.set())
        _search(qtbot, panel, patient_id="BIG")
        ct = _series_item(panel, "CT")
        series_uid = ct.data(0, KEY_ROLE)[2]
        panel.tree.setCurrentItem(ct)
        with qtbot.waitSignal(panel.retrieve_finished, timeout=TIMEOUT_MS) as blocker:
            panel.retrieve_button.click()
        report = blocker.args[0]
        kept = len(report.received)
        assert not report.complete and 10 <= kept < 128
        assert len(calls[0]) == kept
        # the dock keeps what came (in the catalog) and says what is missing
        assert len(window.catalog.instances(series_uid)) == kept
        text = panel.message.text()
        assert text.startswith(f"Incomplete: {128 - kept} of 128 instance(s) missing")
        assert "Resume fetches only those" in text
        assert ct.text(4) == f"{kept} of 128"
        qtbot.waitUntil(lambda: panel.retrieve_task is None, timeout=TIMEOUT_MS)
        assert panel.resume_button.isEnabled()
        store = {p for p in report.paths}
        server.start()  # the same storage and ports
        with qtbot.waitSignal(panel.retrieve_finished, timeout=TIMEOUT_MS) as blocker:
            panel.resume_button.click()
        resumed = blocker.args[0]
        assert resumed.complete and resumed.already_local == kept
        # only the rest crossed the network: counted as it arrived, and as new files
        assert len(calls[1]) == 128 - kept == len(resumed.received)
        assert not store & set(resumed.received)
        assert len(window.catalog.instances(series_uid)) == 128
        assert ct.text(4) == "✓ in catalog" and not panel.resume_button.isEnabled()
        assert panel.message.text().startswith("Retrieved: ")
    finally:
        server.stop()

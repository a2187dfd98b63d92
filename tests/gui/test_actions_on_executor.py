"""The Segmentation dock's Train & Segment and the Fusion dock's rigid registration run as
registered steps on the executor of the one "Run on" choice (issue 16): on a real
`medview serve` over TLS with a token, started here, they give the local result; a cancelled
run leaves the previous result as it was; the window's three "Run on" boxes show one choice.
"""

from __future__ import annotations

import contextlib

import numpy as np
import pytest
from offload_procs import pool_site
from step_checks import crop
from viewer_helpers import assert_layer_drawn, dock_session, grab_rgb, make_viewer

from medview.core.progress import NO_PROGRESS
from medview.pipeline.executors import LOCAL, run_step_on
from medview.remote.executor import PREFIX

pytestmark = [pytest.mark.e2e]

#: Rigid registration run on the server against the same run here (same inputs and seed):
#: translation within 0.05 mm and rotation within 0.01° (SimpleITK's threads may sum the
#: metric in another order), resampled voxels within 1 HU where both are inside the series.
TRANSLATION_TOL_MM = 0.05
ROTATION_TOL_DEG = 0.01
VOXEL_TOL = 1.0


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    with pool_site(tmp_path_factory.mktemp("actions_offload")) as server:
        yield server


@pytest.fixture
def endpoint(site):
    """The server as configured endpoint "site", registered as executor "Remote: site"."""
    from medview.remote.config import add_endpoint
    from medview.remote.executor import sync_endpoint_executors

    add_endpoint("site", site["url"], site["token"], ca_bundle=str(site["cert"]))
    sync_endpoint_executors()
    yield PREFIX + "site"
    from medview.remote.config import remove_endpoint

    with contextlib.suppress(KeyError):  # a test may have removed it
        remove_endpoint("site")
    sync_endpoint_executors()


def _crop(volume, z0: int, z1: int, yx: slice):
    """A crop of ``volume`` whose made-up slice marks are re-indexed to it (the KiTS series
    is resampled onto a uniform grid at load; most of its slices are interpolated)."""
    from medview.core.made_up import made_up_slices

    part = crop(volume, slice(z0, z1), yx, yx)
    marks = tuple((z - z0, why) for z, why in made_up_slices(volume.metadata) if z0 <= z < z1)
    return part.with_array(part.array, made_up_slices=marks)


@pytest.fixture
def ct_crop(ct_volume):
    """12 slices of the real KiTS CT through the lungs, 256² around the body's middle; local
    slices 5 and 8 are acquired ones (z 107, 110), the others are interpolated at load."""
    return _crop(ct_volume, 102, 114, slice(128, 384))


def _scribble(state, volume, slices) -> None:
    """Short strokes inside air (1) and soft tissue (2) on ``slices``, through the brush."""
    from scipy import ndimage

    hu = volume.array
    inner = np.zeros((1, 7, 7), bool)
    inner[0, 3, :] = inner[0, :, 3] = True
    air = ndimage.binary_erosion(hu < -500, inner, iterations=3)
    tissue = ndimage.binary_erosion((hu > -100) & (hu < 150), inner, iterations=3)
    state.set_edit_target("scribbles")
    state.new_label_map()
    for k in slices:
        state.set_slice(k)
        for mask, label in ((air, 1), (tissue, 2)):
            rows, cols = np.nonzero(mask[k])
            pick = np.linspace(0, rows.size - 1, 12).astype(int)
            state.set_paint_label(label)
            for r, c in zip(rows[pick], cols[pick], strict=True):
                state.paint("axial", (c + 0.5, r + 0.5))
    assert set(np.unique(state.scribbles.array)) == {0, 1, 2}


def _dock(qtbot, volume):
    from medview.gui.segment_panel import SegmentPanel
    from medview.gui.tasks import TaskRunner

    viewer = make_viewer(qtbot, volume, size=(512, 512))
    session = dock_session(TaskRunner())
    panel = SegmentPanel(viewer.state, session)
    qtbot.addWidget(panel)
    return viewer, panel, session


def _fusion_dock(qtbot, catalog_path, moving):
    """A Fusion dock on a session whose volume cache holds ``moving`` (opened before)."""
    from medview.app.state import ViewerState
    from medview.gui.fusion_panel import FusionPanel
    from medview.gui.tasks import TaskRunner

    state, session = ViewerState(), dock_session(TaskRunner(), catalog_path)
    uid = moving.metadata["SeriesInstanceUID"]
    assert session.cache.put(uid, (moving, None), moving.nbytes)
    panel = FusionPanel(state, session)
    qtbot.addWidget(panel)
    return state, panel, session


def _made_up(viewer, qtbot, k: int) -> bool:
    viewer.state.set_slice(k)
    qtbot.wait(50)
    return viewer.made_up.frame.isVisible()


def _label_layer(viewer, labels, segments, opacity, scribbles):
    """RGBA per displayed pixel of the axial view: the label colours; not judged where a
    scribble is drawn over them."""
    k = viewer.state.plane_slice(viewer.plane)
    g = viewer.geometry_
    assert (g.height, g.width) == labels.shape[1:]  # axial: rows y, columns x
    values = labels[k]
    layer = np.zeros((*values.shape, 4))
    for s in segments:
        layer[values == s.number] = (*s.color, opacity)
    layer[scribbles[k] > 0, 3] = np.nan
    return layer


def test_train_and_segment_on_the_server_gives_the_local_labels(app, qtbot, ct_crop, endpoint,
                                                                site, tmp_path):
    from medview.audit import read_audit

    viewer, panel, session = _dock(qtbot, ct_crop)
    state = viewer.state
    _scribble(state, ct_crop, (3, 8))
    snapshot = state.scribbles
    # the local run, through the same registered step and executor interface, same seed
    local = run_step_on(LOCAL, "segment.classifier_train_predict",
                        {"volume": ct_crop, "scribbles": snapshot},
                        {"classifier": "random_forest", "seed": 0}, progress=NO_PROGRESS)

    assert panel.executor_combo.findText(endpoint) >= 0
    panel.executor_combo.setCurrentText(endpoint)
    assert panel.run_on.name == endpoint
    # an acquired slice: no made-up frame drawn over the labels
    assert not _made_up(viewer, qtbot, 5)
    before = grab_rgb(viewer)
    progress = []
    with qtbot.waitSignal(panel.trained, timeout=180_000) as blocker:
        task = panel.train()
        task.signals.progress.connect(lambda f, m: progress.append((f, m)))
    assert endpoint in task.title
    labels = state.labels
    assert np.array_equal(labels.array, local["labels"].array)
    assert set(np.unique(labels.array)) == {1, 2}
    model = blocker.args[0]
    assert model is panel.model and model.training_samples == local["model"].training_samples
    assert progress and any("site" in m for _, m in progress)
    # re-attached to the open series, not the de-identified stand-in
    assert labels.metadata.get("SeriesInstanceUID") == ct_crop.metadata["SeriesInstanceUID"]
    # it was disclosed: one audit line per input (image and scribbles), with the server's job
    lines = [line for line in read_audit() if line.action == "offload"]
    assert lines and {line.destination for line in lines} == {f"site {site['url']}"}
    assert all(line.detail["job"] for line in lines)
    assert ct_crop.metadata["SeriesInstanceUID"] in {line.series_uid for line in lines}

    # what the reader sees: the label colours on the voxels that carry them
    qtbot.wait(50)
    after = grab_rgb(viewer)
    layer = _label_layer(viewer, labels.array, labels.segments, state.label_opacity,
                         snapshot.array)
    problems = assert_layer_drawn(before, after, viewer, layer, what="labels", min_pixels=200)
    assert not problems, "\n".join(problems)

    # the saved model applied on the server labels the series the same (the file travels
    # with its checksum)
    path = panel.save_model(tmp_path / "clf.mvclf")
    expected = labels.array.copy()
    state.set_labels(None)
    with qtbot.waitSignal(panel.trained, timeout=180_000):
        task = panel.apply_model(path)
    assert endpoint in task.title
    assert np.array_equal(state.labels.array, expected)
    assert session.close(timeout=30)


def test_cancelled_training_on_the_server_keeps_the_previous_labels(app, qtbot, ct_volume,
                                                                    endpoint):
    from medview.core.labelmap import LabelMap
    from medview.remote.client import RemoteClient

    volume = _crop(ct_volume, 100, 160, slice(64, 448))  # big enough to be caught running
    viewer, panel, session = _dock(qtbot, volume)
    state = viewer.state
    painted = np.zeros(volume.shape, np.uint8)
    painted[20:30, 100:200, 100:200] = 1
    state.set_labels(LabelMap.like(volume, painted))  # the previous segmentation
    _scribble(state, volume, (10, 40))
    previous, previous_model = state.labels, panel.model
    kept = previous.array.copy()
    panel.executor_combo.setCurrentText(endpoint)
    with RemoteClient.for_endpoint("site") as client:
        seen = {job.id for job in client.jobs()}
        task = panel.train()
        qtbot.waitUntil(lambda: any(j.state == "running" for j in client.jobs()
                                    if j.id not in seen), timeout=60_000)
        with qtbot.waitSignal(panel.cancelled, timeout=60_000):
            task.cancel()
        qtbot.waitUntil(lambda: task.is_done, timeout=10_000)
        [job] = [j for j in client.jobs() if j.id not in seen]
        # the worker stops at its next progress check (a loaded 2-core CI machine: give it
        # time). The cancel travels with the client's next poll: a registration that ends in
        # between is fetched and acknowledged ("delivered", nothing left on the server) and
        # its result thrown away; never "succeeded" (a result left behind) nor "failed"
        qtbot.waitUntil(lambda: client.status(job.id).done, timeout=120_000)
        assert client.status(job.id).state in ("cancelled", "delivered")
    assert state.labels is previous and np.array_equal(state.labels.array, kept)
    assert panel.model is previous_model
    assert "previous segmentation is kept" in panel.status.text()
    assert panel.train_button.isEnabled()
    assert session.close(timeout=30)


def test_registration_on_the_server_gives_the_local_transform(app, qtbot, ct_crop, endpoint,
                                                               tmp_path):
    from medview.app.processing import register_on
    from medview.core.volume import Volume

    # the same CT as a second series without its first 30 columns (so part of the open series
    # has no coverage), moved 4.3 mm to the left and 2.7 mm back, on its own grid
    sx = ct_crop.spacing[0]
    moving = Volume(ct_crop.array[:, :, 30:].astype(np.float32), ct_crop.spacing,
                    tuple(np.add(ct_crop.origin, (30 * sx + 4.3, -2.7, 0.0))),
                    ct_crop.direction, {**ct_crop.metadata, "SeriesInstanceUID": "2.25.4242"})
    # the series comes cached
    state, panel, session = _fusion_dock(qtbot, tmp_path / "catalog.sqlite", moving)
    state.set_volume(ct_crop)
    panel.executor_combo.setCurrentText(endpoint)
    errors = []
    panel.failed.connect(errors.append)
    with qtbot.waitSignal(panel.fused, timeout=180_000):
        panel.fuse("2.25.4242", register=True)
    assert not errors
    remote_fused, remote_t = state.fusion, panel.transform.rows[0]
    local_fused, local_table = register_on(LOCAL, ct_crop, moving, progress=NO_PROGRESS)
    local_t = local_table.rows[0]
    for axis in "xyz":
        assert abs(remote_t[f"translation_{axis}_mm"] - local_t[f"translation_{axis}_mm"]) \
            <= TRANSLATION_TOL_MM
        assert abs(remote_t[f"rotation_{axis}_deg"] - local_t[f"rotation_{axis}_deg"]) \
            <= ROTATION_TOL_DEG
    # it found the shift (fixed → moving LPS: the moving series sits 4.3 mm left, 2.7 back)
    assert abs(remote_t["translation_x_mm"] - 4.3) < 0.5
    assert abs(remote_t["translation_y_mm"] + 2.7) < 0.5
    # outside the second series is no-coverage (NaN) on both sides, at the same voxels
    outside = np.isnan(remote_fused.array)
    assert outside.any() and not outside.all()
    assert np.array_equal(outside, np.isnan(local_fused.array))
    inside = ~outside
    diff = np.abs(remote_fused.array[inside] - local_fused.array[inside])
    assert float(diff.max()) <= VOXEL_TOL, float(diff.max())
    assert session.close(timeout=30)


def test_the_window_has_one_run_on_choice(window, qtbot, endpoint):
    combos = [window.chain_panel.executor_combo, window.segment_panel.executor_combo,
              window.fusion_panel.executor_combo]
    assert {c.currentText() for c in combos} == {"Local"}
    window.segment_panel.executor_combo.setCurrentText(endpoint)
    assert window.run_on.name == endpoint
    assert [c.currentText() for c in combos] == [endpoint] * 3
    window.fusion_panel.executor_combo.setCurrentText("Local")
    assert [c.currentText() for c in combos] == ["Local"] * 3
    window.chain_panel.executor_combo.setCurrentText(endpoint)
    # the endpoint goes away: every box, and the choice, fall back to Local
    from medview.remote.config import remove_endpoint
    from medview.remote.executor import sync_endpoint_executors

    remove_endpoint("site")
    sync_endpoint_executors()
    assert window.run_on.name == "Local"
    assert [c.currentText() for c in combos] == ["Local"] * 3
    assert all(c.findText(endpoint) < 0 for c in combos)


def test_cancelled_registration_on_the_server_keeps_the_previous_fusion(app, qtbot, ct_volume,
                                                                        endpoint, tmp_path):
    from medview.core.volume import Volume
    from medview.remote.client import RemoteClient

    base = _crop(ct_volume, 100, 160, slice(64, 448))  # big enough to be caught running
    moving = Volume(base.array.astype(np.float32), base.spacing,
                    tuple(np.add(base.origin, (3.1, -1.9, 0.0))), base.direction,
                    {**base.metadata, "SeriesInstanceUID": "2.25.4343"})
    # the series comes cached
    state, panel, session = _fusion_dock(qtbot, tmp_path / "catalog.sqlite", moving)
    state.set_volume(base)
    with qtbot.waitSignal(panel.fused, timeout=180_000):
        panel.fuse("2.25.4343")  # by patient position, locally: the previous fusion
    previous = state.fusion
    kept = previous.array.copy()
    assert np.isnan(kept).any()  # the shifted series leaves a no-coverage edge
    panel.executor_combo.setCurrentText(endpoint)
    with RemoteClient.for_endpoint("site") as client:
        seen = {job.id for job in client.jobs()}
        task = panel.fuse("2.25.4343", register=True)
        qtbot.waitUntil(lambda: any(j.state == "running" for j in client.jobs()
                                    if j.id not in seen), timeout=60_000)
        task.cancel()
        qtbot.waitUntil(lambda: task.is_done, timeout=60_000)
        [job] = [j for j in client.jobs() if j.id not in seen]
        # the worker stops at its next progress check (a loaded 2-core CI machine: give it
        # time). The cancel travels with the client's next poll: a registration that ends in
        # between is fetched and acknowledged ("delivered", nothing left on the server) and
        # its result thrown away; never "succeeded" (a result left behind) nor "failed"
        qtbot.waitUntil(lambda: client.status(job.id).done, timeout=120_000)
        assert client.status(job.id).state in ("cancelled", "delivered")
    assert panel.status.text() == "Fusion cancelled."
    assert state.fusion is previous
    assert np.array_equal(state.fusion.array, kept, equal_nan=True)
    assert panel.transform is None and panel.remove_button.isEnabled()
    assert session.close(timeout=30)

"""Run on a remote endpoint from the window (issue 6's GUI part), against a real
`medview serve` over TLS on 127.0.0.1: endpoints added in the dialog appear in "Run on", the
chain runs there with progress and gives the local result; an unreachable endpoint ends in an
offer to run locally, which works."""

from __future__ import annotations

import numpy as np
import pytest
from offload_procs import pool_site
from PySide6.QtWidgets import QMessageBox
from step_checks import crop
from viewer_helpers import dock_session

from medview.app.chain_model import result_layer_names
from medview.app.state import ViewerState
from medview.core.labelmap import LabelMap
from medview.gui.chain_panel import ChainPanel
from medview.gui.endpoints_dialog import EndpointsDialog
from medview.gui.tasks import TaskRunner
from medview.pipeline.chain import Chain
from medview.pipeline.runner import run_chain
from medview.remote.executor import PREFIX

pytestmark = [pytest.mark.e2e]

CHAIN = {"name": "remote test", "steps": [
    {"step": "smooth.gaussian", "params": {"sigma_mm": 1.5}, "output": "smoothed"},
    {"step": "segment.threshold", "params": {"low": 150.0, "high": 3000.0}}]}


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    with pool_site(tmp_path_factory.mktemp("gui_offload")) as server:
        yield server


@pytest.fixture
def panel(app, qtbot, ct_volume):
    state = ViewerState()
    layers = state.layers
    tasks = TaskRunner()
    session = dock_session(tasks)
    panel = ChainPanel(state, layers, session)
    panel._keep = tasks
    qtbot.addWidget(panel)
    nz = ct_volume.shape[0]
    state.set_volume(crop(ct_volume, slice(nz // 2 - 4, nz // 2 + 4)))
    panel.model.set_chain(Chain.from_dict(CHAIN))
    yield panel
    assert session.close(timeout=30)


def _add(qtbot, dialog, name, url, token, cert):
    dialog.name.setText(name)
    dialog.url.setText(url)
    dialog.token.setText(token)
    dialog.ca_bundle.setText(str(cert))
    assert dialog.add_from_form(), dialog.message.text()
    assert dialog.token.text() == ""  # the token does not stay in the form


def test_a_chain_runs_on_the_endpoint_and_gives_the_local_result(panel, qtbot, site):
    dialog = EndpointsDialog(panel.session)
    qtbot.addWidget(dialog)
    _add(qtbot, dialog, "site", site["url"], site["token"], site["cert"])
    assert dialog.table.item(0, 1).text() == site["url"]
    with qtbot.waitSignal(dialog.checked, timeout=30_000) as checked:
        dialog.check_selected()
    assert checked.args[1] is True, checked.args[2]

    combo = panel.executor_combo
    assert combo.findText(PREFIX + "site") >= 0  # "Run on" lists it
    combo.setCurrentText(PREFIX + "site")
    progress = []
    panel.progress_bar.valueChanged.connect(progress.append)
    with qtbot.waitSignal(panel.run_finished, timeout=120_000) as blocker:
        panel.run()
    new = {layer.name: layer.value for layer in blocker.args[0]}
    local = run_chain(Chain.from_dict(CHAIN), {"image": panel.state.volume})
    outputs = local.outputs(exclude={"image"})
    layer_name = result_layer_names(Chain.from_dict(CHAIN), outputs)  # "step2" → its title
    for key, value in outputs.items():
        name = layer_name[key]
        assert np.array_equal(new[name].array, value.array), name
        assert np.allclose(new[name].origin, value.origin)
    labels = next(v for v in new.values() if isinstance(v, LabelMap))
    # re-attached to the original study: the de-identified stand-ins do not come back
    assert labels.metadata.get("SeriesInstanceUID") == panel.state.volume.metadata.get(
        "SeriesInstanceUID")
    assert progress and max(progress) >= 900  # progress came through to the end
    # it ran there: the disclosure is in the audit log, with the job the server gave
    from medview.audit import read_audit

    [line] = read_audit()
    assert (line.action, line.destination) == ("offload", f"site {site['url']}")
    assert line.detail["job"] and line.user
    assert line.series_uid == panel.state.volume.metadata["SeriesInstanceUID"]
    assert line.bytes > panel.state.volume.array.nbytes // 10

    dialog.remove_selected()
    assert combo.findText(PREFIX + "site") < 0


def test_an_unreachable_endpoint_offers_a_local_run(panel, qtbot, site):
    from medview.pipeline import executors
    from medview.remote.config import add_endpoint
    from medview.remote.executor import RemoteExecutor

    # a port nobody listens on; few retries so the test does not wait for the full backoff
    add_endpoint("down", "https://127.0.0.1:9", "x" * 20, ca_bundle=str(site["cert"]))
    executors.register_executor(RemoteExecutor("down", retries=1), replace=True)
    panel.executor_combo.setCurrentText(PREFIX + "down")
    with qtbot.waitSignal(panel.run_failed, timeout=60_000):
        panel.run()
    box = panel.fallback_box
    assert box is not None and box.isVisible()
    assert "unreachable" in panel.status.text()
    with qtbot.waitSignal(panel.run_finished, timeout=120_000) as blocker:
        box.button(QMessageBox.StandardButton.Yes).click()
    assert panel.executor_combo.currentText() == "Local"
    assert {layer.name for layer in blocker.args[0]} >= {"smoothed"}


def test_cancel_in_the_panel_cancels_the_remote_job(panel, qtbot, site):
    from medview.remote.client import RemoteClient
    from medview.remote.config import add_endpoint
    from medview.remote.executor import sync_endpoint_executors

    add_endpoint("site", site["url"], site["token"], ca_bundle=str(site["cert"]))
    sync_endpoint_executors()
    slow = {"steps": [{"step": "smooth.curvature_diffusion",
                       "params": {"iterations": 60, "in_plane_only": True}}] * 4}
    panel.model.set_chain(Chain.from_dict(slow))
    panel.executor_combo.setCurrentText(PREFIX + "site")
    with RemoteClient.for_endpoint("site") as client:
        before = {job.id for job in client.jobs()}
        task = panel.run()
        qtbot.waitUntil(lambda: any(j.state == "running" for j in client.jobs()
                                    if j.id not in before), timeout=60_000)
        with qtbot.waitSignal(panel.run_cancelled, timeout=60_000):
            panel.cancel_run()
        # "cancelled" reaches the GUI thread before the worker's final "done" (posted from its
        # finally block), so the task's end is awaited, not assumed
        qtbot.waitUntil(lambda: task.is_done, timeout=10_000)
        [job] = [j for j in client.jobs() if j.id not in before]
        qtbot.waitUntil(lambda: client.status(job.id).state == "cancelled", timeout=30_000)
    assert len(panel.layers.layers) == 1  # only the series: nothing half-done arrived

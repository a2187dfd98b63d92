"""The PACS dock against a real Orthanc: a query fills the Patient → Study → Series tree with
counts and in-catalog marks; a retrieved series lands in the catalog and is shown (opened
while it arrives); cancel keeps what arrived and Resume fetches only the rest; Send to PACS
stores the open series on Orthanc."""

from __future__ import annotations

import numpy as np
import pytest
import requests
from realparts import DATA
from viewer_helpers import grab_rgb

import medview
from medview.gui.pacs_tree import KEY_ROLE
from medview.pacs.nodes import DimseNode, add_node

TIMEOUT_MS = 30_000
HFS = DATA / "dcm_qa_decubitus/In/HFS"
CT = DATA / "kits_dupe_positions"
CT3 = DATA / "dcmqi_seg/data/segmentations/ct-3slice"


@pytest.fixture()
def panel(window, pacs_orthanc, no_keyring):
    from orthanc_proc import MOVE_PORT

    add_node(DimseNode("orthanc", pacs_orthanc.aet, "127.0.0.1", pacs_orthanc.dicom_port,
                       "MEDVIEW", MOVE_PORT, timeout_s=10))
    window.pacs_panel.refresh_nodes()
    window.pacs_dock.raise_()
    return window.pacs_panel


def _search(qtbot, panel, **fields):
    for key, value in fields.items():
        panel.fields[key].setText(value)
    with qtbot.waitSignal(panel.searched, timeout=TIMEOUT_MS) as blocker:
        panel.search_button.click()
    return blocker.args[0]


def _row(item) -> list[str]:
    return [item.text(c) for c in range(item.columnCount())]


def _series_item(panel, modality: str):
    return next(i for i in panel.tree.items()
                if i.data(0, KEY_ROLE)[0] == "series" and i.text(2) == modality)


def test_query_fills_the_tree_with_counts_and_in_catalog_marks(qtbot, window, panel):
    window.catalog.index([CT], workers=1)  # the CT is here already, the MR is not
    patients = _search(qtbot, panel, modality="")
    ids = sorted(p.patient_id for p in patients)
    assert "crlab" in ids and len(ids) >= 2
    tree = panel.tree
    assert tree.topLevelItemCount() == len(patients)
    mr = _series_item(panel, "MR")
    ct = _series_item(panel, "CT")
    assert mr.text(3) == "35" and mr.text(4) == ""            # 35 images, none here
    assert ct.text(3) == "11" and ct.text(4) == "✓ in catalog"  # all 11 here
    assert ct.parent().text(4) == "✓ in catalog"
    mr_patient = mr.parent().parent()
    assert "[crlab]" in mr_patient.text(0) and "1 study" in mr_patient.text(0)
    assert "1 series" in mr.parent().text(0) and mr.parent().text(2) == "MR"
    # what the user sees: the dock on screen with its rows (saved for a look)
    tree.setCurrentItem(mr)
    shot = window.pacs_dock.grab()
    shot.save("/tmp/pacs_dock_query.png")
    rgb = grab_rgb(tree.viewport())
    rows = [tree.visualItemRect(i) for i in tree.items()]
    row = tree.visualItemRect(mr)
    assert rgb[row.top():row.bottom(), :].std() > 10  # its text is drawn
    below = max(r.bottom() for r in rows) + 2
    assert rgb[below:, :].std() < 1  # nothing drawn under the last row
    # a filter with DICOM wildcards narrows it to the MR patient
    patients = _search(qtbot, panel, patient_id="crl*")
    assert [p.patient_id for p in patients] == ["crlab"]
    assert tree.topLevelItemCount() == 1


def test_retrieve_a_series_opens_it_while_arriving_and_shows_the_image(qtbot, window,
                                                                        panel):
    _search(qtbot, panel, patient_id="crlab")
    mr = _series_item(panel, "MR")
    series_uid = mr.data(0, KEY_ROLE)[2]
    panel.tree.setCurrentItem(mr)
    arrivals = []
    started = []

    def arrived(st, se, n) -> None:  # connected after the window's own slot: runs after it
        if not arrivals:
            started.append((window._pacs_opened or window._pacs_provisional, n))
        arrivals.append(n)

    panel.instances_arrived.connect(arrived)
    with qtbot.waitSignal(panel.retrieve_finished, timeout=TIMEOUT_MS) as blocker:
        panel.retrieve_button.click()
    report = blocker.args[0]
    assert report.complete and len(report.received) == 35
    assert len(window.catalog.instances(series_uid)) == 35
    assert mr.text(4) == "✓ in catalog"
    assert series_uid in window.browser.series_uids()
    # the window started opening it with the first batch indexed (laid out whole once the
    # PACS listed it: see test_pacs_arriving.py)
    assert started and started[0] == (series_uid, arrivals[0])
    # the reload with everything that arrived
    qtbot.waitUntil(lambda: window.state.volume is not None and not window._load_task
                    and window.state.volume.shape[0] == 35, timeout=TIMEOUT_MS)
    local = medview.load(HFS)
    shown = window.state.volume
    assert shown.metadata["SeriesInstanceUID"] == series_uid
    assert np.array_equal(shown.array, local.array)  # same voxels as the local load
    viewer = window.viewer
    qtbot.waitUntil(lambda: viewer.displayed_image() is not None, timeout=TIMEOUT_MS)
    k = viewer.displayed_slice
    assert np.array_equal(viewer.displayed_image(), local.array[k])
    rgb = grab_rgb(viewer)
    assert rgb.std() > 10  # an image, not a uniform view


def test_cancel_keeps_what_arrived_and_resume_fetches_only_the_rest(qtbot, window, panel):
    _search(qtbot, panel, patient_id="crlab")
    mr = _series_item(panel, "MR")
    series_uid = mr.data(0, KEY_ROLE)[2]
    panel.tree.setCurrentItem(mr)
    with qtbot.waitSignal(panel.retrieve_stopped, timeout=TIMEOUT_MS) as blocker:
        panel.retrieve_button.click()
        qtbot.waitUntil(lambda: bool(panel._arrived) or panel.retrieve_task is None,
                        timeout=10_000)
        panel.cancel_button.click()
    assert "cancelled" in blocker.args[0] and "Resume" in blocker.args[0]
    assert "cancelled" in panel.message.text()
    kept = len(window.catalog.instances(series_uid))
    assert kept <= 35
    qtbot.waitUntil(lambda: panel.retrieve_task is None, timeout=TIMEOUT_MS)
    assert panel.resume_button.isEnabled()
    with qtbot.waitSignal(panel.retrieve_finished, timeout=TIMEOUT_MS) as blocker:
        panel.resume_button.click()
    report = blocker.args[0]
    assert report.complete and report.already_local == kept
    assert len(report.received) == 35 - kept  # only the rest was asked for
    assert len(window.catalog.instances(series_uid)) == 35
    assert not panel.resume_button.isEnabled()


def test_send_the_open_series_to_orthanc(qtbot, window, panel, pacs_orthanc):
    from orthanc_proc import PASSWORD, USER

    with qtbot.waitSignal(window.series_opened, timeout=TIMEOUT_MS) as blocker:
        window.import_folder(CT3, open_first=True)
    uid = blocker.args[0].metadata["SeriesInstanceUID"]
    dialog = window.open_send_dialog()
    assert dialog.sources[0][0] == "The open series" and len(dialog.sources[0][1]) == 3
    with qtbot.waitSignal(dialog.sent, timeout=TIMEOUT_MS) as blocker:
        dialog.send_button.click()
    report = blocker.args[0]
    assert report.complete and len(report.sent) == 3
    assert "3 of 3" in dialog.message.text() and not dialog.failures.isVisible()
    # the disclosure: one audit line for the series, naming the node and its address
    from medview.audit import read_audit

    [line] = [e for e in read_audit() if e.action == "send"]
    assert line.series_uid == uid
    assert line.destination == f"orthanc {pacs_orthanc.aet}@127.0.0.1:{pacs_orthanc.dicom_port}"
    assert line.bytes == sum(p.stat().st_size for p in CT3.iterdir())
    assert line.detail == {"instances": 3, "failed": 0, "method": "C-STORE"}
    auth = (USER, PASSWORD)
    found = requests.post(f"{pacs_orthanc.url}/tools/lookup", data=uid, auth=auth,
                          timeout=10).json()
    assert [f["Type"] for f in found] == ["Series"]
    try:
        instances = pacs_orthanc.rest(f"/series/{found[0]['ID']}")["Instances"]
        assert len(instances) == 3
    finally:  # the session's Orthanc holds the same series for the other tests
        requests.delete(f"{pacs_orthanc.url}/series/{found[0]['ID']}", auth=auth,
                        timeout=10).raise_for_status()


def test_send_the_export_just_written_lists_what_was_not_stored(qtbot, window, panel,
                                                                pacs_orthanc, tmp_path):
    import pydicom
    from orthanc_proc import PASSWORD, USER

    with qtbot.waitSignal(window.series_opened, timeout=TIMEOUT_MS):
        window.import_folder(CT3, open_first=True)
    item = next(i for i in window.exportables() if i.name == "Series")
    with qtbot.waitSignal(window.exported, timeout=TIMEOUT_MS):
        window.export(item, "series", tmp_path / "derived")
    written = sorted((tmp_path / "derived").iterdir())
    assert window.last_export == written and len(written) == 3
    written[2].write_text("not DICOM")  # one the PACS cannot get: damaged since the export
    window.show_export_dialog()  # its "Send to PACS…" button opens the send dialog
    window.export_dialog.findChild(type(panel.retrieve_button), "send_to_pacs").click()
    dialog = window.send_dialog
    assert [label.startswith(("The open series", "The last export"))
            for label, _ in dialog.sources] == [True, True]
    dialog.choice.button(1).setChecked(True)
    with qtbot.waitSignal(dialog.sent, timeout=TIMEOUT_MS) as blocker:
        dialog.send_button.click()
    report = blocker.args[0]
    assert report.sent == written[:2] and [p for p, _ in report.failed] == written[2:]
    assert "2 of 3" in dialog.message.text() and "1 NOT stored" in dialog.message.text()
    assert dialog.failures.isVisible() and dialog.failures.count() == 1
    assert dialog.failures.item(0).text().startswith(f"{written[2]}: ")
    uid = pydicom.dcmread(report.sent[0], stop_before_pixels=True).SeriesInstanceUID
    auth = (USER, PASSWORD)
    found = requests.post(f"{pacs_orthanc.url}/tools/lookup", data=uid, auth=auth,
                          timeout=10).json()
    assert [f["Type"] for f in found] == ["Series"]
    requests.delete(f"{pacs_orthanc.url}/series/{found[0]['ID']}", auth=auth,
                    timeout=10).raise_for_status()


def test_a_failed_retrieve_says_what_is_missing_and_resume_completes_it(qtbot, window, panel,
                                                                        pacs_orthanc):
    from orthanc_proc import MOVE_PORT, free_port

    # C-MOVE to an AE title Orthanc does not know: nothing can arrive
    add_node(DimseNode("orthanc", pacs_orthanc.aet, "127.0.0.1", pacs_orthanc.dicom_port,
                       "STRANGER", free_port(), retrieve="move", timeout_s=10))
    _search(qtbot, panel, patient_id="crlab")
    mr = _series_item(panel, "MR")
    series_uid = mr.data(0, KEY_ROLE)[2]
    panel.tree.setCurrentItem(mr)
    # nothing arrived: the retrieve fails (medview.pacs raises rather than report an empty
    # transfer) and the dock says why and offers Resume
    with qtbot.waitSignal(panel.retrieve_stopped, timeout=TIMEOUT_MS) as blocker:
        panel.retrieve_button.click()
    text = panel.message.text()
    assert text.startswith("Retrieve failed: ") and blocker.args[0] in text
    assert "does not know our AE title 'STRANGER'" in text
    qtbot.waitUntil(lambda: panel.retrieve_task is None, timeout=TIMEOUT_MS)
    assert panel.resume_button.isEnabled() and window.catalog.instances(series_uid) == []
    # the node fixed (Orthanc knows MEDVIEW at MOVE_PORT), Resume brings the series
    add_node(DimseNode("orthanc", pacs_orthanc.aet, "127.0.0.1", pacs_orthanc.dicom_port,
                       "MEDVIEW", MOVE_PORT, retrieve="move", timeout_s=10))
    with qtbot.waitSignal(panel.retrieve_finished, timeout=TIMEOUT_MS) as blocker:
        panel.resume_button.click()
    report = blocker.args[0]
    assert report.complete and report.method == "move" and len(report.received) == 35
    assert len(window.catalog.instances(series_uid)) == 35
    assert mr.text(4) == "✓ in catalog"
    qtbot.waitUntil(lambda: window.state.volume is not None and not window._load_task,
                    timeout=TIMEOUT_MS)
    assert window.state.volume.metadata["SeriesInstanceUID"] == series_uid

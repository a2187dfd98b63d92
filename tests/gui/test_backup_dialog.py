"""File ▸ Back up to archive… against a real Orthanc: the dialog runs the backup in the
background and shows the report — counts, a green "All verified" or a red "Not complete" with
each failure and its reason — and a cancel says what was done until then."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pydicom
import pytest
from viewer_helpers import grab_rgb

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "pacs"))
from backup_helpers import LIVER, web_node_for, write_result
from orthanc_proc import Orthanc, available
from realparts import require

TIMEOUT_MS = 60_000


@pytest.fixture()
def archive(tmp_path, no_keyring):
    require(available(), "Orthanc with its DICOMweb plugin")
    server = Orthanc(tmp_path / "orthanc").start()
    web_node_for(server)
    yield server
    server.stop()


@pytest.fixture()
def dialog(window, archive, tmp_path):
    report = window.catalog.index([LIVER / "ct-3slice", LIVER / "liver.dcm",
                                   write_result(tmp_path / "results")], workers=1)
    assert report.added == 5, report.errors
    window.backup_action.trigger()
    return window.backup_dialog


def _status_colour(dialog) -> np.ndarray:
    """The colour most pixels of the status badge have, as the dialog is drawn."""
    rgb = grab_rgb(dialog)
    g = dialog.status.geometry()
    patch = rgb[g.top():g.bottom(), g.left():g.right()].reshape(-1, 3)
    colours, counts = np.unique(patch, axis=0, return_counts=True)
    return colours[np.argmax(counts)]


def _counts(dialog) -> dict[str, str]:
    t = dialog.table
    return {t.verticalHeaderItem(r).text(): t.item(r, 0).text() for r in range(t.rowCount())}


def _run(qtbot, dialog):
    with qtbot.waitSignal(dialog.finished, timeout=TIMEOUT_MS) as blocker:
        dialog.start_button.click()
    qtbot.waitUntil(lambda: dialog.task is None, timeout=TIMEOUT_MS)
    return blocker.args[0]


def test_backup_shows_what_was_sent_and_verified_in_green(qtbot, dialog):
    from medview.gui.backup_dialog import OK_COLOUR

    assert [dialog.node.itemText(i) for i in range(dialog.node.count())] == ["archive"]
    assert dialog.every_study.isChecked() and not dialog.open_study.isEnabled()
    assert dialog.results.isChecked()
    report = _run(qtbot, dialog)
    assert report.complete and report.total == 5
    assert _counts(dialog) == {"Sent": "5", "Already in the archive": "0", "Verified": "5",
                               "Failed": "0", "Not verified yet": "0"}
    assert dialog.status.isVisible() and dialog.status.text() == "All verified"
    assert tuple(_status_colour(dialog)) == (OK_COLOUR.red(), OK_COLOUR.green(),
                                             OK_COLOUR.blue())
    assert dialog.message.text() == report.summary()
    assert not dialog.failures.isVisible()

    again = _run(qtbot, dialog)  # incremental: nothing to send, verified by the first run
    assert again.complete and again.sent == []
    assert _counts(dialog)["Already in the archive"] == "5"
    assert _counts(dialog)["Verified"] == "5" and _counts(dialog)["Sent"] == "0"


def test_a_differing_copy_in_the_archive_shows_red_with_the_reason(qtbot, dialog, archive,
                                                                   tmp_path):
    from medview.gui.backup_dialog import PROBLEM_COLOUR

    original = sorted((LIVER / "ct-3slice").glob("*.dcm"))[0]
    ds = pydicom.dcmread(original)
    ds.PatientName = "SOMEONE^ELSE"
    ds.save_as(tmp_path / "other.dcm")
    archive.upload([tmp_path / "other.dcm"])

    report = _run(qtbot, dialog)
    assert not report.complete and len(report.failed) == 1
    assert _counts(dialog) == {"Sent": "4", "Already in the archive": "1", "Verified": "4",
                               "Failed": "1", "Not verified yet": "0"}
    assert dialog.status.text() == "Not complete"
    assert tuple(_status_colour(dialog)) == (PROBLEM_COLOUR.red(), PROBLEM_COLOUR.green(),
                                             PROBLEM_COLOUR.blue())
    assert dialog.failures.isVisible() and dialog.failures.count() == 1
    line = dialog.failures.item(0).text()
    assert line.startswith(f"not verified: {original.name}") and "PatientName differ" in line


def test_cancel_says_what_was_done(qtbot, window, dialog):
    from backup_helpers import HFS, KITS

    window.catalog.index([KITS, HFS], workers=1)  # 4 studies: cancelled after the first
    task = dialog.start()
    assert task is not None and dialog.cancel_button.isEnabled()

    def on_progress(_fraction, text) -> None:
        if text[:1].isdigit() and not text.startswith("0 sent"):  # something went out
            dialog.cancel_button.click()

    task.signals.progress.connect(on_progress)
    with qtbot.waitSignal(task.signals.cancelled, timeout=TIMEOUT_MS):
        pass
    qtbot.waitUntil(lambda: dialog.task is None, timeout=TIMEOUT_MS)
    report = dialog.report
    assert report.cancelled and 0 < len(report.sent) + len(report.skipped) < report.total
    text = dialog.message.text()
    assert text.startswith("Cancelled: ") and "cancelled — run it again" in text
    assert dialog.status.text() == "Not complete" and dialog.table.isVisible()
    assert _counts(dialog)["Sent"] == str(len(report.sent))
    assert dialog.start_button.isEnabled() and not dialog.cancel_button.isEnabled()


def test_the_open_study_alone_without_results(qtbot, window, archive, tmp_path):
    from backup_helpers import KITS

    window.catalog.index([KITS, LIVER / "ct-3slice", write_result(tmp_path / "r")], workers=1)
    ct = next(s for s in window.catalog.series() if s.instances == 3)  # the liver CT
    window.refresh_browser()
    with qtbot.waitSignal(window.series_opened, timeout=TIMEOUT_MS):
        window.open_series(ct.uid)
    window.backup_action.trigger()
    dialog = window.backup_dialog
    assert dialog.open_study.isEnabled() and dialog.open_study.isChecked()
    dialog.results.setChecked(False)
    report = _run(qtbot, dialog)
    # only the open study's CT; its SEG made by medview stays home; the KiTS study too
    assert report.complete and report.total == 3 and report.results_left_out == 1
    assert _counts(dialog)["Sent"] == "3" and dialog.status.text() == "All verified"
    assert "1 series of medview results left out" in dialog.message.text()

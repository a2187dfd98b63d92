"""File ▸ Share de-identified…: the open study, de-identified in the background into a new
folder with a DICOMDIR; the report appears in the dialog (grabbed), nothing identifying is
written, and the options chosen are the ones applied."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from realparts import DATA
from viewer_helpers import grab_rgb

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "deid"))
from privacy_set import build, grep_files

TIMEOUT_MS = 60_000


@pytest.fixture()
def private_home(tmp_path, monkeypatch, no_keyring):
    monkeypatch.setenv("MEDVIEW_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("MEDVIEW_DATA_DIR", str(tmp_path / "data"))
    return tmp_path


def test_share_the_open_study_shows_the_report(qtbot, window, private_home, tmp_path):
    files = build(DATA, tmp_path / "privacy")
    with qtbot.waitSignal(window.series_opened, timeout=TIMEOUT_MS):
        window.import_folder(tmp_path / "privacy", open_first=True)
    action = window.findChild(type(window.share_action), "action_share")
    assert action is window.share_action and action.text().startswith("Share")
    dialog = window.open_share_dialog()
    labels = [label for label, _ in dialog.sources]
    assert labels[0] in ("The open study", "The open series")
    dialog.project.setText("gui-trial")
    dialog.options["retain_dates_modified"].setChecked(True)
    dialog.options["clean_descriptors"].setChecked(True)
    out = tmp_path / "shared"
    dialog.path.setText(str(out))
    before = grab_rgb(dialog)
    with qtbot.waitSignal(dialog.shared, timeout=TIMEOUT_MS) as blocker:
        dialog.share_button.click()
        assert dialog.cancel_button.isEnabled()   # cancellable while it runs
    report = blocker.args[0]
    assert report.instances == len(dialog.sources[0][1]) and report.instances >= 3
    assert report.profile == "basic+retain_dates_modified+clean_descriptors"
    assert (out / "DICOMDIR").is_file()
    assert grep_files(p for p in out.rglob("*") if p.is_file()) == []
    saved = json.loads((out / "SHARE-REPORT.json").read_text())
    assert saved["shifted"]["Study Date"] == report.instances
    # what the user sees: the report in the dialog, drawn (dark glyphs on the light field)
    qtbot.waitUntil(lambda: dialog.report.isVisible(), timeout=5_000)
    assert "Dates shifted" in dialog.report.toPlainText()
    assert f"Shared {report.instances} instance(s)" in dialog.message.text()
    pixels = grab_rgb(dialog.report.viewport()).astype(int)
    dialog.grab().save(str(tmp_path / "share-dialog.png"))
    colours, counts = np.unique(pixels.reshape(-1, 3), axis=0, return_counts=True)
    ground = colours[counts.argmax()]
    glyphs = (np.abs(pixels - ground).sum(axis=2) > 150).mean()   # text, whatever the theme
    assert 0.002 < glyphs < 0.5, glyphs
    rows = np.flatnonzero((np.abs(pixels - ground).sum(axis=2) > 150).any(axis=1))
    assert rows.size > 40   # many lines of text, not one
    after = grab_rgb(dialog)
    assert after.shape != before.shape or not np.array_equal(after, before)
    qtbot.waitUntil(lambda: dialog.task is None, timeout=5_000)   # done follows finished
    assert not dialog.cancel_button.isEnabled() and dialog.share_button.isEnabled()
    assert files  # the sources are still there, untouched by the share
    assert all(p.exists() for p in files)


def test_share_refuses_without_a_project_and_says_why(qtbot, window, private_home, tmp_path):
    build(DATA, tmp_path / "privacy")
    with qtbot.waitSignal(window.series_opened, timeout=TIMEOUT_MS):
        window.import_folder(tmp_path / "privacy", open_first=True)
    dialog = window.open_share_dialog()
    dialog.path.setText(str(tmp_path / "x"))
    assert dialog.share() is None
    assert "project" in dialog.message.text().lower()
    assert not (tmp_path / "x").exists()

"""Messages in the window speak the window's language, not the command line's."""

from __future__ import annotations

import numpy as np
import pytest
from petct_helpers import window_on_ct, write_pet_ct

from medview.core.labelmap import LabelMap

CLI_WORDS = ("overwrite=True", "--force", "--series", "--ca-bundle", "series=UID")


@pytest.fixture
def window(app, qtbot, tmp_path):
    study = write_pet_ct(tmp_path / "study", shape=(6, 40, 40), spacing=(2.0, 2.0, 3.0),
                         patient_id="M1", study_uid="1.2.826.0.1.3680043.8.498.31")
    return window_on_ct(qtbot, tmp_path, study, size=(900, 700))


def test_export_over_an_existing_file_says_what_to_tick(window, qtbot, tmp_path):
    arr = np.zeros(window.state.volume.shape, np.uint8)
    arr[2, 10:20, 10:20] = 1
    window.state.set_labels(LabelMap.like(window.state.volume, arr))
    target = tmp_path / "taken.dcm"
    target.write_bytes(b"keep me")
    item = next(i for i in window.exportables() if i.name == "Label map")
    with qtbot.waitSignal(window.exported_failed, timeout=60_000):
        window.export(item, "seg", target)
    assert target.read_bytes() == b"keep me"
    shown = window.error_box.text()
    assert "Replace an existing file or folder" in shown and str(target) in shown
    assert not any(word in shown for word in CLI_WORDS), shown

"""A small PET/CT study written by the phantom writer, and a window opened on its CT."""

from __future__ import annotations

from pathlib import Path

from medview.app import library
from medview.gui.main_window import MainWindow
from phantoms import write_ct_series, write_pet_series


def write_pet_ct(root: Path, *, shape, spacing, patient_id: str, study_uid: str) -> Path:
    """CT (``shape`` [z, y, x], ``spacing`` x, y, z mm) and a PET covering it, one study."""
    write_ct_series(root / "ct", shape=shape, spacing_xyz=spacing, patient_id=patient_id,
                    study_uid=study_uid)
    write_pet_series(root / "pet", ct_shape=shape, ct_spacing_xyz=spacing,
                     patient_id=patient_id, study_uid=study_uid)
    return root


def window_on_ct(qtbot, tmp_path: Path, study: Path, size=(1100, 850)) -> MainWindow:
    """A shown main window on a fresh catalog holding ``study``, its CT open."""
    w = MainWindow(catalog_path=tmp_path / "catalog.sqlite")
    qtbot.addWidget(w)
    w.resize(*size)
    w.show()
    with qtbot.waitSignal(w.import_finished, timeout=60_000):
        w.import_folder(study)
    uid = next(s.series_uid for p in library.list_patients(w.catalog)
               for st in p.studies for s in st.series if s.modality == "CT")
    with qtbot.waitSignal(w.series_opened, timeout=60_000):
        w.open_series(uid)
    return w

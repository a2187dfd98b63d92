"""Write a screenshot of every workflow of the workstation into a folder.

Usage (from the repository root)::

    xvfb-run -a -s "-screen 0 1600x1000x24" env QT_QPA_PLATFORM=xcb \\
        .venv/bin/python scripts/screenshots.py OUTDIR [NAME...]
    QT_QPA_PLATFORM=offscreen .venv/bin/python scripts/screenshots.py OUTDIR

Each workflow opens a fresh window on real data (the bundled demo MR, the KiTS CT and the
gantry-tilted GE CT of ../shared/data, a PET/CT pair written by medview's phantom writer),
does what a reader does (through the same calls the menus and panels make) and saves
``NAME.png`` (the window, or the dialog of that workflow). ``--list`` prints the names;
``--docs [FOLDER]`` writes the user guide's pictures (:data:`DOC_SHOTS`, scaled, compact
PNG) into ``docs/images``.
The GUI tests run :func:`run` into a temporary folder (tests/gui/test_screenshots.py).
Settings, catalog and caches go to a temporary folder, never the user's.
"""

from __future__ import annotations

import itertools
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _find_data() -> Path:
    """$MEDVIEW_TEST_DATA, else ``shared/data`` beside the checkout or one of its parents
    (as the tests find it)."""
    if os.environ.get("MEDVIEW_TEST_DATA"):
        return Path(os.environ["MEDVIEW_TEST_DATA"])
    for parent in REPO.parents:
        if (parent / "shared" / "data").is_dir():
            return parent / "shared" / "data"
    return Path("/work/shared/data")


DATA = _find_data()
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

#: the window's size in every screenshot (a dialog is saved at its own size)
WINDOW_SIZE = (1280, 800)
TIMEOUT_MS = 120_000


class Shots:
    """What the workflows share: the application, a work folder, waiting for signals."""

    def __init__(self, out: Path, work: Path):
        from medview.gui.app import create_app

        self.app = create_app()
        self.out = out
        self.work = work
        self.windows: list = []
        self._catalogs = 0

    # -- helpers -----------------------------------------------------------------------
    def wait(self, signal, trigger: Callable | None = None, timeout_ms: int = TIMEOUT_MS,
             failures=()):
        """Run ``trigger`` and the event loop until ``signal`` fires (its arguments); any
        of the ``failures`` signals (a TaskError) ends the wait with that error."""
        from PySide6.QtCore import QEventLoop, QTimer

        got: list = []
        failed: list = []
        loop = QEventLoop()

        def done(*args) -> None:
            got.append(args)
            loop.quit()

        def fail(error) -> None:
            failed.append(error)
            loop.quit()

        signal.connect(done)
        for f in failures:
            f.connect(fail)
        try:
            if trigger is not None:
                trigger()
            if not got and not failed:
                QTimer.singleShot(timeout_ms, loop.quit)
                loop.exec()
        finally:
            signal.disconnect(done)
            for f in failures:
                f.disconnect(fail)
        if failed:
            raise RuntimeError(f"{failed[0].title} failed: {failed[0].message}")
        if not got:
            raise TimeoutError(f"no {signal} within {timeout_ms / 1000:.0f} s")
        return got[0]

    def settle(self, ms: int = 300) -> None:
        """Let layouts, docks and repaints happen (a short run of the event loop)."""
        from PySide6.QtCore import QEventLoop, QTimer

        loop = QEventLoop()
        QTimer.singleShot(ms, loop.quit)
        loop.exec()

    def window(self, folder: Path | None = None, *, series: str | None = None):
        """A shown main window on a new catalog; ``folder`` imported, its first series (or
        the one of modality ``series``) open."""
        from medview.app import library
        from medview.gui.main_window import MainWindow

        self._catalogs += 1
        # a fresh catalog and settings file each: no dock or layout carried over
        w = MainWindow(catalog_path=self.work / f"catalog{self._catalogs}.sqlite",
                       settings_path=self.work / f"settings{self._catalogs}.ini")
        w.unsaved.ask = lambda what, action: "discard"  # nothing here is the reader's work
        w.resize(*WINDOW_SIZE)
        w.show()
        self.windows.append(w)
        failures = (w.import_failed, w.series_failed)
        if folder is not None:
            if series is None:
                self.wait(w.series_opened, lambda: w.import_folder(folder, open_first=True),
                          failures=failures)
            else:
                self.wait(w.import_finished, lambda: w.import_folder(folder),
                          failures=failures)
                uid = next(s.series_uid for p in library.list_patients(w.catalog)
                           for st in p.studies for s in st.series if s.modality == series)
                self.wait(w.series_opened, lambda: w.open_series(uid), failures=failures)
        return w

    def save(self, name: str, widget) -> Path:
        self.settle()
        path = self.out / f"{name}.png"
        if not widget.grab().save(str(path), "PNG"):
            raise OSError(f"{path}: the screenshot could not be written")
        return path

    def close_all(self) -> None:
        for w in self.windows:
            w.tasks.shutdown(timeout_ms=30_000)
            w.close()
            w.deleteLater()
        self.windows.clear()
        self.settle(50)

    def pet_ct(self) -> Path:
        from phantoms import write_ct_series, write_pet_series

        root = self.work / "petct"
        if not root.is_dir():
            shape, spacing = (40, 160, 160), (2.5, 2.5, 4.0)
            write_ct_series(root / "ct", shape=shape, spacing_xyz=spacing, patient_id="SHOT1",
                            study_uid="1.2.826.0.1.3680043.8.498.91")
            write_pet_series(root / "pet", ct_shape=shape, ct_spacing_xyz=spacing,
                             patient_id="SHOT1", study_uid="1.2.826.0.1.3680043.8.498.91")
        return root


def _demo():
    from medview.resources import demo_study

    return demo_study()


def _ct() -> Path:
    return DATA / "kits_dupe_positions"


# -- the workflows ------------------------------------------------------------------------
def shot_demo(s: Shots) -> Path:
    w = s.window(_demo())
    return s.save("demo", w)


def shot_mpr(s: Shots) -> Path:
    w = s.window(_demo())
    w.view_grid.set_layout("2x2")
    return s.save("mpr", w)


def shot_measurements(s: Shots) -> Path:
    from medview.app.measurements import Measurement

    w = s.window(_ct())
    w.apply_preset(6)  # abdomen
    st = w.state
    g = st.geometry("axial")
    k = st.slice_index
    st.add_measurement(Measurement("distance", "axial", k, (0.30 * g.width, 0.62 * g.height),
                                   (0.70 * g.width, 0.62 * g.height)))
    st.add_measurement(Measurement("ellipse", "axial", k, (0.40 * g.width, 0.35 * g.height),
                                   (0.55 * g.width, 0.50 * g.height)))
    st.add_measurement(Measurement("rectangle", "axial", k, (0.62 * g.width, 0.38 * g.height),
                                   (0.72 * g.width, 0.48 * g.height)))
    return s.save("measurements", w)


def _chain_window(s: Shots):
    w = s.window(_ct())
    w.chain_action.trigger()
    panel = w.chain_panel
    panel.add_step("smooth.gaussian")
    panel.add_step("segment.threshold")
    panel.model.set_param(1, "low", 150.0)
    panel.model.set_param(1, "high", 3000.0)
    return w, panel


def shot_chain_preview(s: Shots) -> Path:
    w, panel = _chain_window(s)
    s.wait(panel.preview_ready, lambda: panel.set_preview_enabled(True))
    return s.save("chain-preview", w)


def shot_chain_run(s: Shots) -> Path:
    w, panel = _chain_window(s)
    panel.model.set_output(1, "bone")
    s.wait(panel.run_finished, panel.run)
    return s.save("chain-run", w)


def _stroke(state, label: int, points) -> None:
    state.set_paint_label(label)
    state.begin_edit("brush")
    for a, b in itertools.pairwise(points):
        state.paint("axial", a, b)
    state.end_edit()


def shot_brush_undo(s: Shots) -> Path:
    w = s.window(_ct())
    st = w.state
    st.set_tool("brush")
    st.set_brush_mm(6.0)
    g = st.geometry("axial")
    W, H = g.width, g.height
    _stroke(st, 1, [(0.35 * W, 0.45 * H), (0.45 * W, 0.40 * H), (0.55 * W, 0.45 * H)])
    _stroke(st, 2, [(0.40 * W, 0.60 * H), (0.60 * W, 0.60 * H)])
    _stroke(st, 2, [(0.30 * W, 0.30 * H), (0.70 * W, 0.30 * H)])
    st.undo()  # the last stroke goes
    return s.save("brush-undo", w)


def shot_scribble_classifier(s: Shots) -> Path:
    w = s.window(_ct())
    st = w.state
    st.set_edit_target("scribbles")
    st.set_tool("brush")
    st.set_brush_mm(4.0)
    g = st.geometry("axial")
    W, H = g.width, g.height
    _stroke(st, 1, [(0.08 * W, 0.1 * H), (0.3 * W, 0.1 * H)])  # air around the body
    _stroke(st, 2, [(0.45 * W, 0.45 * H), (0.55 * W, 0.5 * H)])  # soft tissue
    s.wait(w.segment_panel.trained, w.segment_panel.train)
    return s.save("scribble-classifier", w)


def shot_fusion(s: Shots) -> Path:
    from medview.app import library

    w = s.window(s.pet_ct(), series="CT")
    pet = next(x.series_uid for p in library.list_patients(w.catalog)
               for st in p.studies for x in st.series if x.modality == "PT")
    w.fusion_dock.show()
    w.fusion_dock.raise_()
    w.fusion_panel.refresh_series()
    s.wait(w.fusion_panel.fused, lambda: w.fusion_panel.fuse(pet))
    return s.save("fusion", w)


def shot_exports(s: Shots) -> list[Path]:
    """The Export dialog for each kind of item: label map, series, fused image,
    measurements, view."""
    import numpy as np

    from medview.app import library
    from medview.app.measurements import Measurement
    from medview.core.labelmap import LabelMap

    w = s.window(s.pet_ct(), series="CT")
    st = w.state
    arr = np.zeros(st.volume.shape, np.uint8)
    nz, ny, nx = arr.shape
    arr[nz // 2 - 3: nz // 2 + 3, ny // 3: ny // 2, nx // 3: nx // 2] = 1
    st.set_labels(LabelMap.like(st.volume, arr))
    g = st.geometry("axial")
    st.add_measurement(Measurement("distance", "axial", st.slice_index, (10, 10),
                                   (g.width - 10, g.height - 10)))
    pet = next(x.series_uid for p in library.list_patients(w.catalog)
               for t in p.studies for x in t.series if x.modality == "PT")
    s.wait(w.fusion_panel.fused, lambda: w.fusion_panel.fuse(pet))
    written = []
    for name, shot in (("Label map", "export-label-map"), ("Series", "export-series"),
                       ("Fused image", "export-fused"), ("Measurements", "export-measurements"),
                       ("View", "export-view")):
        w.show_export_dialog()
        dialog = w.export_dialog
        dialog.what.setCurrentIndex([i.name for i in dialog.items].index(name))
        dialog.resize(620, dialog.sizeHint().height())
        written.append(s.save(shot, dialog))
        dialog.reject()
    return written


def shot_broken_folder(s: Shots) -> Path:
    import shutil

    from phantoms import write_ct_series

    folder = s.work / "broken"
    if not folder.is_dir():
        write_ct_series(folder / "ct", shape=(12, 64, 64), spacing_xyz=(1.0, 1.0, 2.5),
                        patient_id="BROKEN", series_description="CT with bad files")
        files = sorted((folder / "ct").iterdir())
        data = files[4].read_bytes()
        files[4].write_bytes(data[: len(data) // 2])  # truncated
        (folder / "notes.txt").write_text("not DICOM\n")
        (folder / "junk.dcm").write_bytes(os.urandom(4096))
        shutil.copy(files[0], folder / "copy_of_first.dcm")
    w = s.window(folder)
    w.show_failed_files()
    return s.save("broken-folder", w)


def shot_tilted_ct(s: Shots) -> Path:
    w = s.window(DATA / "dcm_qa_ct" / "In" / "GE")
    w.apply_preset(1)  # brain
    w.view_grid.set_layout("2x2")
    return s.save("tilted-ct", w)


def _philips_window(s: Shots):
    """The Philips phantom study imported, its tilted axial CT (S2010) open."""
    study = DATA / "dcm_qa_ct" / "In" / "Philips" / "S21610"
    w = s.window()
    s.wait(w.import_finished, lambda: w.import_folder(study),
           failures=(w.import_failed,))
    uid = next(x.uid for x in w.catalog.series()
               if "/S2010/" in w.catalog.instances(x.uid)[0].path)
    s.wait(w.series_opened, lambda: w.open_series(uid), failures=(w.series_failed,))
    return w


def shot_slab_lines(s: Shots) -> Path:
    """2×2 with a 10 mm MIP on every view and the reference lines (other views' planes and
    the study's sagittal localizer)."""
    w = _philips_window(s)
    w.apply_preset(2)  # subdural: the phantom's inserts and shell
    w.view_grid.set_layout("2x2")
    w.state.set_cursor(200, 300, 30)  # off the localizer's plane (x = 0 mm): two lines
    w.state.slab.set_mode("mip")
    w.state.slab.set_thickness(10.0)
    w.reference_lines_action.setChecked(True)
    return s.save("slab-lines", w)


def shot_oblique(s: Shots) -> Path:
    """The crosshair turned 30° in the axial view: coronal and sagittal are oblique."""
    import math

    w = _philips_window(s)
    w.apply_preset(2)
    w.view_grid.set_layout("2x2")
    w.state.set_cursor(256, 300, 30)
    w.state.mpr.rotate_in_view("axial", math.radians(30))
    return s.save("oblique", w)


def shot_unsaved(s: Shots) -> Path:
    """The Save / Discard / Cancel question (shown without waiting for an answer)."""
    from PySide6.QtWidgets import QMessageBox

    w = s.window(_demo())
    st = w.state
    st.set_tool("brush")
    g = st.geometry(st.native_plane)
    st.begin_edit("brush")
    st.paint(st.native_plane, (g.width / 2, g.height / 2))
    st.end_edit()
    box = QMessageBox(QMessageBox.Icon.Warning, "Unsaved work",
                      f"{w.unsaved.work.describe().capitalize()} is not saved.\n\n"
                      "Save before opening another series?",
                      QMessageBox.StandardButton.Save | QMessageBox.StandardButton.Discard
                      | QMessageBox.StandardButton.Cancel, w)
    box.show()
    path = s.save("unsaved-question", box)
    box.close()
    return path


def shot_help(s: Shots) -> Path:
    w = s.window()
    dialog = w.show_keys_help()
    dialog.resize(640, 760)
    return s.save("help-keys", dialog)


def shot_pacs(s: Shots) -> Path:
    """The PACS dock with a query's results (a real Orthanc: scripts/screenshots_pacs.py)."""
    sys.path.insert(0, str(REPO / "scripts"))
    from screenshots_pacs import shot_pacs as shot

    return shot(s)


def shot_compare(s: Shots) -> Path:
    """Two series side by side, each pane on its own view (scripts/screenshots_compare.py)."""
    sys.path.insert(0, str(REPO / "scripts"))
    from screenshots_compare import shot_compare as shot

    return shot(s, DATA)


#: the screenshots of the whole window (the others are of a dialog, at its own size)
WINDOW_SHOTS = ("demo", "mpr", "measurements", "chain-preview", "chain-run", "brush-undo",
                "scribble-classifier", "fusion", "broken-folder", "tilted-ct", "pacs",
                "slab-lines", "oblique", "compare")

#: name → workflow, in the order they run
WORKFLOWS: dict[str, Callable] = {
    "demo": shot_demo, "mpr": shot_mpr, "measurements": shot_measurements,
    "chain-preview": shot_chain_preview, "chain-run": shot_chain_run,
    "brush-undo": shot_brush_undo, "scribble-classifier": shot_scribble_classifier,
    "fusion": shot_fusion, "exports": shot_exports, "broken-folder": shot_broken_folder,
    "tilted-ct": shot_tilted_ct, "unsaved-question": shot_unsaved, "help-keys": shot_help,
    "pacs": shot_pacs, "slab-lines": shot_slab_lines, "oblique": shot_oblique,
    "compare": shot_compare,
}


#: the screenshots the user guide shows (docs/images/NAME.png, written by ``--docs``)
DOC_SHOTS = ("demo", "mpr", "measurements", "chain-preview", "chain-run", "brush-undo",
             "fusion", "broken-folder", "export-label-map", "help-keys", "compare")
DOC_WIDTH = 960
DOC_MAX_BYTES = 150_000


def shrink(src: Path, dst: Path, *, width: int = DOC_WIDTH,
           max_bytes: int = DOC_MAX_BYTES) -> Path:
    """``src`` scaled to at most ``width`` pixels and saved as a compact PNG at ``dst``
    (256 colours, median cut, when full colour would pass ``max_bytes``; Pillow comes with
    scikit-image)."""
    from PIL import Image

    img = Image.open(src).convert("RGB")
    if img.width > width:
        img = img.resize((width, round(img.height * width / img.width)), Image.LANCZOS)
    dst.parent.mkdir(parents=True, exist_ok=True)
    img.save(dst, optimize=True)
    if dst.stat().st_size > max_bytes:
        img.quantize(256, method=Image.Quantize.MEDIANCUT,
                     dither=Image.Dither.NONE).save(dst, optimize=True)
    return dst


def write_docs_images(folder: str | os.PathLike = REPO / "docs" / "images") -> list[Path]:
    """Run the workflows of :data:`DOC_SHOTS` and write their pictures for the user guide."""
    with tempfile.TemporaryDirectory(prefix="medview-docshots-") as tmp:
        names = [n for n in WORKFLOWS if n in DOC_SHOTS or (n == "exports"
                                                             and "export-label-map" in DOC_SHOTS)]
        written = run(tmp, names)
        return [shrink(written[n], Path(folder) / f"{n}.png") for n in DOC_SHOTS]


def run(out: str | os.PathLike, names: list[str] | None = None) -> dict[str, Path]:
    """Run the workflows ``names`` (default all) and write their screenshots into ``out``;
    returns screenshot name → path."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    unknown = set(names or ()) - set(WORKFLOWS)
    if unknown:
        raise ValueError(f"unknown workflow(s) {sorted(unknown)}; known: {list(WORKFLOWS)}")
    written: dict[str, Path] = {}
    with tempfile.TemporaryDirectory(prefix="medview-shots-") as tmp:
        shots = Shots(out, Path(tmp))
        for name in names or list(WORKFLOWS):
            try:
                result = WORKFLOWS[name](shots)
            finally:
                shots.close_all()
            for path in result if isinstance(result, list) else [result]:
                written[path.stem] = path
    return written


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0 if argv else 2
    if argv[0] == "--list":
        print("\n".join(WORKFLOWS))
        return 0
    with tempfile.TemporaryDirectory(prefix="medview-shots-user-") as private:
        # the user's settings, catalog, caches and recovery folder stay untouched
        for var, sub in (("MEDVIEW_SETTINGS", "settings.ini"), ("MEDVIEW_CACHE_DIR", "cache"),
                         ("MEDVIEW_CONFIG_DIR", "config"), ("MEDVIEW_DATA_DIR", "data")):
            os.environ[var] = str(Path(private) / sub)
        if argv[0] == "--docs":
            for path in write_docs_images(*argv[1:2]):
                print(f"{path} ({path.stat().st_size / 1000:.0f} kB)")
            return 0
        written = run(argv[0], argv[1:] or None)
    for name, path in written.items():
        print(f"{name}: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

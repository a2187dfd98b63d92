"""One model of annotations, headless: the views' measurements ⇄ core Annotations on a real
CT (every kind, every view), key images in the state, and the Session saving them with the
study and reading them back in a new session (a restart)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from session_helpers import Recorder

from medview.app.annotation_model import annotation_of, annotation_text, measurement_of
from medview.app.measurements import Measurement
from medview.app.planes import PLANES
from medview.app.session import Session
from medview.app.state import ViewerState
from medview.app.unsaved_work import UnsavedWork
from medview.core.annotations import make_annotation

CT_3SLICE = "dcmqi_seg/data/segmentations/ct-3slice"

#: display points of each kind (a slice of 512 × 512, or of the reformats' 512 × 3)
SHAPES = {
    "distance": [(10.5, 1.5), (200.5, 2.5)],
    "angle": [(10.5, 0.5), (100.5, 2.5), (300.5, 0.5)],
    "ellipse": [(100.5, 1.5), (300.5, 1.5), (200.5, 0.5), (200.5, 2.5)],
    "rectangle": [(50.5, 0.5), (250.5, 0.5), (250.5, 2.5), (50.5, 2.5)],
    "polygon": [(60.5, 0.5), (260.5, 1.0), (120.5, 2.5)],
    "arrow": [(400.5, 0.5), (350.5, 2.5)],
    "text": [(30.5, 1.5)],
}


@pytest.fixture
def volume(data_dir, tmp_path):
    import medview

    folder = tmp_path / "ct"
    shutil.copytree(data_dir / CT_3SLICE, folder)
    return medview.load(folder)


@pytest.fixture
def state(volume):
    s = ViewerState()
    s.set_volume(volume)
    return s


@pytest.mark.parametrize("plane", PLANES)
def test_every_kind_round_trips_through_the_annotation(state, volume, plane):
    g = state.geometry(plane)
    k = 1
    for kind, pts in SHAPES.items():
        m = Measurement(kind, plane, k, pts[0], pts[-1], points=tuple(pts),
                        label="a note" if kind == "text" else "")
        ann = annotation_of(m, volume, g)
        assert ann is not None and ann.kind == kind and m.uid == ann.uid
        # the patient positions of the display points
        lps = [volume.index_to_lps(g.display_to_index(u, v, k)) for u, v in pts]
        assert np.allclose(ann.points, lps, atol=1e-3) or kind == "ellipse"
        back = measurement_of(ann, volume, {p: state.geometry(p) for p in PLANES},
                              (plane,))
        assert back is not None and (back.plane, back.slice_index) == (plane, k)
        assert np.allclose(back.shape_points(), [g.index_to_display(
            volume.lps_to_index(p)) for p in ann.points], atol=1e-3)
        assert annotation_of(back, volume, g) == ann  # the same annotation again
    # values: a distance's length, an angle's degrees
    dist = annotation_of(Measurement("distance", plane, k, (0.5, 0.5), (100.5, 0.5)),
                         volume, g)
    pw, _ = g.pixel_mm
    assert dist.value("length").value == pytest.approx(100 * pw, rel=1e-5)
    assert annotation_text(dist) == f"{100 * pw:.1f} mm"


def test_an_angle_measures_and_unfinished_shapes_are_not_saved(state, volume):
    g = state.geometry("axial")
    right = Measurement("angle", "axial", 0, (0, 0), (0, 0),
                        points=((10.5, 110.5), (10.5, 10.5), (110.5, 10.5)))
    assert annotation_text(annotation_of(right, volume, g)) == "90.0°"
    for m in (Measurement("angle", "axial", 0, (1, 1), (5, 5), points=((1, 1), (5, 5))),
              Measurement("polygon", "axial", 0, (1, 1), (5, 5), points=((1, 1), (5, 5))),
              Measurement("distance", "axial", 0, (3, 3), (3, 3)),
              Measurement("text", "axial", 0, (3, 3), (3, 3))):
        assert annotation_of(m, volume, g) is None, m.kind
    state.add_measurement(Measurement("distance", "axial", 0, (3, 3), (3, 3)))
    assert state.annotations() == []


def test_an_annotation_in_no_views_slice_is_kept_and_saved_back(state, volume):
    between = make_annotation("distance", [volume.index_to_lps((10, 10, 0)),
                                           volume.index_to_lps((50, 60, 2))], volume=volume)
    on_slice = make_annotation("arrow", [volume.index_to_lps((10, 10, 2)),
                                         volume.index_to_lps((50, 60, 2))], label="here",
                               volume=volume, slice_index=2)
    assert state.set_annotations([between, on_slice]) == 1
    assert state.kept_annotations == (between,)
    (m,) = state.measurements
    assert (m.plane, m.slice_index, m.label) == ("axial", 2, "here")
    assert state.annotations() == [between, on_slice]


def test_key_images_mark_unmark_and_jump(state):
    work = UnsavedWork(state)
    events = []
    state.key_images_changed.connect(lambda: events.append("key"))
    state.set_slice(2)
    assert state.toggle_key_image() and state.toggle_key_image(0)
    assert state.key_slices == (2, 0) and work.kinds == ["key_images"]
    assert state.step_key_image(+1) == 0  # from 2: wraps to the first
    assert state.step_key_image(+1) == 2
    assert state.step_key_image(-1) == 0
    assert not state.toggle_key_image(0) and state.key_slices == (2,)
    assert events == ["key"] * 3
    with pytest.raises(ValueError, match="slice 7"):
        state.toggle_key_image(7)
    state.set_key_slices([1, 9, 1])  # read from a document: outside and repeats left out
    assert state.key_slices == (1,)
    state.set_volume(None)
    assert state.key_slices == ()


def test_the_session_saves_with_the_study_and_a_new_session_reads_it(data_dir, tmp_path):
    folder = tmp_path / "ct"
    shutil.copytree(data_dir / CT_3SLICE, folder)
    catalog = tmp_path / "catalog.sqlite"
    session = Session(catalog)
    try:
        from medview.app import library

        library.import_paths(session.catalog, [folder])
        (uid,) = [s.uid for s in session.catalog.series()]
        volume = library.load_series(session.catalog, uid)
        state = ViewerState()
        state.set_volume(volume)
        g = state.geometry("axial")
        for kind, pts in SHAPES.items():
            pts = [(u, v * 100) for u, v in pts]  # on the axial slice's 512 rows
            state.add_measurement(Measurement(kind, "axial", 1, pts[0], pts[-1],
                                              points=tuple(pts), label="note"))
        state.toggle_key_image(1)
        recorder = Recorder(session)
        drawn = state.annotations()
        saved = session.save_annotations(volume, drawn, key_slices=state.key_slices)
        assert recorder.of("annotations_saved") == [(saved.paths,)] and len(saved.paths) == 2
        assert saved.report.name.startswith("SR") and saved.key_images.name.startswith("KO")
        assert set(session.series_documents(uid)) == set(saved.paths)
    finally:
        session.close()
    again = Session(catalog)  # a restart
    try:
        stored = again.load_annotations(volume)
        assert stored.annotations == tuple(drawn) and stored.key_slices == (1,)
        state2 = ViewerState()
        state2.set_volume(volume)
        state2.set_annotations(stored.annotations)
        assert state2.annotations() == drawn
        assert [m.kind for m in state2.measurements] == list(SHAPES)
        assert g == state2.geometry("axial")
        # a moved annotation keeps its identity in the next save
        m = state2.measurements[0]
        state2.update_measurement(m, (m.p1[0] + 10, m.p1[1]))
        moved = state2.annotations()[0]
        assert moved.uid == drawn[0].uid and moved != drawn[0]
        a, b = (volume.index_to_lps(g.display_to_index(u, v, 1)) for u, v in (m.p0, m.p1))
        assert moved.value("length").value == pytest.approx(np.linalg.norm(b - a), abs=1e-3)
        assert moved.value("length").value != pytest.approx(drawn[0].value("length").value)
        # None leaves the saved annotations; none at all clears them (and keeps the KOS)
        assert again.save_annotations(volume, None).paths == []
        cleared = again.save_annotations(volume, [])
        assert cleared.report is not None and cleared.key_images is None
        assert again.load_annotations(volume).annotations == ()
        assert again.load_annotations(volume).key_slices == (1,)
        assert again.save_annotations(volume, []).paths == []  # nothing left to clear
    finally:
        again.close()


def test_a_point_goes_back_to_the_view_it_was_drawn_on(state, volume):
    """A text is one point: it lies in every view. Drawn on the acquired plane it names its
    image (and goes back there); drawn on a reformat it names none (and goes back to a
    reformat)."""
    from medview.app.annotation_model import place_annotations

    geometries = {p: state.geometry(p) for p in PLANES}
    on_axial = annotation_of(Measurement("text", "axial", 1, (30.5, 40.5), (30.5, 40.5),
                                         label="axial note"), volume, geometries["axial"])
    on_coronal = annotation_of(Measurement("text", "coronal", 200, (30.5, 1.5), (30.5, 1.5),
                                           label="coronal note"), volume,
                               geometries["coronal"])
    assert on_axial.sop_instance_uid and not on_coronal.sop_instance_uid
    placed, kept = place_annotations([on_axial, on_coronal], volume, geometries, "axial")
    assert kept == [] and [(m.plane, m.slice_index) for m in placed] == [("axial", 1),
                                                                         ("coronal", 200)]


def test_the_measurements_table_holds_every_kind(state, volume):
    from medview.app.measurements import measurements_table

    for kind, pts in SHAPES.items():
        pts = [(u, v * 100) for u, v in pts]
        state.add_measurement(Measurement(kind, "axial", 1, pts[0], pts[-1], points=tuple(pts),
                                          label="note" if kind == "text" else ""))
    geometries = {p: state.geometry(p) for p in PLANES}
    rows = {r["kind"]: r for r in measurements_table(volume, geometries,
                                                      state.measurements).rows}
    saved = {a.kind: a for a in state.annotations()}
    assert rows["angle"]["angle_deg"] == pytest.approx(saved["angle"].value("angle").value)
    assert rows["polygon"]["area_mm2"] == pytest.approx(saved["polygon"].value("area").value)
    assert rows["polygon"]["mean"] == pytest.approx(saved["polygon"].value("mean").value)
    assert rows["text"]["label"] == "note"
    assert rows["arrow"]["p1_lps_mm"] == pytest.approx(list(saved["arrow"].points[1]),
                                                       abs=1e-3)


def test_a_background_save_and_a_save_refused_whole(data_dir, tmp_path):
    """A CT filled at load: a made-up slice as a key image refuses the whole save before
    anything is written; a save in the background announces its files."""
    from medview.app import library
    from medview.dicom.export._common import ExportError

    session = Session(tmp_path / "catalog.sqlite")
    try:
        library.import_paths(session.catalog, [data_dir / "kits_dupe_positions"])
        (uid,) = [s.uid for s in session.catalog.series()]
        vol = library.load_series(session.catalog, uid)
        made_up = sorted(int(z) for z, _ in vol.metadata["made_up_slices"])
        acquired = [z for z in range(vol.shape[0]) if z not in made_up]
        ann = make_annotation("distance", [vol.index_to_lps((10, 10, acquired[2])),
                                           vol.index_to_lps((90, 40, acquired[2]))],
                              volume=vol, slice_index=acquired[2])
        with pytest.raises(ExportError, match=rf"slice\(s\) \[{made_up[0] + 1}\]"):
            session.save_annotations(vol, [ann], key_slices=[made_up[0]])
        assert session.catalog.documents(uid) == []
        recorder = Recorder(session)
        job = session.start_saving_annotations(vol, [ann], key_slices=[acquired[2]])
        assert job.title == "Saving the annotations" and session.runner.wait(60)
        (paths,) = recorder.of("annotations_saved")[0]
        assert {d.path for d in session.catalog.documents(uid)} == {str(p) for p in paths}
        stored = session.load_annotations(vol)
        assert stored.annotations == (ann,) and stored.key_slices == (acquired[2],)
    finally:
        session.close()

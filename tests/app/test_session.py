"""The Session without Qt: import, progressive open, cache, cancel, label maps, editing with
undo, fuse/classify/chain through the registered steps, export; every event it emits."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from session_helpers import (
    MR,
    MR_OTHER,
    copy_series,
    import_and_wait,
    session_fixture,  # noqa: F401 - the fixture session_parts
)

import medview
from medview.app.exporting import Exportable
from medview.core.labelmap import LabelMap


def _block_the_runner(session):
    """Occupy every worker of the session's runner until the returned event is set, so that
    a job started next is still waiting when it is cancelled."""
    release = threading.Event()
    for _ in range(2):
        session.runner.start("blocker", lambda progress: release.wait(60))
    return release


@pytest.fixture
def mr_session(session_parts, data_dir, tmp_path):
    """The session with the decubitus MR imported; its series UID."""
    session, queue, recorder = session_parts
    folder = copy_series(data_dir, MR, tmp_path / "mr")
    job = import_and_wait(session, queue, folder)
    uid = job.result.series_uids[0]
    return session, queue, recorder, uid, folder


def _open_and_wait(session, queue, recorder, uid):
    session.open_series(uid)
    queue.run_until(lambda: recorder.of("series_loaded") or recorder.of("series_failed"),
                    timeout=120)
    (got_uid, stack, result, cached), = recorder.of("series_loaded")
    assert got_uid == uid and stack is None
    return result, cached


# -- import ----------------------------------------------------------------------------
def test_import_reports_a_corrupt_file_by_path_and_imports_the_rest(session_parts, data_dir,
                                                                    tmp_path):
    session, queue, recorder = session_parts
    folder = copy_series(data_dir, MR, tmp_path / "mr")
    n_files = len(list(folder.glob("*.dcm")))
    corrupt = folder / "0099_corrupt.dcm"
    corrupt.write_bytes(b"\0" * 128 + b"DICM" + b"\x02\x00\x10\x00UI\xff\x7fbroken")
    job = import_and_wait(session, queue, folder)

    assert recorder.of("job_started") == [(job,)]
    (result,), = recorder.of("import_finished")
    assert [str(corrupt)] == [p for p, _reason in result.errors]
    assert len(result.series_uids) == 1
    (patient,) = session.patients()
    (series,) = patient.studies[0].series
    assert series.series_uid == result.series_uids[0] and series.image_count == n_files
    assert session.import_job is None


def test_an_import_of_a_missing_folder_fails_naming_it(session_parts, tmp_path):
    session, queue, recorder = session_parts
    job = import_and_wait(session, queue, tmp_path / "nowhere")
    (error,), = recorder.of("import_failed")
    assert job.outcome == "failed"
    assert str(tmp_path / "nowhere") in error.message


def test_a_cancelled_import_says_so_and_only_one_import_runs_at_a_time(session_parts,
                                                                       data_dir, tmp_path):
    session, queue, recorder = session_parts
    release = _block_the_runner(session)
    job = session.import_paths(data_dir / MR)
    assert session.import_paths(data_dir / MR) is None  # one at a time
    job.cancel()
    release.set()
    queue.run_until(lambda: job.is_done)
    assert recorder.of("import_cancelled") == [()]
    assert recorder.of("import_finished") == []


# -- opening ---------------------------------------------------------------------------
def test_a_series_opens_progressively_and_equals_medview_load(mr_session, data_dir):
    session, queue, recorder, uid, folder = mr_session
    result, cached = _open_and_wait(session, queue, recorder, uid)

    names = recorder.names()
    assert names.index("series_first_image") < names.index("series_loaded")
    assert "series_progress" in names
    (first,), = recorder.of("series_first_image")
    assert first.shown.is_set()  # no listener draws it: the reader went on at once
    fractions = [f for f, _m in recorder.of("series_progress")]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    want = medview.load(folder)
    assert not cached and result.complete
    np.testing.assert_array_equal(result.volume.array, want.array)
    assert result.volume.spacing == want.spacing and result.volume.origin == want.origin
    np.testing.assert_array_equal(result.volume.direction, want.direction)
    assert first.volume is result.volume  # the one shown first is the one filled in


def test_reopening_a_series_comes_from_the_cache(mr_session):
    session, queue, recorder, uid, _ = mr_session
    loaded, _ = _open_and_wait(session, queue, recorder, uid)
    assert uid in session.cache
    recorder.events.clear()
    assert session.open_series(uid) is None  # no job: at once
    (got_uid, _stack, result, cached), = recorder.of("series_loaded")
    assert cached and got_uid == uid
    assert result.volume is loaded.volume
    assert session.cached_volume(uid) is loaded.volume


def test_the_cache_evicts_the_least_recently_used_beyond_its_cap(mr_session, data_dir,
                                                                 tmp_path):
    session, queue, recorder, uid, _ = mr_session
    other_job = import_and_wait(session, queue, copy_series(data_dir, MR_OTHER, tmp_path / "o"))
    other = other_job.result.series_uids[0]
    first, _ = _open_and_wait(session, queue, recorder, uid)
    # room for one of the two series only
    session.set_cache_cap(int(first.volume.nbytes * 1.5))
    assert recorder.of("cache_cap_changed") == [(int(first.volume.nbytes * 1.5),)]
    recorder.events.clear()
    _open_and_wait(session, queue, recorder, other)
    assert session.cache.keys() == [other]
    assert session.cache.evicted == [uid]
    recorder.events.clear()
    assert session.open_series(uid) is not None  # read again, not from the cache
    queue.run_until(lambda: recorder.of("series_loaded"), timeout=120)
    assert recorder.of("series_loaded")[0][3] is False
    session.set_cache_cap(0)
    assert len(session.cache) == 0


def test_cancelling_an_open_keeps_nothing_and_says_so(mr_session):
    session, queue, recorder, uid, _ = mr_session
    session.first_paint_by_listener = True  # the worker waits for the "drawing"
    session.series_first_image.connect(lambda first: session.cancel_open())
    job = session.open_series(uid)
    queue.run_until(lambda: job.is_done, timeout=60)
    assert recorder.of("series_cancelled") == [(uid, False)]
    assert recorder.of("series_loaded") == []
    assert uid not in session.cache and session.load_job is None


def test_opening_another_series_supersedes_the_one_loading(mr_session, data_dir, tmp_path):
    session, queue, recorder, uid, _ = mr_session
    other = import_and_wait(session, queue, copy_series(data_dir, MR_OTHER, tmp_path / "o")
                            ).result.series_uids[0]
    release = _block_the_runner(session)
    first_job = session.open_series(uid)
    assert session.open_series(uid) is first_job  # a second double-click lets it go on
    session.open_series(other)
    assert recorder.of("series_cancelled") == [(uid, True)]
    release.set()
    queue.run_until(lambda: recorder.of("series_loaded"), timeout=120)
    assert [a[0] for a in recorder.of("series_loaded")] == [other]


def test_a_series_that_cannot_be_opened_fails_with_a_message(mr_session):
    session, queue, recorder, _uid, _ = mr_session
    session.open_series("1.2.3.4.not.in.the.catalog")
    queue.run_until(lambda: recorder.of("series_failed"), timeout=60)
    (error,), = recorder.of("series_failed")
    assert "1.2.3.4.not.in.the.catalog" in error.message


# -- label maps and editing ------------------------------------------------------------
def test_label_edits_undo_and_redo_belong_to_the_viewer_state(mr_session):
    """The one owner of label editing is the ViewerState (the Session has no editor): a
    stroke, a fill, undo and redo change the shown map and are announced there."""
    from medview.app.state import ViewerState

    session, queue, recorder, uid, _ = mr_session
    assert not hasattr(session, "edit_labels") and not hasattr(session, "undo")
    volume = _open_and_wait(session, queue, recorder, uid)[0].volume
    state = ViewerState()
    state.set_volume(volume)
    labels = LabelMap.like(volume, np.zeros(volume.shape, np.uint8))
    state.set_labels(labels)
    events = []
    state.labels_changed.connect(lambda: events.append("labels"))
    state.edit_changed.connect(lambda: events.append("edit"))
    geometry = state._geometries["axial"]
    axis = 2 - geometry.normal  # the array axis ([z, y, x]) across this view
    k = state.cursor[geometry.normal]
    state.set_paint_label(2)
    state.begin_edit("paint")
    n = state.paint("axial", (2.0, 2.0), (6.0, 2.0))
    state.end_edit()
    painted = state.labels.array.copy()
    assert n > 0 and int((painted == 2).sum()) == n
    assert set(np.nonzero(painted)[axis].tolist()) == {k}  # on the view's slice only
    assert events == ["labels", "edit"]
    state.set_paint_label(1)
    filled = state.fill("axial", (geometry.width - 2.0, geometry.height - 2.0))
    assert filled > 0 and int((state.labels.array == 1).sum()) == filled

    assert state.undo()
    np.testing.assert_array_equal(state.labels.array, painted)
    assert state.undo()
    assert not state.labels.array.any()
    assert not state.undo()  # nothing left
    assert state.redo()
    np.testing.assert_array_equal(state.labels.array, painted)
    assert events.count("labels") == 5  # paint, fill, undo, undo, redo


def test_export_is_atomic_and_a_label_map_reopens(mr_session, tmp_path):
    session, queue, recorder, uid, _ = mr_session
    volume = _open_and_wait(session, queue, recorder, uid)[0].volume
    array = np.zeros(volume.shape, np.uint8)
    array[2:5, 10:20, 10:30] = 3
    labels = LabelMap.like(volume, array)
    target = tmp_path / "out" / "labels.nii.gz"
    item = Exportable("Label map", "labels", labels, volume)
    job = session.export(item, "nifti", target)
    queue.run_until(lambda: job.is_done, timeout=60)
    (written,), = recorder.of("exported")
    assert target in written and target.is_file()
    opened = session.open_label_map(target)
    np.testing.assert_array_equal(opened.array, array)
    assert recorder.of("label_map_opened") == [(opened, str(target))]

    # a failing export: the target is a folder, found only when the file is placed
    blocked = tmp_path / "blocked"
    (blocked / "series.nii.gz").mkdir(parents=True)
    job = session.export(Exportable("Series", "volume", volume, volume), "nifti",
                         blocked / "series.nii.gz", overwrite=True)
    queue.run_until(lambda: job.is_done, timeout=60)
    (error,), = recorder.of("export_failed")
    assert "series.nii.gz" in error.message or "series.nii.gz" in error.traceback
    assert sorted(p.name for p in blocked.iterdir()) == ["series.nii.gz"]
    assert not any((blocked / "series.nii.gz").iterdir())  # nothing half-written anywhere

    image = _write_image(tmp_path, volume)
    with pytest.raises(ValueError, match="non-integer"):
        session.open_label_map(image)
    assert len(recorder.of("label_map_opened")) == 1


def _write_image(tmp_path, volume):
    from medview.formats.volume_io import write_volume

    path = tmp_path / "image.nii.gz"
    write_volume(volume.with_array(volume.array.astype(np.float32) + 0.5), path)
    return path


def test_a_cancelled_export_writes_nothing(mr_session, tmp_path):
    session, queue, recorder, uid, _ = mr_session
    volume = _open_and_wait(session, queue, recorder, uid)[0].volume
    release = _block_the_runner(session)
    job = session.export(Exportable("Series", "volume", volume, volume), "nifti",
                         tmp_path / "never.nii.gz")
    job.cancel()
    release.set()
    queue.run_until(lambda: job.is_done, timeout=60)
    assert recorder.of("export_cancelled") == [()]
    assert not (tmp_path / "never.nii.gz").exists()
    assert session.export_job is None


def test_a_series_exports_to_a_volume_file_and_is_removed_from_the_catalog(mr_session,
                                                                           tmp_path):
    session, queue, recorder, uid, folder = mr_session
    _open_and_wait(session, queue, recorder, uid)
    target = tmp_path / "series.nii.gz"
    job = session.export_series(uid, target)
    assert session.export_series(uid, tmp_path / "other.nii.gz") is None  # one at a time
    queue.run_until(lambda: job.is_done, timeout=120)
    assert recorder.of("series_exported") == [(target,)]
    from medview.formats.volume_io import read_volume

    np.testing.assert_array_equal(read_volume(target).array, medview.load(folder).array)

    bad = session.export_series(uid, tmp_path / "no-such-format.xyz")
    queue.run_until(lambda: bad.is_done, timeout=60)
    (error,), = recorder.of("series_export_failed")
    assert "no-such-format.xyz" in error.message
    assert not (tmp_path / "no-such-format.xyz").exists()

    release = _block_the_runner(session)
    cancelled = session.export_series(uid, tmp_path / "never.nii.gz")
    session.cancel_all()
    release.set()
    queue.run_until(lambda: cancelled.is_done, timeout=60)
    assert recorder.of("series_export_cancelled") == [()]
    assert not (tmp_path / "never.nii.gz").exists()

    n = session.remove_series(uid)
    assert n == len(list(folder.glob("*.dcm")))
    assert recorder.of("series_removed") == [(uid, n)]
    assert session.patients() == [] and uid not in session.cache


def test_every_session_event_is_checked_by_a_test(session_parts):
    """A new event of the Session comes with a test here that waits for it or checks its
    arguments (``recorder.of("name")``, ``recorder.names()``)."""
    from pathlib import Path

    _session, _queue, recorder = session_parts
    text = "".join(p.read_text() for p in Path(__file__).parent.glob("test_session*.py"))
    checked = {name for name in recorder.signals
               if f'of("{name}")' in text or f'"{name}")' in text or f'"{name}"' in text}
    assert sorted(set(recorder.signals) - checked) == []
    assert len(recorder.signals) >= 25

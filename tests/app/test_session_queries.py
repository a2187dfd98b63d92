"""What moved from the window into the Session (issue 16): the SEG's reference and reading,
the catalog queries of the tag browser, the failed-files list and the share sources, a
chain's run with its display windows and its live preview, and a de-identified share."""

from __future__ import annotations

import shutil

import numpy as np
import pydicom
import pytest
from session_helpers import (
    import_and_wait,
    session_fixture,  # noqa: F401 - the fixture session_parts
)

from medview.core.labelmap import LabelMap
from medview.pipeline.chain import Chain

CT = "dcmqi_seg/data/segmentations/ct-3slice"
SEG = "dcmqi_seg/data/segmentations/liver.dcm"


def _uids(session) -> dict[str, str]:
    return {s.modality: s.series_uid for p in session.patients() for st in p.studies
            for s in st.series}


def _wait_for(queue, recorder, name, timeout=180):
    queue.run_until(lambda: recorder.of(name) or recorder.of("action_failed"),
                    timeout=timeout)
    assert not recorder.of("action_failed"), recorder.of("action_failed")
    (args,) = recorder.of(name)
    return args


@pytest.fixture
def ct_session(session_parts, data_dir):
    """The session with the 3-slice liver CT and its SEG imported, the CT open."""
    session, queue, recorder = session_parts
    import_and_wait(session, queue, [data_dir / CT, data_dir / SEG])
    uids = _uids(session)
    session.open_series(uids["CT"])
    queue.run_until(lambda: recorder.of("series_loaded"), timeout=120)
    volume = recorder.of("series_loaded")[0][2].volume
    recorder.events.clear()
    return session, queue, recorder, volume, uids


# -- the SEG ---------------------------------------------------------------------------
def test_a_seg_names_its_source_series_and_is_read_through_its_reference(ct_session):
    session, queue, recorder, volume, uids = ct_session
    assert session.is_seg(uids["SEG"]) and not session.is_seg(uids["CT"])
    ref = session.seg_reference(uids["SEG"])
    assert ref.referenced_uid == uids["CT"] and ref.source_in_catalog
    assert ref.path.name == "liver.dcm"
    job = session.read_seg(ref, volume)
    labels, note = _wait_for(queue, recorder, "seg_read")
    assert job.result == (labels, note)  # the job's own result, for the one who asked
    assert labels.array.shape == volume.shape and note == ""
    assert [s.name.lower() for s in labels.segments] == ["liver"]
    assert "liver" in job.title.lower() or ref.description in job.title


def test_a_seg_without_its_source_in_the_catalog_says_so(session_parts, data_dir):
    session, queue, _recorder = session_parts
    import_and_wait(session, queue, [data_dir / SEG])
    [uid] = _uids(session).values()
    ref = session.seg_reference(uid)
    assert not ref.source_in_catalog and ref.referenced_uid  # the UID to import, named


def test_the_seg_questions_need_a_catalog_series_that_is_a_seg(ct_session):
    session = ct_session[0]
    with pytest.raises(ValueError, match="has no files"):
        session.seg_reference("1.2.3.4.not.in.the.catalog")
    assert not session.is_seg("1.2.3.4.not.in.the.catalog")


# -- catalog queries -------------------------------------------------------------------
def test_instance_paths_are_in_instance_number_order(ct_session, data_dir):
    session, _queue, _recorder, _volume, uids = ct_session
    paths = session.instance_paths(uids["CT"])
    assert sorted(p.name for p in paths) == sorted(p.name for p in (data_dir / CT).iterdir()
                                                   if p.is_file())
    numbers = [int(pydicom.dcmread(p, stop_before_pixels=True).InstanceNumber) for p in paths]
    assert numbers == sorted(numbers) and len(numbers) == 3
    study = pydicom.dcmread(paths[0], stop_before_pixels=True).StudyInstanceUID
    study_files = session.study_paths(str(study))
    assert set(paths) < set(study_files)  # the SEG of the same study too
    assert any(p.name == "liver.dcm" for p in study_files)


def test_failed_files_name_the_unreadable_file_and_why(session_parts, data_dir, tmp_path):
    session, queue, _recorder = session_parts
    folder = tmp_path / "in"
    shutil.copytree(data_dir / CT, folder)
    broken = folder / "broken.dcm"
    broken.write_bytes(b"\0" * 128 + b"DICM" + b"\x02\x00\x10\x00UI\xff\xff")  # cut short
    assert session.failed_files() == []
    import_and_wait(session, queue, folder)
    failed = session.failed_files()
    assert [path for path, _reason in failed] == [str(broken)]
    assert failed[0][1]  # the reason


# -- the chain -------------------------------------------------------------------------
def test_a_chain_run_gives_its_values_with_their_windows(ct_session):
    from medview.app.windowing import auto_window, default_window
    from medview.core.filters import smoothing
    from medview.core.segmentation import intensity as segmentation

    session, queue, recorder, volume, _ = ct_session
    chain = Chain.from_dict({"name": "two", "inputs": {"volume": "volume"}, "steps": [
        {"step": "smooth.gaussian", "version": 1, "params": {"sigma_mm": 1.5},
         "output": "smoothed"},
        {"step": "enhance.gamma", "version": 1, "params": {}, "output": "gamma"},
        {"step": "segment.threshold", "version": 1,
         "params": {"low": 0.0, "high": 200.0}, "inputs": {"volume": "smoothed"},
         "output": "mask"}]})
    job = session.run_chain(chain, {"volume": volume})
    assert "Local" in job.title
    (run,) = _wait_for(queue, recorder, "chain_finished")
    smoothed = smoothing.gaussian(volume, sigma_mm=1.5)
    assert set(run.values) == {"smoothed", "gamma", "mask"}  # the input left out
    np.testing.assert_array_equal(run.values["smoothed"].array, smoothed.array)
    mask = segmentation.threshold_manual(smoothed, low=0.0, high=200.0)
    np.testing.assert_array_equal(np.asarray(run.values["mask"].array), np.asarray(mask.array))
    # in the series' units: its default window; another image: its 1-99 % window; a label
    # map: none
    assert run.windows["smoothed"] == default_window(run.values["smoothed"])
    assert run.windows["gamma"] == auto_window(run.values["gamma"].array)
    assert isinstance(run.values["mask"], LabelMap) and run.windows["mask"] is None
    assert run.main_output == "mask" and set(run.seconds) >= {"smoothed", "mask"}


def test_a_chain_preview_runs_one_slice_here_without_a_session_event(ct_session):
    from medview.app.chain_preview import run_preview

    session, queue, recorder, volume, _ = ct_session
    session.run_on.choose("Local")
    chain = Chain.from_dict({"name": "g", "inputs": {"volume": "volume"}, "steps": [
        {"step": "enhance.gamma", "version": 1, "params": {}}]})
    job = session.preview_chain(chain, {"volume": volume}, 1)
    queue.run_until(lambda: job.is_done, timeout=60)
    result, levels = job.result
    want = run_preview(chain, {"volume": volume}, 1)
    assert result.z == 1 and result.kind == "image"
    np.testing.assert_array_equal(result.image, want.image)
    assert levels is not None and levels[0] < levels[1]  # gamma leaves the series' units
    assert recorder.of("job_started") == [] and recorder.of("chain_finished") == []


# -- share -----------------------------------------------------------------------------
def test_a_share_writes_a_de_identified_copy_and_one_audit_line(ct_session, tmp_path):
    from medview.audit import read_audit

    session, queue, recorder, _volume, uids = ct_session
    files = session.instance_paths(uids["CT"])
    with pytest.raises(ValueError, match="destination or a node_name"):
        session.share(files, project="p")
    session.share(files, project="trial-1", destination=tmp_path / "out")
    (report,) = _wait_for(queue, recorder, "shared")
    written = sorted((tmp_path / "out").glob("PT*/ST*/SE*/IM*"))  # a DICOMDIR layout
    assert report.instances == 3 and len(written) == 3
    original = pydicom.dcmread(files[0], stop_before_pixels=True)
    for path in written:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        assert ds.PatientName != original.PatientName
        assert ds.SeriesInstanceUID != original.SeriesInstanceUID
    lines = [line for line in read_audit() if line.action == "share"]
    assert [line.series_uid for line in lines] == [uids["CT"]]

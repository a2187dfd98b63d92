"""Series side by side (medview.app.compare, compare_jobs; medview.dicom.catalog.priors):
synchronised panes land on the same patient position, on real series.

- The Philips phantom study: the tilted head CT (S2010) and its sagittal localizer (S1000)
  share one Frame of Reference: linked by position.
- The decubitus MR: the same head scanned supine (HFS) and decubitus (HFDL), two studies of
  one patient in different frames of reference: linked by a rigid registration (the
  registered step on the Session's executor) or by an offset set by hand.
"""

from __future__ import annotations

import numpy as np
import pytest
from realparts import require
from session_helpers import (
    import_and_wait,
    session_fixture,  # noqa: F401 - the fixture session_parts
)

import medview
from medview.app.compare import Comparison
from medview.app.compare_jobs import cached_registration, open_in_pane, register_pane
from medview.app.windowing import auto_window

PHILIPS = "dcm_qa_ct/In/Philips/S21610"
HFS = "dcm_qa_decubitus/In/HFS"
HFDL = "dcm_qa_decubitus/In/HFDL"


@pytest.fixture(scope="module")
def philips(data_dir):
    require((data_dir / PHILIPS).is_dir(), f"the Philips phantom study at {data_dir / PHILIPS}")
    return (medview.load(data_dir / PHILIPS / "S2010"),
            medview.load(data_dir / PHILIPS / "S1000"))


@pytest.fixture(scope="module")
def decubitus(data_dir):
    require((data_dir / HFS).is_dir(), f"the decubitus MR at {data_dir / HFS}")
    return medview.load(data_dir / HFS), medview.load(data_dir / HFDL)


def _in_plane_offset(volume, a, b) -> np.ndarray:
    """``b - a`` (LPS mm) projected on the voxel x and y axes of ``volume`` (mm along each)."""
    d = np.asarray(volume.direction, dtype=float)
    return np.array([d[:, 0] @ (b - a), d[:, 1] @ (b - a)])


def test_same_frame_links_by_position_and_lands_on_the_same_place(philips):
    ct, scout = philips
    comparison = Comparison(2)
    comparison.show(0, ct)
    comparison.show(1, scout)
    assert comparison.panes[1].link.mode == "position"
    ref, other = comparison.panes
    # scroll the CT: the localizer's crosshair follows to the same place in its plane
    for z in (5, 27, 40):
        ref.state.set_slice(z)
        assert ref.state.slice_index == z
        p = ref.state.cursor_lps()
        q = other.state.cursor_lps()
        dx, dy = _in_plane_offset(scout, p, q)
        sx, sy = scout.spacing[:2]
        assert abs(dx) <= sx / 2 + 1e-6 and abs(dy) <= sy / 2 + 1e-6, (z, dx, dy)
    # and back: a point picked on the localizer moves the CT to it (inside the CT)
    target = ct.index_to_lps((256.0, 300.0, 20.0))
    other.state.set_cursor_lps(target)
    picked = other.state.cursor_lps()
    assert np.linalg.norm(ref.state.cursor_lps() - picked) <= 0.5 * np.linalg.norm(
        np.asarray(ct.spacing)) + 1e-6
    assert ref.state.slice_index != 40  # it did move


def test_other_frames_are_not_linked_until_registered_or_linked_here(decubitus):
    hfs, hfdl = decubitus
    comparison = Comparison(2)
    comparison.show(0, hfs)
    comparison.show(1, hfdl)
    pane = comparison.panes[1]
    assert pane.link.mode == "off" and "frame of reference" in pane.link.note
    with pytest.raises(ValueError, match="different frames of reference"):
        comparison.set_mode(1, "position")
    with pytest.raises(ValueError, match="register first"):
        comparison.set_mode(1, "registration")
    before = pane.state.cursor
    comparison.reference.state.step_slice(3)
    assert pane.state.cursor == before  # off: the other pane stays


def test_link_here_keeps_the_offset_set_once(decubitus):
    hfs, hfdl = decubitus
    comparison = Comparison(2)
    comparison.show(0, hfs)
    comparison.show(1, hfdl)
    ref, pane = comparison.panes
    ref.state.set_cursor(128, 120, 17)
    pane.state.set_cursor(140, 110, 15)  # the same anatomy, as the reader judged it
    comparison.link_here(1)
    assert pane.link.mode == "offset"
    start_ref, start_pane = ref.state.cursor_lps(), pane.state.cursor_lps()
    ref.state.step_slice(-6)
    moved = ref.state.cursor_lps() - start_ref
    assert np.linalg.norm(moved) > 20  # six 4.8 mm slices
    np.testing.assert_allclose(pane.state.cursor_lps() - start_pane, moved, atol=0.6)
    assert pane.state.slice_index == 15 - 6
    comparison.set_mode(1, "off")
    ref.state.step_slice(2)
    assert pane.state.slice_index == 15 - 6


def test_registration_runs_on_the_session_and_is_cached_per_pair(session_parts, data_dir):
    session, queue, recorder = session_parts
    import_and_wait(session, queue, [data_dir / HFS, data_dir / HFDL])
    uids = {}
    for patient in session.patients():
        for study in patient.studies:
            for series in study.series:
                uids[series.series_uid] = series
    hfs_uid = next(u for u in uids if "HFS" in str(session.catalog.instances(u)[0].path))
    hfdl_uid = next(u for u in uids if u != hfs_uid)
    comparison = Comparison(2)
    jobs = [open_in_pane(session, comparison, 0, hfs_uid),
            open_in_pane(session, comparison, 1, hfdl_uid)]
    queue.run_until(lambda: all(j is None or j.is_done for j in jobs), timeout=120)
    queue.drain()
    ref, pane = comparison.panes
    assert ref.series_uid == hfs_uid and pane.series_uid == hfdl_uid
    assert pane.link.mode == "off"

    job = register_pane(session, comparison, 1)
    assert job is not None and job.title.startswith("Registering")
    queue.run_until(lambda: job.is_done, timeout=300)
    queue.drain()
    assert not recorder.of("action_failed")
    assert pane.link.mode == "registration"
    m = cached_registration(session, hfs_uid, hfdl_uid)
    assert m is not None and m.shape == (4, 4)
    # the reverse pair is the inverse, without running again
    np.testing.assert_allclose(cached_registration(session, hfdl_uid, hfs_uid) @ m, np.eye(4),
                               atol=1e-9)

    # scrolling the reference moves the other pane to the registered position
    diag = 0.5 * np.linalg.norm(np.asarray(pane.volume.spacing))
    for z in (10, 17, 24):
        ref.state.set_cursor(128, 128, z)
        p = ref.state.cursor_lps()
        want = (m @ np.append(p, 1.0))[:3]
        assert np.linalg.norm(pane.state.cursor_lps() - want) <= diag + 1e-6
        assert comparison.distance_mm(0, 1) <= diag + 1e-6

    # the registration is right, not merely applied: the reference slice's voxels sampled
    # in the other series through it agree much better than through the identity
    vol0, vol1 = ref.volume, pane.volume
    z = 17
    ys, xs = np.mgrid[40:216:4, 40:216:4]
    ijk = np.stack([xs.ravel(), ys.ravel(), np.full(xs.size, z)], axis=1).astype(float)
    values0 = vol0.array[z, ys.ravel(), xs.ravel()].astype(float)

    def sampled(matrix):
        lps = np.array([vol0.index_to_lps(tuple(c)) for c in ijk])
        moved = (matrix @ np.c_[lps, np.ones(len(lps))].T).T[:, :3]
        idx = np.rint([vol1.lps_to_index(q) for q in moved]).astype(int)
        ok = np.all((idx >= 0) & (idx < np.array(vol1.shape[::-1])), axis=1)
        return ok, np.where(ok, vol1.array[np.clip(idx[:, 2], 0, vol1.shape[0] - 1),
                                            np.clip(idx[:, 1], 0, vol1.shape[1] - 1),
                                            np.clip(idx[:, 0], 0, vol1.shape[2] - 1)], 0)

    ok_r, reg = sampled(m)
    ok_i, ident = sampled(np.eye(4))
    corr_r = np.corrcoef(values0[ok_r], reg[ok_r])[0, 1]
    corr_i = np.corrcoef(values0[ok_i], ident[ok_i])[0, 1]
    assert corr_r > corr_i + 0.15, (corr_r, corr_i)

    # a second comparison of the same pair is linked at once, from the cache
    again = Comparison(2)
    open_in_pane(session, again, 0, hfs_uid)
    open_in_pane(session, again, 1, hfdl_uid)  # cached volume: linked on showing
    queue.drain()
    assert again.panes[1].link.mode == "registration"
    assert register_pane(session, again, 1) is None


def test_window_follows_within_a_modality_and_can_be_switched_off(decubitus):
    hfs, hfdl = decubitus
    comparison = Comparison(2)
    comparison.show(0, hfs)
    comparison.show(1, hfdl)
    ref, pane = comparison.panes
    comparison.link_here(1)
    ref.state.set_window(300.0, 500.0)
    assert pane.state.window == (300.0, 500.0)
    pane.state.set_window(200.0, 100.0)  # either pane leads
    assert ref.state.window == (200.0, 100.0)
    comparison.set_window_link(1, False)
    ref.state.set_window(310.0, 400.0)
    assert pane.state.window == (200.0, 100.0)
    # a layout rule's "auto" gives each series its own range, copied to no other pane
    comparison.set_window_link(1, True)
    comparison.set_own_window(0, "auto")
    comparison.set_own_window(1, "auto")
    assert ref.state.window != pane.state.window
    assert pane.state.window == pytest.approx(auto_window(hfdl.array))


def test_priors_are_the_same_patients_other_studies(session_parts, data_dir):
    from medview.dicom.catalog.priors import patient_series, prior_studies, series_facts

    session, queue, _ = session_parts
    import_and_wait(session, queue, [data_dir / HFS, data_dir / HFDL, data_dir / PHILIPS])
    cat = session.catalog
    by_path = {str(cat.instances(s.uid)[0].path): s.uid for s in cat.series()}
    hfs_uid = next(u for p, u in by_path.items() if "/HFS/" in p)
    hfdl_uid = next(u for p, u in by_path.items() if "/HFDL/" in p)
    facts = series_facts(cat, hfs_uid)
    assert (facts.modality, facts.body_part, facts.description) == ("MR", "BRAIN",
                                                                    "t1_fl2d_sag")
    assert facts.frame_of_reference_uid.endswith("138168.0.0.0")
    priors = prior_studies(cat, hfs_uid)
    assert [s.uid for study in priors.values() for s in study] == [hfdl_uid]
    assert facts.study_uid not in priors
    # the phantom (another patient) is not among them
    assert {s.patient_id for s in patient_series(cat, hfs_uid)} == {"crlab"}
    with pytest.raises(KeyError, match="not in the catalog"):
        series_facts(cat, "1.2.3.4")


def _off_plane_mm(state, plane: str, lps) -> tuple[float, float]:
    """How far patient position ``lps`` is from the slice view ``plane`` of ``state`` shows
    (mm, along the plane's voxel normal, through the pane's PlaneGeometry), and the allowed
    half voxel there. Fails when ``lps`` is not inside the view's image."""
    g, vol = state.geometry(plane), state.volume
    ijk = vol.lps_to_index(np.asarray(lps, dtype=float))
    u, v = g.index_to_display(ijk)
    assert -0.5 <= u <= g.width - 0.5 and -0.5 <= v <= g.height - 0.5, (plane, u, v)
    on_view = vol.index_to_lps(tuple(g.display_to_index(u, v, state.plane_slice(plane))))
    return float(np.linalg.norm(on_view - np.asarray(lps))), 0.5 * vol.spacing[g.normal]


def test_reformatted_views_of_one_frame_land_on_the_same_place(philips):
    """The tilted CT (acquired axial, sheared) and the sagittal localizer: scrolling a view
    of either on any plane puts the other's view of that plane through the same place."""
    ct, scout = philips
    comparison = Comparison(2)
    comparison.show(0, ct)
    comparison.show(1, scout)
    ref, other = comparison.panes
    assert other.state.native_plane == "sagittal" and ref.state.native_plane == "axial"
    ref.state.set_cursor(256, 256, 27)
    for plane in ("coronal", "axial"):  # the localizer's coronal and axial are reformatted
        shown = set()
        for k in (200, 260, 330) if plane == "coronal" else (10, 27, 45):
            ref.state.set_plane_slice(plane, k)
            assert ref.state.plane_slice(plane) == k
            off, allowed = _off_plane_mm(other.state, plane, ref.state.cursor_lps())
            assert off <= allowed + 1e-6, (plane, k, off, allowed)
            shown.add(other.state.plane_slice(plane))
        assert len(shown) == 3  # the localizer's view moved with each scroll
    # and back: scrolling the localizer's coronal reformat moves the CT's (sheared) coronal
    before = ref.state.plane_slice("coronal")
    other.state.set_plane_slice("coronal", other.state.plane_slice("coronal") - 20)
    assert ref.state.plane_slice("coronal") != before
    off, allowed = _off_plane_mm(ref.state, "coronal", other.state.cursor_lps())
    assert off <= allowed + 1e-6, (off, allowed)


@pytest.fixture(scope="module")
def registered(decubitus):
    from medview.pipeline.executors import LocalExecutor, run_step_on

    hfs, hfdl = decubitus
    out = run_step_on(LocalExecutor(), "fuse.register_rigid",
                      {"volume": hfs, "moving": hfdl}, {"seed": 1})
    return np.asarray(out["transform"].rows[0]["matrix"])


def test_reformatted_views_follow_through_the_registration(decubitus, registered):
    """The decubitus pair, acquired sagittal in different frames: scrolling the supine
    series' coronal (or axial) reformat puts the decubitus series' view of that plane
    through the registered position."""
    hfs, hfdl = decubitus
    comparison = Comparison(2)
    comparison.show(0, hfs)
    comparison.show(1, hfdl)
    comparison.set_registration(1, registered)
    ref, other = comparison.panes
    assert ref.state.native_plane == other.state.native_plane == "sagittal"
    ref.state.set_cursor(128, 110, 17)
    for plane in ("coronal", "axial"):
        shown = set()
        start = ref.state.plane_slice(plane)
        for step in (-20, 0, 20):
            ref.state.set_plane_slice(plane, start + step)
            want = comparison.map_lps(0, 1, ref.state.cursor_lps())
            np.testing.assert_allclose(
                want, (registered @ np.append(ref.state.cursor_lps(), 1.0))[:3], atol=1e-6)
            off, allowed = _off_plane_mm(other.state, plane, want)
            assert off <= allowed + 1e-6, (plane, step, off, allowed)
            shown.add(other.state.plane_slice(plane))
        assert len(shown) == 3, (plane, shown)

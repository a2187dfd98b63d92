"""A comparison's work on the Session: opening a series into a pane, registering a pair.

Each pane opens its own series beside the main view's (the Session's ``open_series`` keeps
one load at a time for the main view); both share the Session's volume cache. A rigid
registration runs as the registered step ``fuse.register_rigid`` on the executor the user
chose ("Run on"), through :func:`~medview.pipeline.executors.run_step_on`, and is cached
per pair of series for the Session's life (the reverse pair reuses it, inverted). No Qt.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable

import numpy as np

from medview.app.compare import Comparison
from medview.app.series_loading import LoadedSeries
from medview.app.session import Session, cache_key
from medview.app.tasks import Job
from medview.core.progress import Progress

__all__ = ["REGISTER_STEP", "cached_registration", "open_in_pane", "register_pane"]

#: The registered step that aligns two series rigidly (mutual information, SimpleITK).
REGISTER_STEP = "fuse.register_rigid"

# session → {(fixed uid, moving uid): 4×4 fixed LPS → moving LPS}
_REGISTRATIONS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _cache(session: Session) -> dict:
    return _REGISTRATIONS.setdefault(session, {})


def cached_registration(session: Session, fixed_uid: str, moving_uid: str) -> np.ndarray | None:
    """The registration of ``moving_uid`` onto ``fixed_uid`` done in this session (4×4, fixed
    LPS → moving LPS), from the pair itself or the reverse pair; None when not done yet."""
    cache = _cache(session)
    if (fixed_uid, moving_uid) in cache:
        return cache[(fixed_uid, moving_uid)]
    if (moving_uid, fixed_uid) in cache:
        return np.linalg.inv(cache[(moving_uid, fixed_uid)])
    return None


def open_in_pane(session: Session, comparison: Comparison, index: int, series_uid: str,
                 *, on_shown: Callable[[int], None] | None = None) -> Job | None:
    """Show catalog series ``series_uid`` in pane ``index``: from the Session's cache at once
    (returns None), else read in the background (the job; failure and cancel go to the
    Session's ``action_failed`` / ``action_cancelled``). ``on_shown(index)`` follows.

    Raises
    ------
    RuntimeError
        Without a catalog (and not cached).
    """
    def show(volume, windows) -> None:
        comparison.show(index, volume, series_uid=series_uid, window=windows[0])
        pane = comparison.panes[index]
        if index and pane.link.mode == "off":
            known = cached_registration(session, comparison.reference.series_uid, series_uid)
            if known is not None:
                comparison.set_registration(index, known)
        if on_shown is not None:
            on_shown(index)

    cached = session.cache.get(cache_key(series_uid, None))
    if cached is not None:
        show(*cached)
        return None
    catalog = session.require_catalog("Opening a series to compare")

    def work(progress: Progress) -> LoadedSeries:
        from medview.app import series_loading

        return series_loading.load_series_progressively(catalog, series_uid, progress=progress)

    def finished(result: LoadedSeries) -> None:
        if not result.failures:
            session.cache.put(cache_key(series_uid, result.stack),
                              (result.volume, result.windows), result.volume.nbytes)
        show(result.volume, result.windows)

    return session._start_action(f"Opening series {series_uid} to compare", work, finished)


def register_pane(session: Session, comparison: Comparison, index: int, *,
                  params: dict | None = None,
                  on_registered: Callable[[int], None] | None = None) -> Job | None:
    """Register pane ``index``'s series rigidly onto the reference pane's and link it by
    that registration. A pair registered before in this session is linked at once (returns
    None); else the step runs as a Session job on the chosen executor.

    Raises
    ------
    ValueError
        When pane ``index`` or the reference shows no series, or ``index`` is 0.
    """
    pane, ref = comparison.panes[index], comparison.reference
    if index == 0 or pane.volume is None or ref.volume is None:
        raise ValueError("registering needs a series in the reference pane and in this one")
    fixed_uid, moving_uid = ref.series_uid, pane.series_uid
    known = cached_registration(session, fixed_uid, moving_uid)
    if known is not None:
        comparison.set_registration(index, known)
        if on_registered is not None:
            on_registered(index)
        return None
    fixed, moving = ref.volume, pane.volume
    executor = session.run_on.executor()

    def work(progress: Progress) -> np.ndarray:
        from medview.pipeline.executors import run_step_on

        # the step's own parameters; a non-zero seed so that the same pair gives the same
        # transform run after run (0 means the wall clock to SimpleITK)
        chosen = {"seed": 1, **(params or {})}
        out = run_step_on(executor, REGISTER_STEP, {"volume": fixed, "moving": moving},
                          chosen, progress=progress)
        return np.asarray(out["transform"].rows[0]["matrix"], dtype=float)

    def finished(matrix: np.ndarray) -> None:
        _cache(session)[(fixed_uid, moving_uid)] = matrix
        # the panes may show other series by now: link only the pair registered
        if comparison.reference.series_uid == fixed_uid and \
                index < len(comparison.panes) and \
                comparison.panes[index].series_uid == moving_uid:
            comparison.set_registration(index, matrix)
            if on_registered is not None:
                on_registered(index)

    return session._start_action(f"Registering series {moving_uid} onto {fixed_uid}", work,
                                 finished)

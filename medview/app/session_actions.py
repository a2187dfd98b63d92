"""The :class:`~medview.app.session.Session`'s actions on what is open: label maps and SEGs,
fuse, classify, run a chain, export (of what is shown, or of a
catalog series), remove a series (split out of ``session.py`` along that seam:
importing, opening and caching there, acting on what is open here).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from medview.app import processing
from medview.app.tasks import Job
from medview.core.volume import Volume

__all__ = ["ActionsMixin"]

PathLike = str | os.PathLike


class ActionsMixin:
    """Label maps, editing, processing, export and send of a Session (see there)."""

    # -- label maps --------------------------------------------------------------------
    def open_label_map(self, path: PathLike):
        """Read the label map in ``path`` (NIfTI/NRRD/MHA, segments from its
        ``.segments.json``) and announce it (``label_map_opened``).

        Raises
        ------
        ValueError, OSError
            If the file cannot be read or holds no labels (the message names the file).
        """
        from medview.app import library

        labels = library.read_label_map(path)
        self.label_map_opened.emit(labels, str(path))
        return labels

    def is_seg(self, series_uid: str) -> bool:
        """True when catalog series ``series_uid`` is a DICOM Segmentation (False without a
        catalog)."""
        from medview.app.seg_open import is_seg_series

        return is_seg_series(self.catalog, series_uid)

    def seg_reference(self, series_uid: str):
        """The SEG file of catalog series ``series_uid`` and the series it was drawn on
        (:func:`~medview.app.seg_open.seg_reference`), with ``source_in_catalog`` telling
        whether that series is in the catalog.

        Raises
        ------
        RuntimeError
            Without a catalog.
        ValueError, OSError
            If the series has no SEG file or the SEG names no source series.
        """
        from medview.app.seg_open import seg_reference

        catalog = self.require_catalog("Opening the segmentation")
        ref = seg_reference(catalog, series_uid)
        ref.source_in_catalog = bool(catalog.instances(ref.referenced_uid))
        return ref

    def read_seg(self, seg, volume: Volume) -> Job:
        """Read catalog SEG series ``seg`` (its UID, or its :meth:`seg_reference`) onto
        ``volume`` (the series it references, open) in the background: ``seg_read(labels,
        note)``, the job's result being ``(labels, note)``. Overlapping segments: the higher
        segment number wins where they overlap, said in the note."""
        from medview.dicom.series.seg import SegReadError, read_seg

        ref = self.seg_reference(seg) if isinstance(seg, str) else seg

        def work(progress):
            try:
                return read_seg(ref.path, source=volume), ""
            except SegReadError as exc:
                if "overlap" not in str(exc):
                    raise
            return (read_seg(ref.path, source=volume, overlap="last"),
                    "; segments overlap: the higher segment number is shown where they do")

        return self._start_action(f"Reading the segmentation {ref.description}", work,
                                  lambda result: self.seg_read.emit(*result))

    # -- catalog queries ---------------------------------------------------------------
    def failed_files(self) -> list:
        """The files an import could not read, with the reason (none without a catalog)."""
        return [] if self.catalog is None else self.catalog.errors()

    def study_paths(self, study_uid: str) -> list[Path]:
        """The files of every catalog series of study ``study_uid`` and the SR/KO documents
        that reference them (annotations, key images: they go out with the study); none
        without a catalog."""
        if self.catalog is None:
            return []
        series = self.catalog.series(study_uid)
        files = [Path(h.path) for rec in series for h in self.catalog.instances(rec.uid)]
        documents = [p for rec in series for p in self.series_documents(rec.uid)]
        return files + [p for p in dict.fromkeys(documents) if p not in set(files)]

    def instance_paths(self, series_uid: str) -> list[Path]:
        """The files of catalog series ``series_uid`` in instance-number order (then path).

        Raises
        ------
        RuntimeError
            Without a catalog.
        """
        headers = self.require_catalog("Reading the series' files").instances(series_uid)
        headers.sort(key=lambda h: (h.instance_number if h.instance_number is not None
                                    else 1 << 31, str(h.path)))
        return [Path(h.path) for h in headers]

    # -- processing --------------------------------------------------------------------
    def _executor(self):
        return self.run_on.executor()  # KeyError names the endpoints when one is gone

    def fuse(self, base: Volume, moving: str | Volume, *, register: bool = False) -> Job:
        """Bring ``moving`` (a catalog series UID, or a Volume) onto ``base``'s grid on the
        chosen executor, registered rigidly first when ``register``: ``fused(Fused)``."""
        executor = self._executor()
        if isinstance(moving, str):
            uid = moving
            moving = self.cached_volume(uid)  # looked up here, on the caller's thread
            catalog = self.catalog if moving is not None else self.require_catalog("Fusing")
        given = moving

        def work(progress):
            from medview.app import library

            second = given if given is not None else library.load_series(
                catalog, uid, progress=progress.sub(0.0, 0.4))
            return processing.fuse_on(executor, base, second, register=register,
                                      progress=progress.sub(0.4, 0.95))

        return self._start_action("Fusing a second series", work,
                                  lambda result: self.fused.emit(result))

    def blend(self, base: Volume, fused: Volume, *, window_center: float,
              window_width: float, colormap: str, moving_range: tuple[float, float],
              opacity: float, executor=None) -> Volume:
        """The fused image as an RGB volume (the registered step ``fuse.blend``), now, on
        ``executor`` (default the chosen one)."""
        return processing.blend_on(executor if executor is not None else self._executor(),
                                   base, fused, window_center=window_center,
                                   window_width=window_width, colormap=colormap,
                                   moving_range=moving_range, opacity=opacity)

    def train_classifier(self, volume: Volume, scribbles, *,
                         classifier: str = "random_forest") -> Job:
        """Train on ``scribbles`` (a copy is taken now) and segment ``volume`` on the chosen
        executor: ``classified(Classified)``."""
        from medview.core.labelmap import LabelMap

        executor = self._executor()
        snapshot = LabelMap.like(volume, scribbles.array.copy(), scribbles.segments)
        where = "" if executor.name == "Local" else f" ({executor.name})"
        return self._start_action(
            f"Training the classifier{where}",
            lambda progress: processing.train_on(executor, volume, snapshot,
                                                 classifier=classifier, progress=progress),
            lambda result: self.classified.emit(result))

    def apply_model(self, volume: Volume, path: PathLike) -> Job:
        """Segment ``volume`` with the saved model ``path`` on the chosen executor:
        ``classified(Classified)``."""
        executor = self._executor()
        where = "" if executor.name == "Local" else f" ({executor.name})"
        return self._start_action(
            f"Applying {Path(path).name}{where}",
            lambda progress: processing.apply_model_on(executor, volume, path,
                                                       progress=progress),
            lambda result: self.classified.emit(result))

    def run_chain(self, chain, inputs: Mapping[str, Any]) -> Job:
        """Run ``chain`` (a :class:`~medview.pipeline.chain.Chain`) on ``inputs`` on the
        chosen executor: ``chain_finished(ChainRun)`` (:mod:`medview.app.chain_run`: the new
        values with their display windows).

        Raises
        ------
        KeyError
            If the chosen endpoint is gone (the message names the ones there are).
        """
        from medview.app.chain_run import finish_run

        executor = self._executor()

        def work(progress):
            result = executor.run(chain, dict(inputs), progress=progress)
            return finish_run(chain, result, progress=progress)

        return self._start_action(
            f"Running {chain.name or 'the chain'} ({executor.name})", work,
            lambda result: self.chain_finished.emit(result))

    def preview_chain(self, chain, inputs: Mapping[str, Any], z: int) -> Job:
        """Run ``chain`` on slice ``z`` only, here (a preview never leaves the workstation),
        for the live preview: the job's result is ``(PreviewResult, levels)``
        (:func:`~medview.app.chain_run.run_preview_with_levels`). No session event: only the
        latest preview matters to the one who asked, and it is not shown as progress."""
        from medview.app.chain_run import run_preview_with_levels

        inputs = dict(inputs)
        return self.runner.start("Preview", lambda progress: run_preview_with_levels(
            chain, inputs, z, progress=progress))

    # -- catalog series ----------------------------------------------------------------
    def remove_series(self, series_uid: str) -> int:
        """Forget ``series_uid`` in the catalog (its files stay on disk) and its cached
        volumes; the number of instances removed.

        Raises
        ------
        RuntimeError
            Without a catalog.
        """
        n = self.require_catalog("Removing the series").remove_series(series_uid)
        for key in self.cache.keys():  # noqa: SIM118 - a copy: entries go while looping
            if key == series_uid or (isinstance(key, tuple) and key[0] == series_uid):
                self.cache.remove(key)
        self.series_removed.emit(series_uid, n)
        return n

    def export_series(self, series_uid: str, path: PathLike) -> Job | None:
        """Write catalog series ``series_uid`` to the volume file ``path`` (format from its
        suffix; atomic; an existing file is replaced: the caller asked) in the background;
        None when such an export is already running.

        Raises
        ------
        RuntimeError
            Without a catalog.
        """
        from medview.app.series_export import export_series

        if self.series_export_job is not None:
            return None
        catalog = self.require_catalog("Exporting")
        path = Path(path)

        def ended() -> None:
            self.series_export_job = None

        job = self.runner.start(f"Exporting {path.name}", lambda progress: export_series(
            catalog, series_uid, path, progress=progress))
        job.events.finished.connect(lambda out: (ended(), self.series_exported.emit(out)))
        job.events.failed.connect(lambda error: (ended(),
                                                 self.series_export_failed.emit(error)))
        job.events.cancelled.connect(lambda: (ended(), self.series_export_cancelled.emit()))
        self.series_export_job = job
        self.job_started.emit(job)
        return job

    # -- export ---------------------------------------------------------------
    def export(self, item, fmt: str, path: PathLike, *, overwrite: bool = False) -> Job:
        """Write ``item`` (an :class:`~medview.app.exporting.Exportable`) as ``fmt`` to
        ``path`` in the background, atomically: ``exported(paths)``; a failure
        (``export_failed``) leaves no partial file. A fused image is blended now, from what
        is shown."""
        from medview.app.exporting import export_item

        if item.kind == "view":
            raise ValueError("the view is saved by the window (it is what the screen shows)")
        if item.kind == "rgb":
            item = type(item)(item.name, item.kind, item.resolve(), item.source)

        def ended() -> None:
            self.export_job = None

        job = self.runner.start(f"Exporting {item.name.lower()}",
                                lambda progress: export_item(item, fmt, path,
                                                             overwrite=overwrite))
        job.events.finished.connect(lambda written: (ended(), self.exported.emit(list(written))))
        job.events.failed.connect(lambda error: (ended(), self.export_failed.emit(error)))
        job.events.cancelled.connect(lambda: (ended(), self.export_cancelled.emit()))
        self.export_job = job
        self.job_started.emit(job)
        return job

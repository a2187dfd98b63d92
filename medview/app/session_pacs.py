"""The :class:`~medview.app.session.Session`'s PACS and endpoint actions (split out along
that seam: what is asked of a node, not sent to it): query a node, retrieve a study or a
series into the catalog, verify a PACS node (C-ECHO / QIDO-RS) and an offload endpoint
(``/health`` and ``/info``).

A retrieve calls back per arrived instance from network threads; the caller collects them
(under its own lock) and hands them, on its thread, to :meth:`PacsMixin.index_arrived`, so a
series can be shown while the rest is on its way. A retrieve that stops early reports what is
missing (:class:`~medview.pacs.retrieve.RetrieveReport`); retrieving again asks only for those.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

from medview.app.tasks import Job

__all__ = ["PacsMixin"]


def _named(name: str, text: str) -> str:
    """``text`` beginning with ``name`` (what a row of the dialog reads)."""
    return text if text.startswith(name) else f"{name}: {text}"


class PacsMixin:
    """Find, retrieve, verify of a Session (see there)."""

    def find(self, node_name: str, query=None, *, level: str = "series") -> Job:
        """Ask the PACS node ``node_name`` for the studies matching ``query`` (a
        :class:`~medview.pacs.query.Query`; default everything) with, at series level,
        their series and how many instances the catalog holds of each:
        ``pacs_found(node_name, [PacsPatient])``. The job's ``failed`` says why not."""
        catalog = self.catalog  # counting what is local is optional

        def work(progress):
            from medview.pacs.nodes import get_node
            from medview.pacs.query import Query, find

            return find(get_node(node_name), query if query is not None else Query(),
                        level=level, catalog=catalog, progress=progress)

        job = self._start(f"Searching {node_name}", work)
        job.events.finished.connect(lambda patients: self.pacs_found.emit(node_name, patients))
        return job

    def retrieve(self, node_name: str, study_uid: str, series_uid: str = "", *,
                 on_instance: Callable | None = None,
                 on_listed: Callable[[dict], None] | None = None) -> Job:
        """Bring study ``study_uid`` (or its series ``series_uid``) from ``node_name`` into
        the store and the catalog: ``retrieved(RetrieveReport)``, complete or listing what
        is missing; a cancel keeps what arrived (in the catalog once indexed).

        ``on_instance(path, (study, series, SOP instance UID))`` and ``on_listed(table)`` are
        called from network threads as instances arrive and when the PACS lists them: only
        collect there, and index on your thread with :meth:`index_arrived`.

        Raises
        ------
        RuntimeError
            Without a catalog.
        """
        catalog = self.require_catalog("Retrieving")

        def work(progress):
            from medview.pacs.nodes import get_node
            from medview.pacs.retrieve import retrieve

            return retrieve(get_node(node_name), study_uid, series_uid, catalog=catalog,
                            on_instance=on_instance, on_listed=on_listed, progress=progress)

        what = "series" if series_uid else "study"
        job = self._start(f"Retrieving {what} from {node_name}", work)
        job.events.finished.connect(lambda report: self.retrieved.emit(report))
        return job

    def index_arrived(self, arrived: Iterable[tuple]) -> dict[tuple[str, str], int]:
        """Index the files a running retrieve brought, ``(path, (study, series, SOP
        instance UID))`` as ``on_instance`` gave them, on the session's thread (the catalog
        is not shared with the network threads): ``(study, series)`` → how many instances
        of that series the catalog now holds, for each series among them, in arrival order.
        """
        catalog = self.require_catalog("Indexing retrieved files")
        arrived = list(arrived)
        if not arrived:
            return {}
        catalog.index([Path(p) for p, _ in arrived], workers=1)
        return {(study, series): len(catalog.instances(series))
                for study, series in dict.fromkeys((u[0], u[1]) for _, u in arrived)}

    def verify_node(self, node_name: str) -> Job:
        """C-ECHO (DICOM) or a QIDO-RS probe (DICOMweb) of the node ``node_name``:
        ``node_verified(name, ok, text)`` with a line naming the node, what worked or why
        not (refused, timeout, rejected, 401)."""

        def work(progress):
            from medview.pacs.echo import echo
            from medview.pacs.nodes import get_node

            return echo(get_node(node_name))

        job = self._start(f"Verifying {node_name}", work)
        job.events.finished.connect(
            lambda text: self.node_verified.emit(node_name, True, text))
        job.events.failed.connect(
            lambda error: self.node_verified.emit(node_name, False,
                                                  _named(node_name, error.message)))
        return job

    def verify_endpoint(self, name: str) -> Job:
        """Ask the offload endpoint ``name`` for ``/health`` and ``/info``:
        ``endpoint_checked(name, ok, text)`` (its medview version, or why not)."""

        def work(progress):
            from medview.remote.client import RemoteClient

            with RemoteClient.for_endpoint(name, retries=1) as client:
                return client.info()

        job = self._start(f"Checking {name}", work)
        job.events.finished.connect(lambda info: self.endpoint_checked.emit(
            name, True, f"{name}: reachable, medview {getattr(info, 'version', '?')}"))
        job.events.failed.connect(lambda error: self.endpoint_checked.emit(
            name, False, f"{name}: {error.message}"))
        return job

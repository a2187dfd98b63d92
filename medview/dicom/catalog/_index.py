"""Indexing: bring the catalog up to date with the files under some paths.

The walk, the comparison with the catalog and the reading of what changed; the writes (one
transaction per batch) are :mod:`medview.dicom.catalog._writes`'.

Reads only files that are new or whose (size, mtime) changed (a folder whose files hash to
its kept digest, :mod:`medview.dicom.catalog._folders`, is not looked up file by file);
files that vanished from an indexed folder are removed; a failing file that did not change
keeps its error without being read again. Every batch of files is one transaction, so a
cancelled or crashed import never leaves half a record.
:class:`~medview.dicom.catalog.db.Catalog` inherits these methods.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence

from medview.core.progress import NO_PROGRESS, Progress
from medview.dicom.catalog._documents import (
    documents_among,
)
from medview.dicom.catalog._folders import (
    digest_of,
    digested_files,
    errors_in,
    key_of,
    stored,
)
from medview.dicom.catalog._lookup import lookup
from medview.dicom.catalog._schema import (
    PATH_RANGE,
    IndexReport,
    path_range_params,
    py_path,
)
from medview.dicom.catalog._walk import _count, _under, listing
from medview.dicom.catalog._walk_split import MIN_FILES, start_helper, walk
from medview.dicom.catalog._writes import _WritingMixin
from medview.dicom.errors import UnreadableFileError
from medview.dicom.scan.header import InstanceHeader

_BATCH = 250


# --------------------------------------------------------------------------- walking

_CHUNK = 500  # paths per catalog look-up and per scan batch
MAX_LISTED = 10_000  # errors/warnings kept in an IndexReport (counted beyond)


def _listed(report: IndexReport, kind: str, items: Iterable[tuple[str, str]]) -> None:
    """Add (path, text) items to ``report.errors``/``warnings`` up to :data:`MAX_LISTED`,
    counting all of them (a tree of junk must not grow the report without bound)."""
    target = report.errors if kind == "errors" else report.warnings
    for item in items:
        if kind == "errors":
            report.error_count += 1
        else:
            report.warning_count += 1
        if len(target) < MAX_LISTED:
            target.append(item)


# --------------------------------------------------------------------------- the catalog


class _IndexingMixin(_WritingMixin):
    """The indexing methods of :class:`~medview.dicom.catalog.db.Catalog` (which provides
    ``_conn``); the writes are :class:`~medview.dicom.catalog._writes._WritingMixin`'s."""

    # -- indexing -----------------------------------------------------------------------

    def index(
        self,
        paths: Iterable[str | os.PathLike] | str | os.PathLike,
        *,
        progress: Progress = NO_PROGRESS,
        workers: int | None = None,
    ) -> IndexReport:
        """Bring the catalog up to date with ``paths``.

        The folders are walked one listing at a time and the files looked up in the
        catalog, scanned and written in batches of a few hundred, each batch one
        transaction: memory stays flat in the number of files, a series is in the catalog
        (readable from other connections) as soon as its batch is written, and a cancelled
        import keeps every batch written before; the next import reads only the rest.

        Parameters
        ----------
        paths : path or iterable of paths
            Folders (recursively), single files and DICOMDIR files (their referenced files; a
            broken DICOMDIR is an error and its folder is walked instead).
        progress : Progress, optional
            ``update(fraction, message)`` per batch; ``check()`` before each batch.
        workers : int, optional
            Processes for scanning; default: this process below
            :data:`~medview.dicom.scan.scanner.POOL_MIN_FILES` files to read, else up to 4.

        Returns
        -------
        IndexReport
            Errors and warnings are listed up to :data:`MAX_LISTED` each (all are counted).

        Raises
        ------
        Cancelled
            When ``progress`` was cancelled; every batch committed before stays, complete.
        """
        with contextlib.ExitStack() as helpers:
            return self._index(paths, progress, workers, helpers)

    def _index(self, paths, progress: Progress, workers: int | None,
               helpers: contextlib.ExitStack) -> IndexReport:
        t0 = time.perf_counter()
        progress = progress if progress is not None else NO_PROGRESS
        if isinstance(paths, str | os.PathLike):
            paths = [paths]
        report = IndexReport()
        folders: list[str] = []
        explicit: list[str] = []
        dicomdir_errors: list[tuple[str, str, int, int]] = []
        missing: list[tuple[str, str]] = []
        progress.update(0.0, "looking for files")
        for p in paths:
            p = os.path.abspath(os.fspath(p))
            if os.path.isdir(p):
                folders.append(p)
            elif os.path.isfile(p) and os.path.basename(p).upper() == "DICOMDIR":
                from medview.dicom.scan.dicomdir import read_dicomdir

                try:
                    refs, skipped = read_dicomdir(p)
                except UnreadableFileError as exc:
                    st = os.stat(p)
                    dicomdir_errors.append((p, exc.reason, st.st_size, st.st_mtime_ns))
                    folders.append(os.path.dirname(p))
                else:
                    explicit.extend(str(r) for r in refs)
                    missing.extend(skipped)  # reported with the unreadable files
            else:
                explicit.append(p)
        # a folder inside another given folder, or a file inside one, is walked once
        folders = sorted(set(folders))
        folders = [f for i, f in enumerate(folders) if not _under(f, folders[:i])]
        explicit = list(dict.fromkeys(p for p in explicit if not _under(p, folders)))
        conn = self._conn()
        # a re-index of a big tree shares its stats with a helper process, started before
        # anything else so that its start-up overlaps this one's counting
        helper = start_helper(folders) if digested_files(conn, folders) >= MIN_FILES else None
        if helper is not None:
            helpers.enter_context(helper)  # killed when the import ends, however
        in_catalog_before = self._count_under(conn, folders)
        # the denominator of the progress: a folder indexed before has about as many files as
        # the catalog knows there (no second walk of 100,000 names just to count them)
        total = (in_catalog_before or sum(_count(f) for f in folders)) + len(explicit)
        progress.check()
        explicit_set = set(explicit)
        self._write(conn, errors=dicomdir_errors)
        _listed(report, "errors", ((p, r) for p, r, _, _ in dicomdir_errors))
        _listed(report, "errors", missing)
        state = {"matched": 0, "seen": 0, "shown": 0}
        # folders compared file by file whose digest is kept once their entries are written:
        # key -> [digest, files, files not yet settled]; then (key, digest, files) when ready
        waiting: dict[str, list] = {}
        ready: list[tuple[str, bytes, int]] = []

        def settle(key: str, n: int = 1) -> None:
            w = waiting[key]
            w[2] -= n
            if w[2] <= 0:
                del waiting[key]
                ready.append((key, w[0], w[1]))

        def candidates() -> Iterator[tuple[str | None, list[tuple[str, int, int]] | None,
                                           bytes | None, int]]:
            """(folder, [(name, size, mtime)...], None, files) per folder, or (folder, None,
            digest, files) of a folder the walk's helper process took; first (None, [(path,
            size, mtime)...], None, files) of the explicit files."""
            stated = []
            for p in explicit:
                try:
                    st = os.stat(p)
                except OSError as exc:
                    # reported, and forgotten: an entry of a file that isn't there would linger
                    _listed(report, "errors", [(p, f"cannot read: {exc.strerror or exc}")])
                    report.removed += self._forget(conn, [p])
                    continue
                stated.append((p, st.st_size, st.st_mtime_ns))
            if stated:
                yield None, stated, None, len(stated)
            yield from walk(folders, progress, helper)

        def show_walk() -> None:
            if state["seen"] - state["shown"] >= _CHUNK:
                state["shown"] = state["seen"]
                progress.update(min(state["seen"] / max(total, 1), 1.0),
                                f"checked {state['seen']:,}/{total:,} files")
                progress.check()

        def unchanged_folder(key: str, digest: bytes | None, n: int,
                             files: list | None) -> bool:
            """The folder's files hash to its kept digest: all unchanged, no look-up."""
            if digest is None:
                return False
            kept = stored(conn, key)
            if kept is not None and kept[0] == digest and kept[1] == n:
                report.unchanged += n
                state["matched"] += n
                state["seen"] += n
                if kept[2]:  # its failing files are listed again, unread
                    _listed(report, "errors", errors_in(conn, key))
                return True
            if files is not None:  # compared file by file; kept once they are written
                waiting[key] = [digest, n, n]
            return False

        def compare(chunk: list[tuple[str, int, int, str | None]], out: list) -> None:
            """Look ``chunk`` up in the catalog; what is new or changed goes to ``out``."""
            known, failed = self._lookup(conn, [c[0] for c in chunk])
            matched = len(known) + len(failed)
            if explicit_set and matched:  # the explicit files are not under the folders
                matched -= sum(p in explicit_set for p in (*known, *failed))
            state["matched"] += matched
            for p, size, mtime, key in chunk:
                sig = (size, mtime)
                if known.get(p) == sig:
                    report.unchanged += 1
                elif p in failed and failed[p][1:] == sig:
                    report.unchanged += 1
                    _listed(report, "errors", [(p, failed[p][0])])
                else:
                    out.append((p, size, mtime, p in known or p in failed, key))
                    continue
                if key is not None:
                    settle(key)
            state["seen"] += len(chunk)

        def to_read() -> Iterator[list[tuple[str, int, int, bool, str | None]]]:
            """Batches of (path, size, mtime, was_known, folder key) that are new or
            changed, about :data:`_CHUNK` each (folders joined or split)."""
            pending: list[tuple[str, int, int, str | None]] = []
            out: list = []
            for folder, files, digest, n in candidates():
                if folder is None:
                    pending += [(p, size, mtime, None) for p, size, mtime in files]
                else:
                    key = key_of(folder)
                    if files is None:  # the helper's digest: unchanged, or listed here again
                        if key is not None and unchanged_folder(key, digest, n, None):
                            show_walk()
                            continue
                        found = listing(folder)
                        if found is None or not found[0]:
                            continue  # gone or emptied since: the vanished entries' pass
                        files = found[0]
                    if key is not None and unchanged_folder(key, digest_of(files), len(files),
                                                            files):
                        show_walk()
                        continue
                    if key not in waiting:
                        key = None
                    prefix = folder.rstrip(os.sep) + os.sep
                    pending += [(prefix + n, size, mtime, key) for n, size, mtime in files]
                while len(pending) >= _CHUNK:
                    compare(pending[:_CHUNK], out)
                    pending = pending[_CHUNK:]
                while len(out) >= _CHUNK:
                    yield out[:_CHUNK]
                    out = out[_CHUNK:]
                if len(ready) >= _CHUNK // 4:
                    self._write(conn, folders=ready)
                    ready.clear()
                show_walk()
            if pending:
                compare(pending, out)
            while out:
                yield out[:_CHUNK]
                out = out[_CHUNK:]

        signature: dict[str, tuple] = {}  # of the batches in flight only

        def batches() -> Iterator[list[str]]:
            for batch in to_read():
                for p, size, mtime, was_known, key in batch:
                    signature[p] = (size, mtime, was_known, key)
                yield [b[0] for b in batch]

        def done(p: str) -> bool:
            """A read file's result is written: forget its signature; was it known?"""
            _, _, was_known, key = signature.pop(p, (-1, -1, False, None))
            if key is not None and key in waiting:
                settle(key)
            return was_known

        def scanned() -> Iterator[tuple[list[InstanceHeader], list[tuple[str, str]], int]]:
            # the scanner (and its parser modules) is imported only when a file needs reading:
            # a re-index of an unchanged tree never does
            pending = batches()
            first = next(pending, None)
            if first is None:
                return
            from medview.dicom.scan._stream import scan_stream

            results = scan_stream(itertools.chain([first], pending), workers=workers)
            try:
                yield from results
            finally:
                results.close()

        results = scanned()
        rewritten = False
        try:
            for headers, errors, n in results:
                progress.check()
                documents, errors = documents_among(errors)
                err_rows = []
                for p, reason in errors:
                    size, mtime = signature.get(p, (-1, -1))[:2]
                    err_rows.append((p, reason, size, mtime))
                self._write(conn, headers=headers, errors=err_rows, documents=documents)
                for p, _reason in errors:
                    rewritten |= done(p)
                for d in documents:
                    rewritten |= done(d.path)
                    report.documents += 1
                for h in headers:
                    _listed(report, "warnings", ((h.path, w) for w in h.warnings))
                    was_known = done(h.path)
                    rewritten |= was_known
                    if was_known:
                        report.updated += 1
                    else:
                        report.added += 1
                if len(ready) >= _CHUNK // 4:
                    self._write(conn, folders=ready)
                    ready.clear()
                _listed(report, "errors", errors)
                report.scanned += n
                progress.update(min(state["seen"] / max(total, 1), 1.0),
                                f"indexed {report.scanned:,} new or changed files, checked "
                                f"{state['seen']:,}/{total:,}")
            if in_catalog_before != state["matched"]:
                # some catalog entries under the folders were not found by the walk
                keep = {p for p, _, _, _ in dicomdir_errors}  # skipped by the walk, yet listed
                report.removed += self._forget_vanished(conn, folders, keep)
            self._write(conn, folders=ready)  # after the removals: they may be what differed
        finally:
            results.close()
            if report.removed or rewritten:
                self._prune(conn)  # only removals and re-read files can orphan a series
        report.errors.sort()
        report.warnings.sort()
        report.seconds = time.perf_counter() - t0
        progress.update(1.0, f"indexed {report.scanned:,} files")
        return report

    @staticmethod
    def _count_under(conn: sqlite3.Connection, folders: Sequence[str]) -> int:
        n = 0
        for folder in folders:
            bounds = path_range_params(folder)
            for table in ("instances", "errors", "documents"):
                n += conn.execute(f"SELECT COUNT(*) FROM {table} WHERE {PATH_RANGE}",
                                  bounds).fetchone()[0]
        return n

    def _forget_vanished(self, conn: sqlite3.Connection, folders: Sequence[str],
                         keep: set[str]) -> int:
        """Remove the entries under ``folders`` whose file a walk would not find any more
        (deleted, no longer a regular file, or now under a skipped name), a page of paths
        at a time."""
        from medview.dicom.scan.scanner import skipped_name

        removed = 0
        for folder in folders:
            bounds = path_range_params(folder)
            for table in ("instances", "errors", "documents"):
                last: str | bytes = ""
                while True:
                    page = [r[0] for r in conn.execute(
                        f"SELECT path FROM {table} WHERE {PATH_RANGE} AND path > ? "
                        f"ORDER BY path LIMIT {_CHUNK}", (*bounds, last))]
                    if not page:
                        break
                    last = page[-1]
                    gone = []
                    for value in page:
                        p = py_path(value)
                        if p in keep:
                            continue
                        rel = os.path.relpath(p, folder).split(os.sep)
                        if any(skipped_name(part) for part in rel) or not os.path.isfile(p):
                            gone.append(p)
                    if gone:
                        removed += self._forget(conn, gone)
        return removed

    def _lookup(
        self, conn: sqlite3.Connection, files: Sequence[str]
    ) -> tuple[dict[str, tuple[int, int]], dict[str, tuple[str, int, int]]]:
        """Catalog entries of ``files`` (a chunk): instances and errors."""
        return lookup(conn, list(files))

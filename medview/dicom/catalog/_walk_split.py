"""A re-index's walk on two cores: a helper process stats part of the tree.

A re-index of an unchanged tree is one ``stat`` per file (a file rewritten in place changes
only its own size and mtime; see :mod:`~medview.dicom.catalog._folders`): ~1.1 µs of kernel
time each on our VMs, 0.11 s of 100,000 files before Python does anything, and a thread pool
cannot share it (the GIL changes hands at every ``stat``). A second process can: it walks
some of the tree's subtrees, takes each folder's digest exactly as the catalog's own walk
does, and sends back only (folder, digest, file count) per folder, while this process walks
the rest and compares digests with the catalog. A folder whose digest differs from the kept
one is listed and compared file by file by this process (its files stat-ed again), so the
helper decides nothing: it only saves the work of folders that are unchanged.

The helper is a fresh interpreter (``-I -S``: no site, no user paths, only medview's own
folder on ``sys.path``; a frozen bundle runs its executable with :data:`CHILD_FLAG`) that
imports only :mod:`~medview.dicom.catalog._walk`. Its subtrees are handed over up front; it
reports each subtree's folders together, after an end record for it, so a helper that dies
(or is killed) leaves whole subtrees unreported, which this process then walks itself.
Records are NUL-terminated fields (``kind, digest hex, count, path`` with the path as the
file system's bytes), never evaluated.
"""

from __future__ import annotations

import os
import select
import sys
import threading
from collections.abc import Callable, Iterator, Sequence

from medview.core.progress import Progress
from medview.dicom.catalog._walk import _walk, digest_of, key_of, listing

__all__ = ["CHILD_FLAG", "MIN_FILES", "WalkHelper", "child_main", "split_roots", "start_helper",
           "walk"]

#: below this many catalogued files the helper's start (~20 ms) is not worth it
MIN_FILES = 5_000
#: the argument a frozen bundle's entry point runs :func:`child_main` for
CHILD_FLAG = "--catalog-walk-helper"
_MAX_DEPTH = 4  # how deep to look for a level with subfolders to share
_FIELDS = 4
#: the longest unfinished record kept: a record is a folder's path (a few KiB at most) and
#: three short fields; more without its end is not what a helper of ours writes
MAX_RECORD = 1 << 20


def split_roots(folders: Sequence[str]) -> list[str]:
    """The subtrees the helper walks: the latter half of the first level (from each of
    ``folders``, descending through folders with a single subfolder, at most
    :data:`_MAX_DEPTH` levels) that has subfolders, in the walk's order; [] when there are
    fewer than two."""
    candidates: list[str] = []
    for root in folders:
        level = root
        for _ in range(_MAX_DEPTH):
            found = listing(level)
            if found is None:
                break
            subs = [os.path.join(level, s) for s in found[1]]
            if len(subs) == 1 and not found[0]:
                level = subs[0]
                continue
            candidates += subs
            break
    if len(candidates) < 2:
        return []
    return candidates[len(candidates) // 2:]


def _command() -> list[str]:
    if getattr(sys, "frozen", False):  # the bundle's entry point knows the flag
        return [sys.executable, CHILD_FLAG]
    import medview

    home = os.path.dirname(os.path.dirname(os.path.abspath(medview.__file__)))
    code = (f"import sys; sys.path.insert(0, {home!r}); "
            "from medview.dicom.catalog._walk_split import child_main; child_main()")
    return [sys.executable, "-I", "-S", "-c", code]


def _feed(pipe, data: bytes) -> None:
    try:
        with pipe:
            pipe.write(data)
    except OSError:  # the helper died (or was killed): its subtrees are walked here
        pass


class WalkHelper:
    """The helper process walking ``roots``; :meth:`ready` hands over what it reported.

    Use as a context manager: leaving it (also by an exception or a cancel) kills the
    helper if it still runs.
    """

    def __init__(self, roots: Sequence[str]):
        import subprocess  # not in the helper process itself (its start-up time)

        self.roots = list(roots)
        self._buf = b""
        self._pending: list[tuple[str, bytes | None, int]] = []
        self._done: set[str] = set()
        self._roots = set(self.roots)
        # every folder reported lies in one of the roots
        self._under = tuple(r.rstrip(os.sep) + os.sep for r in self.roots)
        self._broken = False
        self._ended = False
        self._proc = subprocess.Popen(
            _command(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL, close_fds=True)
        # handed over by a thread: a pipe holds 64 KiB, and the helper reads only once it has
        # started (~20 ms) — time this process spends walking its own part
        self._feeder = threading.Thread(
            target=_feed, args=(self._proc.stdin, b"".join(os.fsencode(r) + b"\0"
                                                            for r in self.roots)),
            name="medview-walk-helper-feed", daemon=True)
        self._feeder.start()
        self._fd = self._proc.stdout.fileno()
        os.set_blocking(self._fd, False)

    def __enter__(self) -> WalkHelper:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self._proc.poll() is None:
            self._proc.kill()
        self._proc.wait()
        self._feeder.join()  # its write fails once the helper is gone
        self._proc.stdout.close()

    def _parse(self) -> Iterator[tuple[str, bytes | None, int]]:
        fields = self._buf.split(b"\0")
        whole = (len(fields) - 1) // _FIELDS * _FIELDS  # the last field is unterminated
        self._buf = b"\0".join(fields[whole:])
        for i in range(0, whole, _FIELDS):
            kind, digest, count, path = fields[i:i + _FIELDS]
            name = os.fsdecode(path)
            if kind == b"F":
                try:
                    record = (name, bytes.fromhex(digest.decode()) if digest else None,
                              int(count))
                except ValueError:
                    record = None
                if record is None or not (name in self._roots or name.startswith(self._under)):
                    self._give_up()  # not what a helper of ours writes: trust none of it
                    return
                self._pending.append(record)
            elif kind == b"E" and name in self._roots:  # a subtree's folders are handed over
                self._done.add(name)
                yield from self._pending
                self._pending.clear()
            else:
                self._give_up()
                return

    def _give_up(self) -> None:
        """Stop listening: what the helper did not hand over is walked here."""
        self._broken = True
        self._pending.clear()
        self._buf = b""
        if self._proc.poll() is None:
            self._proc.kill()

    def _read(self) -> list[tuple[str, bytes | None, int]] | None:
        """Parse what the helper wrote: None when nothing is waiting; at its end (or once it
        is given up) ``_ended`` is set."""
        try:
            chunk = os.read(self._fd, 1 << 16)
        except BlockingIOError:
            return None
        if not chunk or self._broken:
            self._ended = True
            return []
        self._buf += chunk
        got = list(self._parse())
        if len(self._buf) > MAX_RECORD:
            self._give_up()
        return got

    def ready(self) -> list[tuple[str, bytes | None, int]]:
        """(folder, digest or None, files) of the subtrees the helper has finished since the
        last call, without waiting."""
        out = []
        while not self._ended and (got := self._read()) is not None:
            out += got
        return out

    def rest(self, check: Callable[[], None]) -> tuple[list[tuple[str, bytes | None, int]],
                                                        list[str]]:
        """Wait for the helper, calling ``check`` (a cancel raises there) at least every
        0.1 s: (what it still reports, the subtrees it did not finish)."""
        out = []
        while not self._ended:
            check()
            if select.select([self._fd], [], [], 0.1)[0]:
                out += self._read() or []
        if self._broken and self._proc.poll() is None:
            self._proc.kill()
        self._proc.wait()
        return out, [r for r in self.roots if r not in self._done]


Found = tuple[str, list[tuple[str, int, int]] | None, bytes | None, int]


def start_helper(folders: Sequence[str]) -> WalkHelper | None:
    """A helper process walking part of ``folders`` (POSIX only), or None when the tree
    has too few subfolders to share or no process can be started. Close it when done."""
    if os.name != "posix":
        return None
    roots = split_roots(folders)
    if not roots:
        return None
    try:
        return WalkHelper(roots)
    except OSError:
        return None


def walk(folders: Sequence[str], progress: Progress,
         helper: WalkHelper | None = None) -> Iterator[Found]:
    """(folder, [(name, size, mtime_ns), ...], None, files) per folder under ``folders`` that
    holds files, as :func:`~medview.dicom.catalog._walk._walk` finds them; with a ``helper``
    (:func:`start_helper`) its subtrees' folders come as (folder, None, digest, files), in no
    particular order among the others, the digest None where the folder's names are not
    UTF-8; the subtrees the helper did not finish are walked here."""
    if helper is None:
        for f in folders:
            for folder, files in _walk(f, progress):
                yield folder, files, None, len(files)
        return
    skip = frozenset(helper.roots)
    for f in folders:
        for folder, files in _walk(f, progress, skip):
            yield folder, files, None, len(files)
            for folder_, digest, n in helper.ready():
                yield folder_, None, digest, n
    more, missed = helper.rest(progress.check)
    for folder_, digest, n in more:
        yield folder_, None, digest, n
    for root in missed:  # the helper died before finishing these
        for folder, files in _walk(root, progress):
            yield folder, files, None, len(files)


def child_main() -> None:
    """The helper: read NUL-terminated subtree paths from stdin, write records to stdout."""
    from medview.core.progress import NO_PROGRESS

    roots = [os.fsdecode(r) for r in sys.stdin.buffer.read().split(b"\0") if r]
    out = sys.stdout.buffer
    for root in roots:
        records = []
        for folder, files in _walk(root, NO_PROGRESS):
            digest = digest_of(files) if key_of(folder) is not None else None
            records.append(b"F\0%s\0%d\0%s\0" % (digest.hex().encode() if digest else b"",
                                                  len(files), os.fsencode(folder)))
        records.append(b"E\x00\x000\x00%s\x00" % os.fsencode(root))
        out.write(b"".join(records))
        out.flush()

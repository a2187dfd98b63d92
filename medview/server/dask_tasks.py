"""What runs on a Dask worker: the job task, the fetch of its result, the split of a step.

:func:`run_on_dask` runs a job and writes its result to a file (never returned through the
scheduler); :func:`read_chunk` and :func:`remove_spooled` let the server fetch and delete it;
:class:`_DaskSplitter` spreads the steps declared safe to split over the cluster's workers.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

from medview.server.worker import JobFailed, execute_bundle, limit_threads, write_parts

__all__ = ["PROGRESS_TOPIC", "read_chunk", "remove_job_spool", "remove_spooled", "run_on_dask",
           "spool_base", "spool_dir", "sweep_spool"]

PROGRESS_TOPIC = "medview-progress"


#: a spooled result nobody fetched for this long (its server or job gone) is deleted
SPOOL_MAX_AGE_S = 24 * 3600.0


def spool_base() -> Path:
    """``$TMPDIR/medview-results-UID``: one folder per worker process inside."""
    base = Path(tempfile.gettempdir()) / f"medview-results-{os.getuid()}"
    base.mkdir(mode=0o700, exist_ok=True)
    return base


def spool_dir() -> Path:
    """Where this worker process keeps the results of workers that cannot see the server's
    job folder until they are fetched: its own folder, so that what a dead worker process
    left (which no server can fetch: a restarted worker has another address) is known."""
    folder = spool_base() / str(os.getpid())
    folder.mkdir(mode=0o700, exist_ok=True)
    _remove_at_exit(folder, os.getpid())
    return folder


@functools.cache
def _remove_at_exit(folder: Path, pid: int) -> None:
    """Once per spool folder: a worker that stops (``dask worker``, with or without a nanny,
    exits normally on SIGTERM or SIGINT) deletes its spool on its way out. No server can
    fetch from a stopped worker, and the start-up sweep of the next worker on this machine
    may never come. (Not the sweeper plugin's teardown: that also runs whenever a server
    registers the plugin again, with results still to be fetched.)"""
    import atexit

    atexit.register(_remove_spool, folder, pid)


def _remove_spool(folder: Path, pid: int) -> None:
    import shutil

    if os.getpid() == pid:  # never a parent's folder, from a forked child
        shutil.rmtree(folder, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def sweep_spool(max_age_s: float = SPOOL_MAX_AGE_S) -> int:
    """Delete the spools of worker processes that are gone, and this process's spooled
    results older than ``max_age_s`` (left by a server that never came back for them);
    returns how many results."""
    import shutil

    n = 0
    mine = spool_dir()
    for d in spool_base().iterdir():
        if d != mine and d.name.isdigit() and not _alive(int(d.name)):
            n += sum(1 for _ in d.glob("*.bin"))
            shutil.rmtree(d, ignore_errors=True)
    cutoff = time.time() - max_age_s
    for p in mine.glob("*.bin*"):
        try:
            if p.stat().st_mtime < cutoff:
                p.unlink()
                n += p.suffix == ".bin"
        except OSError:
            continue  # fetched and deleted meanwhile
    return n


def run_on_dask(job_id: str, data: list[bytes] | None, job_dir: str = "", nonce: str = "",
                attempt: int = 1) -> dict:
    """Dask task: run one job's bundle on this worker; progress as worker events.

    When this worker sees the server's job folder (``job_dir`` holds the file ``dask-nonce``
    with ``nonce``: same machine or a shared file system) it reads ``input.bin`` there
    (memory-mapped) and writes the result as the job's part file there: for a client that reads
    header-last results each step's output as soon as the step has made it (events with
    ``result_ready``, how far the file will reach, then ``result_bytes``, its size), else the
    whole result after announcing its size; the server streams the file while it grows.
    Otherwise, called without ``data``, it returns ``{"need_input": True}`` at once and is
    called again with the input's chunks (scattered to this worker); its result then goes to
    this worker's spool folder, each step's output as the step has made it (events with
    ``spool``, ``result_ready`` and ``result_bytes`` as above), and the server fetches it in
    chunks while it is written (:func:`read_chunk`, :mod:`medview.server.dask_spool_reader`).
    The result never travels as the task's value (through the scheduler, in one piece).
    Returns ``{"path", "size", "shared", "worker"}``, or ``{"rerun": True}`` when the
    scheduler started this attempt a second time (its first worker died). Cancellation is the
    Dask ``Event`` named ``medview-cancel-<job id>``.
    """
    from distributed import Event, get_worker

    from medview.server.worker import map_input

    worker = get_worker()
    shared = False
    if job_dir and nonce:
        try:
            shared = (Path(job_dir) / "dask-nonce").read_text() == nonce
        except OSError:
            shared = False
    if data is None and not shared:
        return {"need_input": True, "worker": worker.address}
    if shared:
        try:  # Dask reruns the task of a dead worker by itself: the job's retry decides
            (Path(job_dir) / f"started.{attempt}").open("x").close()
        except FileExistsError:
            return {"rerun": True, "worker": worker.address}
    limit_threads()
    cancel = Event(f"medview-cancel-{job_id}")

    def sink(fraction: float, message: str, **extra) -> None:
        worker.log_event(PROGRESS_TOPIC, {"job": job_id, "fraction": fraction,
                                          "message": message, "worker": worker.address,
                                          **extra})

    def announcer(**extra):
        """The result writer's ``announce`` (called from its thread): an event saying how
        far the result file will reach, and its size once final; ``extra`` names the file."""
        def announce(ready: int, size: int | None) -> None:
            worker.log_event(PROGRESS_TOPIC, {"job": job_id, "attempt": attempt, **extra,
                                              "result_ready": ready,
                                              **({"result_bytes": size} if size is not None
                                                 else {})})
        return announce

    sink(0.0, "started")
    if shared:
        path = Path(job_dir) / f"result.{attempt}.part"
        with map_input(Path(job_dir) / "input.bin") as mapped:
            parts = execute_bundle(mapped, sink=sink, probe=cancel.is_set,
                                   step_runner_for=_dask_splitter,
                                   stream_to=(path, announcer()))
        if isinstance(parts, int):  # written into the job folder as the chain ran
            return {"path": str(path), "size": parts, "shared": True,
                    "worker": worker.address}
    else:
        if len(data) == 1:
            bundle = data[0]
        else:  # one buffer for the decoder; the chunks go when the server releases them
            bundle = bytearray(sum(len(c) for c in data))
            pos = 0
            for c in data:
                bundle[pos:pos + len(c)] = c
                pos += len(c)
        data = None
        sweep_spool()
        path = spool_dir() / f"{job_id}.{attempt}.bin"

        # the server fetches each output as the step has made it (read_chunk waits for a
        # writer that has not got there yet while this thread still runs the chain)
        _WRITERS[str(path)] = threading.current_thread()
        try:
            parts = execute_bundle(bundle, sink=sink, probe=cancel.is_set,
                                   step_runner_for=_dask_splitter,
                                   stream_to=(path, announcer(spool=str(path),
                                                               worker=worker.address)),
                                   stream_sync=False)
        except BaseException:
            path.unlink(missing_ok=True)  # a file without its footer: nobody's result
            raise
        finally:
            _WRITERS.pop(str(path), None)
        del bundle
        if isinstance(parts, int):  # spooled as the chain ran
            if _orphaned(worker):
                path.unlink(missing_ok=True)
                return {"orphan": True, "worker": worker.address}
            return {"path": str(path), "size": parts, "shared": False,
                    "worker": worker.address}
    size = sum(len(p) for p in parts)
    if shared:  # ``path``: the job folder's part file, as above
        sink(1.0, "writing the result", attempt=attempt, result_bytes=size)
        write_parts(path, parts)
    else:
        if _orphaned(worker):
            return {"orphan": True, "worker": worker.address}
        sink(1.0, "writing the result")
        # written behind: the task returns now, so the server's chunk reads (tasks on this
        # worker) start while the file is still being written; each waits for its bytes
        _write_behind(path, parts)
    return {"path": str(path), "size": size, "shared": shared, "worker": worker.address}


#: spooled results being written behind their task: path → the writing thread
_WRITERS: dict[str, threading.Thread] = {}


def _write_behind(path: Path, parts) -> None:
    def write() -> None:
        try:
            # a spooled result dies with its worker anyway (the job is then run again)
            write_parts(path, parts, sync=False)
        except OSError as exc:
            with contextlib.suppress(OSError):
                _error_file(path).write_text(f"{type(exc).__name__}: {exc}")
        finally:
            _WRITERS.pop(str(path), None)

    t = threading.Thread(target=write, name=f"medview-spool-{path.name}", daemon=True)
    _WRITERS[str(path)] = t
    t.start()


def _error_file(path: Path) -> Path:
    return path.with_name(path.name + ".error")


def _orphaned(worker) -> bool:
    """Whether nobody waits for this task any more (its server went away, so the scheduler
    dropped it): then its result is not spooled where no one would fetch it."""
    from distributed.worker import thread_state

    key = getattr(thread_state, "key", None)
    ts = worker.state.tasks.get(key) if key is not None else None
    return ts is None or ts.state in ("cancelled", "released", "forgotten")


def remove_job_spool(job_id: str) -> int:
    """Run on every worker (``Client.run``) when a job that was run more than once ends:
    the results of its earlier attempts (an orphan of a killed server, a worker killed
    before the server fetched) are deleted; returns how many."""
    n = 0
    for p in spool_dir().glob(f"{job_id}.*"):
        p.unlink(missing_ok=True)
        _RELEASED.pop(str(p), None)
        n += 1
    return n + sweep_spool()


def spool_sweeper():
    """A Dask worker plugin: every worker, also one that joins later, sweeps its machine's
    spool when it starts (what a killed worker process left there is no one's any more)."""
    from distributed.diagnostics.plugin import WorkerPlugin

    class SpoolSweeper(WorkerPlugin):
        def setup(self, worker) -> None:
            sweep_spool()

    return SpoolSweeper()


#: spooled results partly fetched: path → bytes from the start the server has, released
_RELEASED: dict[str, int] = {}
_FALLOC_FL_KEEP_SIZE, _FALLOC_FL_PUNCH_HOLE = 0x01, 0x02


@functools.cache
def _fallocate():
    """libc's ``fallocate`` (Linux), or None."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        func = getattr(libc, "fallocate64", None) or libc.fallocate
    except (OSError, AttributeError):
        return None
    func.argtypes = (ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64)
    func.restype = ctypes.c_int
    return func


def _release(path: Path, start: int, end: int) -> None:
    """Free bytes ``start:end`` of a spooled result (a hole: the server has them). Its memory
    (page cache never written to disk) goes back at once, not when the whole result is
    fetched; where the platform or file system cannot, they stay until the file is deleted."""
    func = _fallocate()
    if func is None or end <= start:
        return
    try:
        fd = os.open(path, os.O_WRONLY)
    except OSError:  # deleted meanwhile (the job was cancelled): nothing left to release
        return
    try:
        func(fd, _FALLOC_FL_KEEP_SIZE | _FALLOC_FL_PUNCH_HOLE, start, end - start)
    finally:
        os.close(fd)


def read_chunk(path: str, offset: int, size: int, timeout_s: float = 300.0,
               release_below: int = 0):
    """Dask task: ``size`` bytes of a spooled result from ``offset`` (the server's fetch),
    waiting (at most ``timeout_s``) for a writer that has not got there yet.

    ``release_below``: the server already has the bytes before this offset; they are
    released from the spool (and can never be read again: such a read fails).

    Returns
    -------
    numpy.ndarray
        uint8, ``size`` long: Dask sends an array's memory as it is and the server receives
        it without a copy (``bytes`` were copied once more on arrival: 0.2 s per 300 MB).

    Raises
    ------
    JobFailed
        If the result could not be written, or is shorter than asked for once written.
    """
    p = Path(path)
    if p.parent != spool_dir():  # only results this module spooled, never another file
        raise JobFailed(f"not a spooled result: {path}")
    released = _RELEASED.get(str(p), 0)
    if offset < released:  # never zeros for bytes that were released
        raise JobFailed(f"bytes from {offset} of the spooled result {p.name} were fetched "
                        "and released already")
    end = time.monotonic() + timeout_s
    while True:
        writing = str(p) in _WRITERS
        try:
            have = p.stat().st_size
        except FileNotFoundError:
            have = -1
        if have >= offset + size:
            break
        if not writing:  # written (or never, here): what is there is all there will be
            err = _error_file(p)
            if err.exists():
                raise JobFailed(f"the result could not be spooled: {err.read_text()}")
            raise JobFailed(f"the spooled result {p.name} holds {max(have, 0)} bytes, "
                            f"{offset + size} were asked for")
        if time.monotonic() > end:
            raise JobFailed(f"the spooled result {p.name} did not reach {offset + size} bytes "
                            f"within {timeout_s:g} s")
        time.sleep(0.002)
    import numpy as np

    out = np.empty(size, np.uint8)
    with open(p, "rb") as f:
        f.seek(offset)
        got = f.readinto(memoryview(out))
    if release_below > released:
        _RELEASED[str(p)] = release_below
        _release(p, released, release_below)
    return out[:got]


def remove_spooled(path: str) -> bool:
    """Dask task: delete a spooled result once the server has it."""
    p = Path(path)
    if p.parent != spool_dir():
        return False
    p.unlink(missing_ok=True)
    _RELEASED.pop(str(p), None)
    _error_file(p).unlink(missing_ok=True)
    return True


class _DaskSplitter:
    """A step runner splitting the steps declared safe to split into one slab per worker
    thread of the cluster (:mod:`medview.pipeline.split`), the first slab on this worker;
    other steps run whole here."""

    def __init__(self):
        self.report: dict = {"split": [], "whole": [], "bytes_moved": 0}

    def __call__(self, cs, inputs, progress):
        from distributed import get_worker, worker_client

        from medview.pipeline.runner import run_step
        from medview.pipeline.split import run_step_split, split_halo

        if split_halo(cs, inputs) is None:
            self.report["whole"].append(cs.step)
            progress.update(0.0, f"{cs.spec.title}: runs whole (not declared safe to split)")
            return run_step(cs, inputs, progress)
        with worker_client(separate_thread=True) as client:
            me = get_worker().address
            info = client.scheduler_info(n_workers=-1).get("workers", {})
            # one slab per worker thread; this worker's own slab stays here (never shipped)
            others = [a for a, w in info.items() if a != me
                      for _ in range(int(w.get("nthreads", 1)))]
            slabs = len(others) + 1

            def map_slabs(func, work):
                # the other slabs go straight to their workers and run there while this
                # thread runs the first; the outputs come straight back
                futs = []
                for w, addr in zip(work[1:], others, strict=False):
                    held = client.scatter(w[2], workers=[addr], direct=True, hash=False)
                    futs.append(client.submit(func, w[0], w[1], held, *w[3:], workers=[addr],
                                              allow_other_workers=False, pure=False))
                first = func(*work[0])
                outs = [first, *client.gather(futs, direct=True)]
                self.report["bytes_moved"] += sum(int(w[2].nbytes) for w in work[1:]) + \
                    sum(int(o[0].nbytes) for o in outs[1:])
                return outs

            out = run_step_split(cs, inputs, slabs=slabs, map_slabs=map_slabs,
                                 progress=progress)
        if out is None:
            self.report["whole"].append(cs.step)
            return run_step(cs, inputs, progress)
        self.report["split"].append({"step": cs.step, "slabs": slabs})
        return out


def _dask_splitter(meta: dict):
    return _DaskSplitter() if meta.get("split") else None

"""What runs a job, wherever it runs (a pool process or a Dask worker). No FastAPI here.

:func:`execute_bundle` decodes the uploaded bundle, puts the files that parameters refer to
into a private folder and points the parameters there, runs the chain with the same registry
and runner as a local run (:func:`medview.pipeline.runner.run_chain`), and encodes every
result into a result bundle. Progress goes to a callback, cancellation comes from a probe.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from medview.core.progress import Cancelled, Progress
from medview.core.volume import Volume
from medview.pipeline.chain import Chain, ChainError
from medview.remote.wire import (
    WireError,
    decode_bundle,
    encode_bundle,
    geometry_of,
)
from medview.server.result_writer import Announce

__all__ = ["JobFailed", "execute_bundle", "run_in_pool"]

ProgressSink = Callable[[float, str], None]


class JobFailed(Exception):
    """The job cannot succeed (bad input, a step's error); not retried."""


def where() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class _ProbeProgress(Progress):
    """Progress whose cancel flag also follows an outside probe, asked at most every 0.3 s."""

    def __init__(self, sink: ProgressSink, probe: Callable[[], bool], *, every_s: float = 0.3):
        self._sink_last = 0.0
        self._probe_last = 0.0
        self._probe = probe
        self._every = every_s
        self._sink = sink
        super().__init__(self._throttled)

    def _throttled(self, fraction: float, message: str) -> None:
        # steps report through children that share the cancel flag but not this class:
        # every update is also the moment to ask the probe
        self._ask_probe()
        now = time.monotonic()
        if fraction >= 1.0 or fraction == 0.0 or now - self._sink_last >= self._every:
            self._sink_last = now
            self._sink(fraction, message)

    def _ask_probe(self) -> None:
        now = time.monotonic()
        if not self._cancel.is_set() and now - self._probe_last >= self._every:
            self._probe_last = now
            if self._probe():
                self._cancel.set()

    @property
    def cancelled(self) -> bool:
        self._ask_probe()
        return self._cancel.is_set()

    def check(self) -> None:
        if self.cancelled:
            raise Cancelled("cancelled by the user")


def unsent_file_params(chain: dict, rewrites: list) -> list[str]:
    """File parameters (the :class:`~medview.pipeline.kinds.File` kind) that the job sets
    without sending the file.

    The server never opens a path a client names: it could probe or read the server's own
    files. Returns "step N (id), parameter P" for each such parameter.
    """
    from medview.pipeline.kinds import File
    from medview.pipeline.registry import get_step

    sent = {(int(rw.get("step", -1)), str(rw.get("param"))) for rw in rewrites
            if isinstance(rw, dict)}
    bad = []
    for i, raw in enumerate(chain.get("steps") or []):
        if not isinstance(raw, dict):
            continue
        try:
            spec = get_step(str(raw.get("step")))
        except KeyError:
            continue  # the chain validation names it
        for p in spec.params:
            value = (raw.get("params") or {}).get(p.name)
            if isinstance(p.type, File) and value and (i, p.name) not in sent:
                bad.append(f"step {i + 1} ({spec.id}), parameter {p.name!r}")
    return bad


def _rewrite_files(chain: dict, files: dict, rewrites: list, folder: Path) -> None:
    """Write the uploaded files into ``folder`` and point the parameters at them."""
    unsent = unsent_file_params(chain, rewrites)
    if unsent:
        raise JobFailed(f"{'; '.join(unsent)} names a file that was not sent with the job")
    written: dict[str, Path] = {}
    for name, (_, filename, data) in files.items():
        safe = Path(str(filename)).name
        if not safe or safe in (".", ".."):
            raise JobFailed(f"file {name!r}: unusable file name {filename!r}")
        path = folder / safe
        path.write_bytes(data)
        written[name] = path
    steps = chain.get("steps") or []
    for rw in rewrites:
        try:
            i, param, ref = int(rw["step"]), str(rw["param"]), str(rw["file"])
            steps[i].setdefault("params", {})[param] = str(written[ref])
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise JobFailed(f"file rewrite {rw!r} does not fit the chain ({exc})") from None


def execute_bundle(data: bytes | memoryview, *, sink: ProgressSink,
                   probe: Callable[[], bool] = lambda: False,
                   step_runner_for: Callable[[dict], Callable | None] | None = None,
                   stream_to: tuple[Path, Announce] | None = None,
                   stream_sync: bool = True) -> list[bytes | memoryview] | int:
    """Run the job in ``data`` (an input bundle); return the result bundle's parts.

    ``step_runner_for(meta)`` may give a step runner for :func:`run_chain` (a Dask worker
    splitting steps over the cluster when the job asks for it). With ``stream_to`` =
    ``(path, announce)``, a job whose client reads header-last results (``result_stream`` in
    its meta) has each output written into ``path`` as soon as its step has made it
    (:class:`~medview.server.result_writer.ResultWriter`, which announces the bytes to come);
    the file's size is then returned instead of the parts (``stream_sync``: flushed to disk
    as it is written; a Dask worker's spool is not: it dies with its worker anyway).

    Raises
    ------
    JobFailed
        For a job that cannot succeed (malformed bundle, invalid chain, a step's error).
    Cancelled
        When the probe says the job was cancelled.
    """
    from medview.pipeline.runner import run_chain

    writer = None
    try:
        # model items stay bytes: no step takes a model input, so none is ever parsed here
        bundle = decode_bundle(data, load_models=False)
        meta = bundle.meta
        chain_dict = json.loads(json.dumps(meta.get("chain") or {}))
        files = {k: v for k, v in bundle.values.items() if isinstance(v, tuple)}
        inputs = {k: v for k, v in bundle.values.items() if not isinstance(v, tuple)}
        encoding = str(meta.get("result_encoding", "raw"))
        with tempfile.TemporaryDirectory(prefix="medview-job-") as tmp:
            _rewrite_files(chain_dict, files, list(meta.get("file_params") or []), Path(tmp))
            chain = Chain.from_dict(chain_dict)
            progress = _ProbeProgress(sink, probe)
            runner = step_runner_for(meta) if step_runner_for is not None else None
            if stream_to is not None and meta.get("result_stream"):
                from medview.server.result_writer import ResultWriter

                writer = ResultWriter(stream_to[0], announce=stream_to[1], encoding=encoding,
                                      skip=set(inputs), sync=stream_sync)
            result = run_chain(chain, inputs, progress=progress, step_runner=runner,
                               on_output=writer.add if writer is not None else None)
    except BaseException as exc:
        if writer is not None:
            writer.abort()  # a file without its footer: never taken for a result
        if isinstance(exc, WireError | ChainError):
            raise JobFailed(str(exc)) from None
        if isinstance(exc, ValueError | TypeError | KeyError | OSError | RuntimeError |
                      ArithmeticError | MemoryError):
            raise JobFailed(f"{type(exc).__name__}: {exc}") from None
        raise
    outputs = result.outputs(exclude=inputs)
    # a trained model of a kind without a safe file format stays here (the labels travel)
    not_sent = {k: f"a {v.kind} model has no safe file format" for k, v in outputs.items()
                if getattr(v, "saveable", True) is False}
    outputs = {k: v for k, v in outputs.items() if k not in not_sent}
    out_meta = {"main": result.main_output,
                "seconds": {k: round(v, 4) for k, v in result.seconds.items()},
                "input_geometry": {k: geometry_of(v) for k, v in inputs.items()
                                   if isinstance(v, Volume)},
                "worker": where()}
    split = getattr(runner, "report", None)
    if split:
        out_meta["split"] = split
    if not_sent:
        out_meta["not_sent"] = not_sent
    try:
        if writer is not None:
            del result
            return writer.finish(out_meta, outputs)
        return encode_bundle(out_meta, outputs, encoding=encoding)
    except WireError as exc:
        raise JobFailed(str(exc)) from None


# -- process pool -----------------------------------------------------------------------------
def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, path)


def limit_threads() -> int | None:
    """Hold every library of this worker process to ``$MEDVIEW_THREADS`` threads.

    medview's own per-slice threads read the variable; SimpleITK (ITK), OpenCV and the BLAS
    behind scikit-learn would otherwise each use every core, so a machine running several
    single-threaded workers would be oversubscribed. Returns the limit (None when unset).
    """
    value = os.environ.get("MEDVIEW_THREADS")
    if not value:
        return None
    n = max(1, int(value))
    import cv2
    import SimpleITK as sitk
    from threadpoolctl import threadpool_limits

    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(n)
    cv2.setNumThreads(n)
    threadpool_limits(n)
    return n


def init_pool_process(threads: int, parent_pid: int | None = None) -> None:
    """Pool process initializer: end with the server (``parent_pid``), and hold
    ``MEDVIEW_THREADS`` to this process's share unless it is set."""
    from medview.children import die_with_parent

    die_with_parent(parent_pid)
    os.environ.setdefault("MEDVIEW_THREADS", str(threads))
    limit_threads()


def warm_up() -> int:
    """Import what jobs need (registry, steps, scikit-learn) so the first job does not wait."""
    from medview.pipeline.registry import all_steps

    return len(all_steps())


class SyncBehind:
    """Flush a file that is being written to disk as it grows, in a helper thread.

    ``wrote(n)`` after each write starts an ``fdatasync`` of what is there every ``every``
    bytes (one at a time), so the disk takes the file while the writes go on; ``finish()``
    then ``fsync``s what remains: the tail, not the whole file (300 MB took 0.15-0.3 s here,
    after the last byte, before the job could count as done).
    """

    def __init__(self, fd: int, every: int = 64 << 20):
        self.fd = fd
        self.every = every
        self._since = 0
        self._thread: threading.Thread | None = None
        self._error: OSError | None = None

    def _sync(self) -> None:
        try:
            os.fdatasync(self.fd)
        except OSError as exc:  # said by finish()
            self._error = exc

    def wrote(self, n: int) -> None:
        self._since += n
        if self._since >= self.every and (self._thread is None or
                                          not self._thread.is_alive()):
            self._since = 0
            self._thread = threading.Thread(target=self._sync, name="medview-sync",
                                            daemon=True)
            self._thread.start()

    def finish(self) -> None:
        """Wait for the helper, then ``fsync`` the file; OSError if either failed."""
        self.join()
        if self._error is not None:
            raise self._error
        os.fsync(self.fd)

    def join(self) -> None:
        """Wait for the helper (before the file is closed; also when the write failed)."""
        if self._thread is not None:
            self._thread.join()

    def __enter__(self) -> SyncBehind:
        return self

    def __exit__(self, *exc) -> None:
        self.join()  # never a sync of a closed file, also when the write failed


def write_parts(path: Path, parts: list, *, sync: bool = True) -> int:
    """Write ``parts`` to ``path`` (flushed to disk with ``sync``); returns the size.

    ``parts`` is emptied as it is written: each part (a view of a result array) is let go
    once it is in the file, so its memory is freed while the rest is written and the file's
    pages can reuse it. A result's arrays and its file are never all held at once, and on a
    VM that returns freed memory to its host (this project's test machines) the file is not
    written into memory the host must first supply again (3 s instead of 0.1 s for 300 MB
    there). An array nothing else refers to goes back 1 MiB at a time as it is written
    (:mod:`medview.server.release`), so even the first array's pages are reused: no part may
    be read by anyone once it is handed to this function.
    """
    from medview.server.release import PIECE_BYTES, releaser_for

    size = 0
    with open(path, "wb") as f, \
            SyncBehind(f.fileno()) if sync else contextlib.nullcontext() as syncer:
        while parts:
            p = parts.pop(0)
            releaser = releaser_for(p, parts)
            # in pieces: the file goes to disk behind the writes (SyncBehind), the array's
            # memory back to the system as it is written
            for start in range(0, len(p), PIECE_BYTES):
                n = f.write(p[start:start + PIECE_BYTES])
                if syncer is not None:
                    syncer.wrote(n)
                if releaser is not None:
                    releaser.release(start + n)
            size += len(p)
            del p, releaser  # the last reference to that array: freed now
        f.flush()
        if syncer is not None:
            syncer.finish()
    return size


def map_input(path: Path):
    """``path`` memory-mapped read-only (a context manager): the bundle is decoded straight
    from the page cache, never read whole into this process's memory first."""
    import contextlib
    import mmap

    @contextlib.contextmanager
    def mapped():
        with open(path, "rb") as f:
            mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        try:
            yield mm
        finally:
            with contextlib.suppress(BufferError):  # a view kept alive by a traceback
                mm.close()

    return mapped()


def run_in_pool(job_dir: str, attempt: int) -> str:
    """Pool entry point: run ``job_dir/input.bin``, write ``result.<attempt>.part``.

    Progress goes to ``progress.json`` in the job folder, cancellation is the existence of
    ``cancel`` there. ``progress.json`` also says how far the result file will reach
    (``result_ready``, while the chain still runs and each output is written as it comes) and,
    before its last bytes are written, its size (``result_bytes``): the server streams the
    part file to the client while it grows. Returns the part file's path; the server renames
    it into place, so a result is never half-written where a reader could see it as complete.
    """
    folder = Path(job_dir)
    part = folder / f"result.{attempt}.part"
    state = {"fraction": 0.0, "message": "started", "worker": where()}
    lock = threading.Lock()  # the result writer's thread says how far it got, too

    def put(**fields) -> None:
        with lock:
            state.update(fields)
            _write_json(folder / "progress.json", dict(state))

    def announce(ready: int, size: int | None) -> None:
        put(attempt=attempt, result_ready=ready,
            **({"result_bytes": size} if size is not None else {}))

    put()
    with map_input(folder / "input.bin") as data:
        out = execute_bundle(data, sink=lambda f, m: put(fraction=f, message=m),
                             probe=(folder / "cancel").exists, stream_to=(part, announce))
    if isinstance(out, int):  # written as the chain ran
        return str(part)
    put(fraction=1.0, message="writing the result", attempt=attempt,
        result_bytes=sum(len(p) for p in out))
    write_parts(part, out)
    return str(part)

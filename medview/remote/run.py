"""Run a chain on an offload endpoint: the remote twin of :func:`run_chain`.

:func:`run_chain_remote` takes the same chain and inputs as a local run and returns the same
:class:`~medview.pipeline.runner.ChainResult`, so the CLI and the GUI write or show it the
same way. In between: de-identify, upload (with the files that parameters name), follow the
job's progress (cancel goes to the server), download, check every result's geometry against
the inputs', re-attach the results to the original study, delete the result on the server.
"""

from __future__ import annotations

import contextlib
import sys
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from medview.core.progress import NO_PROGRESS, Cancelled, Progress
from medview.core.volume import Volume
from medview.pipeline.chain import Chain
from medview.pipeline.kinds import File
from medview.pipeline.runner import ChainResult
from medview.remote.client import RemoteClient
from medview.remote.deid import Deidentified, audit, deidentify, reattach
from medview.remote.errors import RemoteError, RemoteUnavailable
from medview.remote.schemas import JobStatus, ServerInfo
from medview.remote.wire import (
    WireError,
    declared_nbytes,
    decode_bundle,
    encode_bundle,
    geometry_of,
    read_header,
    same_geometry,
)

__all__ = ["GeometryMismatchError", "RemoteJob", "check_results", "collect_job",
           "run_batch_remote", "run_chain_remote", "submit_job"]


class GeometryMismatchError(RemoteError):
    """A result came back on a grid that none of the inputs has (flipped, shifted …)."""


def _is_loopback(url: str) -> bool:
    host = urlparse(url).hostname or ""
    return host in ("localhost", "::1") or host.startswith("127.")


def choose_encoding(info: ServerInfo, url: str, wanted: str = "auto") -> str:
    """``raw`` on loopback (fastest there), ``blosc2`` elsewhere when the server has it."""
    from medview.remote.wire import available_encodings

    mine = available_encodings()
    if wanted != "auto":
        if wanted not in info.encodings or wanted not in mine:
            raise RemoteError(f"encoding {wanted!r} is not supported by both sides "
                              f"(server: {info.encodings}, here: {mine})")
        return wanted
    if not _is_loopback(url) and "blosc2" in info.encodings and "blosc2" in mine:
        return "blosc2"
    return "raw"


def _file_params(chain: Chain) -> tuple[dict[str, Any], list[dict]]:
    """Files that parameters name (the :class:`~medview.pipeline.kinds.File` kind): the bytes
    to send and the rewrites."""
    files: dict[str, Any] = {}
    rewrites = []
    for i, cs in enumerate(chain.steps):
        if not cs.enabled:
            continue
        for p in cs.spec.params:
            value = cs.params.get(p.name)
            if not isinstance(p.type, File) or not value:
                continue
            path = Path(value)
            if not path.is_file():
                raise FileNotFoundError(f"step {i + 1} ({cs.step}), parameter {p.name!r}: no "
                                        f"file {path}")
            ref = f"file{len(rewrites)}"
            files[ref] = ("file", path.name, path.read_bytes())
            side = path.with_name(path.name + ".sha256")
            if side.is_file():  # a saved model's checksum travels with it
                files[f"{ref}.sha256"] = ("file", side.name, side.read_bytes())
            rewrites.append({"step": i, "param": p.name, "file": ref})
    return files, rewrites


@dataclass
class RemoteJob:
    """A submitted job and what the client needs to collect it."""

    status: JobStatus
    inputs: dict[str, Volume]
    deid: Deidentified
    sent_geometry: dict[str, dict]
    upload_bytes: int
    timings: dict[str, float] = field(default_factory=dict)
    #: the result bundle's meta (worker, seconds per step, how steps were split …)
    result_meta: dict = field(default_factory=dict)


def submit_job(client: RemoteClient, chain: Chain, inputs: Mapping[str, Volume], *,
               encoding: str = "auto", info: ServerInfo | None = None,
               audit_path: Path | None = None, split: bool = False) -> RemoteJob:
    """De-identify ``inputs`` and submit ``chain`` on them; writes the audit lines.

    With ``split`` a Dask server spreads the steps declared safe to split over its workers
    (one volume across workers); the others, and every step on a pool server, run whole.

    Raises
    ------
    RemoteError
        If the server lacks a step (or has another version), the upload is over its limit,
        or the server refuses the job.
    """
    import time

    info = info or client.info()
    for i, cs in enumerate(chain.steps):
        have = info.steps.get(cs.step)
        if cs.enabled and have != cs.version:
            what = "does not have" if have is None else f"has version {have} of"
            raise RemoteError(f"{client.name} {what} step {i + 1} ({cs.step} v{cs.version}); "
                              "update medview on one side or run locally")
    enc = choose_encoding(info, client.url, encoding)
    deid = deidentify(inputs)
    files, rewrites = _file_params(chain)
    t0 = time.perf_counter()
    # result_stream: this client reads header-last results, written step by step
    meta = {"chain": chain.to_dict(), "result_encoding": enc, "file_params": rewrites,
            "result_stream": True}
    if split:
        meta["split"] = True
    parts = encode_bundle(meta, {**inputs, **files}, encoding=enc, metadata=deid.metadata)
    t_encode = time.perf_counter() - t0
    size = sum(len(p) for p in parts)
    if size > info.max_upload_bytes:
        raise RemoteError(f"{client.name}: the job is {size / 2**20:.1f} MiB, the server "
                          f"accepts at most {info.max_upload_bytes / 2**20:.1f} MiB; run it "
                          "locally or ask for a larger --max-upload-mb", status=413)
    decoded = sum(v.array.nbytes for v in inputs.values() if hasattr(v, "array"))
    if info.max_decoded_bytes is not None and decoded > info.max_decoded_bytes:
        raise RemoteError(f"{client.name}: the job's images hold {decoded / 2**20:.1f} MiB, "
                          f"the server accepts at most {info.max_decoded_bytes / 2**20:.1f} "
                          "MiB; run it locally or ask for a larger --max-decoded-mb",
                          status=413)
    t0 = time.perf_counter()
    status = client.submit(parts, idempotency_key=uuid.uuid4().hex)
    t_upload = time.perf_counter() - t0
    from medview.remote.config import data_dir

    deid.save(data_dir() / "offload-jobs", status.id, client.url)
    sizes = {n: v.array.nbytes for n, v in inputs.items()}
    audit(endpoint=f"{client.name} {client.url}", job_id=status.id, inputs=inputs, sizes=sizes,
          path=audit_path)
    return RemoteJob(status, dict(inputs), deid,
                     {n: geometry_of(v) for n, v in inputs.items()}, size,
                     {"encode": t_encode, "upload": t_upload})


def collect_job(client: RemoteClient, job: RemoteJob, *, progress: Progress = NO_PROGRESS,
                download_dir: Path | None = None, acknowledge: bool = True) -> ChainResult:
    """Wait for ``job``, download, check and re-attach its results; delete them remotely.

    The result is streamed into ``download_dir`` (default: the data folder's
    ``offload-downloads``) and decoded from there. With ``acknowledge=False`` the caller
    deletes the result on the server (:meth:`RemoteClient.acknowledge`) once it has stored
    what came back.

    Raises
    ------
    RemoteError
        If the job failed (with the server's reason).
    GeometryMismatchError
        If a result is not on the grid of an input.
    Cancelled
        If ``progress`` was cancelled (the job is cancelled on the server too).
    """
    import time

    def on_status(st: JobStatus) -> None:
        step = f" step {st.step}/{st.steps}" if st.steps and st.step else ""
        progress.update(0.05 + 0.9 * st.progress, f"{client.name}{step}: {st.message or st.state}")

    if download_dir is None:
        from medview.privatedirs import private_folder
        from medview.remote.config import data_dir

        download_dir = private_folder(data_dir() / "offload-downloads")
    part = Path(download_dir) / f"{job.status.id}.part"
    tag = part.with_name(part.name + ".etag")
    try:
        _download(client, job, part, on_status, progress)
        t0 = time.perf_counter()
        bundle = _decode_file(part, job, endpoint=client.name)
        job.timings["decode"] = time.perf_counter() - t0
    except BaseException:
        if not isinstance(sys.exc_info()[1], (RemoteUnavailable, KeyboardInterrupt)):
            part.unlink(missing_ok=True)  # kept only to resume an interrupted download
            tag.unlink(missing_ok=True)
        raise
    tag.unlink(missing_ok=True)
    part.unlink(missing_ok=True)
    values = check_results(bundle, job, endpoint=client.name)
    job.result_meta = dict(bundle.meta)
    if acknowledge:
        client.acknowledge(job.status.id)
    progress.update(1.0, f"{client.name}: done")
    main = str(bundle.meta.get("main", next(iter(values), "")))
    seconds = {k: float(v) for k, v in (bundle.meta.get("seconds") or {}).items()}
    return ChainResult(values, main, seconds)


def _wait(client: RemoteClient, job: RemoteJob, on_status, progress: Progress, *,
          streaming: bool, ready_above: int | None = None) -> JobStatus:
    """Wait for the job to end (or, with ``streaming``, for its result to be written, or
    more than ``ready_above`` bytes of it); RemoteError or Cancelled when it ended without a
    result."""
    try:
        st = client.wait(job.status.id, on_status=on_status,
                         cancelled=lambda: progress.cancelled, streaming=streaming,
                         ready_above=ready_above)
    except KeyboardInterrupt:  # Ctrl+C in the terminal: stop the job on the server too
        with contextlib.suppress(RemoteError):
            client.cancel(job.status.id)
        raise
    if st.state == "cancelled":
        raise Cancelled(f"job {st.id} was cancelled on {client.name}")
    if st.state != "succeeded" and not (streaming and (st.streaming or st.result_ready)):
        raise RemoteError(f"job {st.id} {st.state} on {client.name}: "
                          f"{st.error or st.message}")
    return st


def _download(client: RemoteClient, job: RemoteJob, part: Path, on_status,
              progress: Progress) -> JobStatus:
    """The job's result into ``part``, downloaded while the server still writes it (from the
    first step's output on: the later steps compute meanwhile); returns the final (succeeded)
    status once ``part`` is known to hold that result."""
    import time

    t0 = time.perf_counter()
    st = _wait(client, job, on_status, progress, streaming=True, ready_above=0)
    job.timings["wait"] = time.perf_counter() - t0
    while True:
        progress.update(0.95 if st.streaming or st.done else 0.05 + 0.9 * st.progress,
                        f"{client.name}: downloading the result")
        t0 = time.perf_counter()
        try:
            size = client.download_ready(job.status.id, part)
        except RemoteError as exc:
            if exc.status != 409:
                raise
            # the attempt being streamed ended without a result (its worker died): the job
            # is run again; what came of it is of no use
            part.unlink(missing_ok=True)
            part.with_name(part.name + ".etag").unlink(missing_ok=True)
            st = _wait(client, job, on_status, progress, streaming=True, ready_above=0)
            continue
        job.timings["download"] = job.timings.get("download", 0.0) + time.perf_counter() - t0
        if size is None:
            # all that is written so far: the rest comes with the later steps
            t0 = time.perf_counter()
            have = part.stat().st_size if part.exists() else 0
            st = _wait(client, job, on_status, progress, streaming=True, ready_above=have)
            job.timings["wait"] = job.timings.get("wait", 0.0) + time.perf_counter() - t0
            continue
        if st.state == "succeeded":
            return st
        # downloaded while it was written: once the job has ended, one more request (a
        # Range past the end, If-Range: this attempt) confirms these bytes are its result
        t0 = time.perf_counter()
        st = _wait(client, job, on_status, progress, streaming=False)
        job.timings["settle"] = job.timings.get("settle", 0.0) + time.perf_counter() - t0


def _decode_file(path: Path, job: RemoteJob, *, endpoint: str):
    """Check the header of the downloaded bundle ``path``, then decode it (memory-mapped).

    Raw arrays are not copied: they are views of a private (copy-on-write) map of the file,
    which stays valid after the file is deleted, so the download is never held twice. (On
    Windows, where a mapped file cannot be deleted, they are copied.)
    """
    import mmap
    import os

    with open(path, "rb") as f:
        if path.stat().st_size == 0:
            raise RemoteError(f"{endpoint}: the result is damaged (empty)")
        mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_COPY)
    try:
        check_result_header(mm, job, endpoint=endpoint)
        try:
            return decode_bundle(mm, max_decoded_bytes=result_limit(job),
                                 copy=os.name == "nt")
        except WireError as exc:
            raise RemoteError(f"{endpoint}: the result is damaged or too large ({exc})"
                              ) from None
    finally:
        # the arrays keep the map alive (close refuses while they exist); else it goes now
        with contextlib.suppress(BufferError):
            mm.close()


#: A result bundle may decode to at most this many times the bytes of the job's inputs (every
#: step's output of a long chain, float32 from int16, RGB from grey) plus RESULT_SLACK_BYTES:
#: a server, or whatever sits in its place, cannot make a small download expand without end.
RESULT_DECODE_FACTOR = 64
RESULT_SLACK_BYTES = 64 << 20


def result_limit(job: RemoteJob) -> int:
    """The most bytes the results of ``job`` may decode to."""
    sent = sum(int(v.array.nbytes) for v in job.inputs.values() if hasattr(v, "array"))
    return RESULT_DECODE_FACTOR * sent + RESULT_SLACK_BYTES


def check_result_header(data: bytes | memoryview, job: RemoteJob, *, endpoint: str) -> None:
    """Refuse, before anything is decoded, a result array whose declared grid is no input's.

    Raises
    ------
    GeometryMismatchError
        Naming the result and the grid it declares.
    """
    try:
        header, _ = read_header(data)
        declared_nbytes(header)  # valid shapes and dtypes, or WireError
    except WireError as exc:
        raise RemoteError(f"{endpoint}: the result is damaged ({exc})") from None
    shapes = {tuple(g["shape"][:3]) for g in job.sent_geometry.values()}
    for item in header.get("items") or []:
        if isinstance(item, dict) and item.get("kind") in ("volume", "labelmap"):
            shape = tuple((item.get("geometry") or {}).get("shape") or ())
            if shape[:3] not in shapes or len(shape) > 4 or (len(shape) == 4 and shape[3] > 4):
                raise GeometryMismatchError(
                    f"{endpoint}: result {item.get('name')!r} declares shape {list(shape)}, "
                    "which matches no input; it is refused before decoding")


def check_results(bundle, job: RemoteJob, *, endpoint: str) -> dict[str, Any]:
    """The bundle's values, each volume checked against the inputs' grids and re-attached.

    Raises
    ------
    GeometryMismatchError
        If the server echoes another input grid than the one sent, or a result volume is on
        a grid none of the inputs has (flipped, shifted, resampled …).
    """
    echoed = bundle.meta.get("input_geometry") or {}
    for name, sent in job.sent_geometry.items():
        if name not in echoed or not same_geometry(sent, echoed[name]):
            raise GeometryMismatchError(
                f"{endpoint}: the server received input {name!r} on another grid than the "
                f"one sent ({echoed.get(name)} vs {sent}); the result is refused")
    values: dict[str, Any] = {}
    for name, value in bundle.values.items():
        if isinstance(value, Volume):
            g = geometry_of(value)
            if not any(same_geometry(g, s) for s in job.sent_geometry.values()):
                raise GeometryMismatchError(
                    f"{endpoint}: result {name!r} came back on a grid that matches no "
                    f"input (shape {g['shape']}, spacing {g['spacing']}, origin {g['origin']},"
                    f" direction {g['direction']}); it is refused rather than shown misplaced")
            value = reattach(value, job.deid, job.inputs)
        values[name] = value
    return values


def run_chain_remote(chain: Chain, inputs: Mapping[str, Volume], *, client: RemoteClient,
                     progress: Progress = NO_PROGRESS, encoding: str = "auto",
                     split: bool = False) -> ChainResult:
    """Run ``chain`` on ``inputs`` on the endpoint of ``client``; same result as locally."""
    progress.update(0.0, f"{client.name}: uploading")
    job = submit_job(client, chain, inputs, encoding=encoding, split=split)
    return collect_job(client, job, progress=progress)


def run_batch_remote(chain: Chain, batch: Sequence[Mapping[str, Volume]], *,
                     client: RemoteClient, encoding: str = "auto",
                     poll_s: float = 0.2) -> list[ChainResult]:
    """Run ``chain`` on every input set of ``batch``, one job each, in parallel on the server
    (its pool, or its Dask cluster): all jobs are submitted first, then each is collected as
    soon as it is done. Results come back in the order of ``batch``."""
    import time

    info = client.info()
    jobs = [submit_job(client, chain, inputs, encoding=encoding, info=info) for inputs in batch]
    results: dict[int, ChainResult] = {}
    while len(results) < len(jobs):
        done = {st.id for st in client.jobs() if st.done}
        for i, job in enumerate(jobs):
            if i not in results and job.status.id in done:
                results[i] = collect_job(client, job)
        if len(results) < len(jobs):
            time.sleep(poll_s)
    return [results[i] for i in range(len(jobs))]
